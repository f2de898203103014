"""`mcss convert footage`: synchronised videos / frame folders -> the mcss format.

The test footage shows a white square whose position encodes the instant, so a crop tells
which instant it shows: after conversion every camera must show the same instant per row.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import fields
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mcss.cli import main
from mcss.convert import ConvertError
from mcss.convert.commands import footage_command
from mcss.convert.footage import DEFAULT_IMAGE_SIZE, DEFAULT_MARGIN, convert_footage
from mcss.data.format import Dataset
from mcss.geometry import crop_to_image, image_to_crop, square_box
from mcss.synth.generate import SynthConfig

W, H, FPS = 64, 48, 10
CENTRE_BOX = np.array([8.0, 0.0, 48.0])  # the largest centred square of a 64x48 frame


def marker_xy(instant: int) -> np.ndarray:
    """Centre (px) of the 4x4 marker that shows ``instant`` (inside the centred square)."""
    return np.array([12.0 + 4 * (instant % 10), 6.0 + 8 * (instant // 10)])


def scene(instant: int, at: np.ndarray | None = None) -> np.ndarray:
    """A 64x48 frame: dark background, the marker of ``instant`` (none if negative)."""
    image = np.full((H, W, 3), 30, np.uint8)
    if instant >= 0 or at is not None:
        x, y = (marker_xy(instant) if at is None else at).astype(int) - 2
        image[y : y + 4, x : x + 4] = 255
    return image


def write_video(path: Path, frames: list[np.ndarray], fps: int = FPS) -> Path:
    """Lossless FFV1 (RGB) video, so pixels come back exactly."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_folder(path: Path, frames: list[np.ndarray]) -> Path:
    """PNG frames named frame_1.png ... frame_N.png (not zero-padded: natural order)."""
    path.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"frame_{i + 1}.png")
    return path


def decode_instant(crop: np.ndarray, box: np.ndarray) -> int:
    """The instant whose marker is nearest the bright centroid of a crop (-1: no marker)."""
    v, u = np.nonzero(crop[..., 0] > 140)
    if not len(u):
        return -1
    centre = crop_to_image(np.array([u.mean() + 0.5, v.mean() + 0.5]), box, len(crop))
    candidates = np.array([marker_xy(i) for i in range(40)])
    return int(np.argmin(np.linalg.norm(candidates - centre, axis=1)))


def pose_mm() -> np.ndarray:
    """A standing H36M-17 pose in a camera frame, 4 m in front of the camera (mm)."""
    xy = [(0, 0), (-130, 0), (-130, 450), (-130, 890), (130, 0), (130, 450), (130, 890),
          (0, -230), (0, -480), (0, -580), (0, -700), (150, -480), (150, -200), (150, 50),
          (-150, -480), (-150, -200), (-150, 50)]
    return np.array([(x, y, 4000.0) for x, y in xy])


@pytest.fixture
def two_videos(tmp_path: Path) -> tuple[Path, Path]:
    """cam0: 20 frames, frame r shows instant r. cam1: 22 frames, frame r shows r - 3."""
    cam0 = write_video(tmp_path / "cam0.mkv", [scene(r) for r in range(20)])
    cam1 = write_video(tmp_path / "cam1.mkv", [scene(r - 3) for r in range(22)])
    return cam0, cam1


def instants_seen(ds: Dataset) -> np.ndarray:
    """(instants, cameras) decoded instant of every row, via the multi-view index."""
    frames = np.unique(ds.frame)
    rows = np.stack([ds.index.views(0, int(f)) for f in frames])
    return np.vectorize(lambda r: decode_instant(ds.images[r], ds.box[r]))(rows)


def test_offset_lines_up_instants_and_truncates(two_videos, tmp_path: Path) -> None:
    notes: list[str] = []
    out = convert_footage(two_videos, tmp_path / "ds", offsets=["cam1=3"], image_size=32,
                          say=notes.append)
    ds = Dataset(out)
    assert [c.name for c in ds.cameras] == ["cam0", "cam1"]
    assert all(c["calibrated"] is False for c in ds.meta["cameras"])
    assert len(ds) == 2 * 19 and np.array_equal(np.unique(ds.frame), np.arange(19))
    seen = instants_seen(ds)
    assert np.array_equal(seen, np.repeat(np.arange(19)[:, None], 2, axis=1))
    assert np.allclose(ds.time, ds.frame / FPS) and ds.meta["fps"] == FPS
    assert np.allclose(ds.box, CENTRE_BOX)
    assert ds.meta["splits"] == {"train": ["footage"], "test": []}
    assert ds.meta["subjects"] == ["footage"] and len(ds.meta["sequences"]) == 1
    assert not ds.labelled.any() and np.isnan(ds.joints_3d_camera).all()
    assert np.isnan(ds.joints_2d).all() and np.isnan(ds.joints_3d_world).all()
    assert len(notes) == 1 and "cam0 (cam0.mkv): 20 frames" in notes[0]
    assert "keeping instants 0-18" in notes[0]

    wrong = Dataset(convert_footage(two_videos, tmp_path / "unsynced", image_size=32,
                                    say=notes.append))
    seen = instants_seen(wrong)  # without the offset, cam1 lags 3 instants behind
    assert np.array_equal(seen[3:, 1], seen[3:, 0] - 3) and (seen[:3, 1] == -1).all()


def test_frame_folders_named_cameras(tmp_path: Path) -> None:
    left = write_folder(tmp_path / "a", [scene(r) for r in range(12)])
    right = write_folder(tmp_path / "b", [scene(r - 2) for r in range(14)])
    ds = Dataset(convert_footage([f"left={left}", f"right={right}"], tmp_path / "ds",
                                 offsets={"right": 2}, fps=25, image_size=48))
    assert [c.name for c in ds.cameras] == ["left", "right"]
    assert ds.meta["fps"] == 25 and len(ds) == 2 * 12
    assert np.array_equal(instants_seen(ds), np.repeat(np.arange(12)[:, None], 2, axis=1))
    for frame in (0, 5, 11):
        assert len(ds.index.views(0, frame)) == 2


def test_boxes_crop_where_expected(two_videos, tmp_path: Path) -> None:
    marker = np.array([46.0, 30.0])
    cam0 = write_video(tmp_path / "still.mkv", [scene(0, at=marker) for _ in range(12)])
    given = {0: [40, 20, 12, 16], 10: [36, 16, 12, 16]}  # x0, y0, w, h around the marker
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"still": {str(k): v for k, v in given.items()}}))
    ds = Dataset(convert_footage([cam0, two_videos[0]], tmp_path / "ds", boxes=boxes,
                                 image_size=32, margin=1.5, say=lambda _: None))
    rows = ds.camera_id == 0
    squares = {k: square_box(np.array([v[:2], np.add(v[:2], v[2:])]), 1.5)
               for k, v in given.items()}
    assert np.allclose(ds.box[rows][0], squares[0]) and np.allclose(ds.box[rows][10],
                                                                     squares[10])
    assert np.allclose(ds.box[rows][5], (squares[0] + squares[10]) / 2)  # interpolated
    assert np.allclose(ds.box[rows][11], squares[10])  # held after the last box
    assert np.allclose(ds.box[~rows], CENTRE_BOX)  # camera without boxes
    for row in np.flatnonzero(rows):
        v, u = np.nonzero(ds.images[row][..., 0] > 140)
        weights = ds.images[row][v, u, 0].astype(float)
        found = np.array([np.average(u, weights=weights), np.average(v, weights=weights)]) + 0.5
        assert np.allclose(found, image_to_crop(marker, ds.box[row], 32), atol=0.35)


def test_labels_land_on_their_rows_only(two_videos, tmp_path: Path) -> None:
    pose = pose_mm()
    labels = tmp_path / "labels.npz"
    np.savez(labels, frame=np.array([2, 7]), camera=np.array(["cam0", "cam1"]),
             joints_3d=np.stack([pose, pose + 10.0]))
    ds = Dataset(convert_footage(two_videos, tmp_path / "ds", offsets=["cam1=3"],
                                 labels=labels, image_size=16, say=lambda _: None))
    a, b = ds.index.row(0, 2, 0), ds.index.row(0, 7, 1)
    assert set(np.flatnonzero(ds.labelled)) == {a, b}
    assert np.allclose(ds.joints_3d_camera[a], pose)
    assert np.allclose(ds.joints_3d_camera[b], pose + 10.0)
    others = np.setdiff1d(np.arange(len(ds)), [a, b])
    assert np.isnan(ds.joints_3d_camera[others]).all() and np.isnan(ds.joints_3d_world).all()
    assert ds.meta["provenance"]["labelled_views"] == 2


def test_cli_converts_and_warns(two_videos, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    with pytest.raises(SystemExit) as stop:
        main(["convert", "footage", "--video", str(two_videos[0]), "--video",
              f"side={two_videos[1]}", "--offset", "side=3", "--image-size", "16",
              "--subject", "studio", "--out", str(out)])
    err = capsys.readouterr().err
    assert stop.value.code == 0, err
    assert "warning: cameras cover different instants" in err and "wrote" in err
    ds = Dataset(out)
    assert ds.meta["subjects"] == ["studio"] and [c.name for c in ds.cameras] == ["cam0", "side"]


def test_help_teaches_offsets_and_example(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["convert", "footage", "--help"])
    text = capsys.readouterr().out
    assert stop.value.code == 0
    assert "frame i+N of camera CAM shows instant i" in text and "Example" in text


def test_defaults_match_synth_and_cli() -> None:
    default = next(f.default for f in fields(SynthConfig) if f.name == "image_size")
    assert default == DEFAULT_IMAGE_SIZE
    assert inspect.signature(footage_command).parameters["margin"].default == DEFAULT_MARGIN


# ---------------------------------------------------------------------------- errors


def _bad_inputs(tmp: Path, cam0: Path, cam1: Path) -> dict[str, tuple[dict, str]]:
    """case -> (convert_footage keyword arguments, text the message must hold)."""
    garbage = tmp / "broken.mp4"
    garbage.write_bytes(b"\x00\x01not a video" * 50)
    folder = write_folder(tmp / "frames", [scene(r) for r in range(20)])
    (folder / "frame_0.png").write_bytes(b"not a png")  # sorts first
    late = write_folder(tmp / "late", [scene(r) for r in range(20)])
    (late / "frame_7.png").write_bytes(b"not a png")
    slow = write_video(tmp / "slow.mkv", [scene(r) for r in range(20)], fps=20)
    (tmp / "other").mkdir()
    twin = write_video(tmp / "other" / "cam0.mkv", [scene(r) for r in range(20)])
    pose = pose_mm()

    def labels(name: str, **arrays: np.ndarray) -> Path:
        path = tmp / f"{name}.npz"
        base = {"frame": np.array([1]), "camera": np.array(["cam0"]), "joints_3d": pose[None]}
        np.savez(path, **(base | arrays))
        return path

    def boxes(name: str, content: str) -> Path:
        path = tmp / f"{name}.json"
        path.write_text(content)
        return path

    two = {"videos": [cam0, cam1]}
    return {
        "one video": ({"videos": [cam0]}, "cam0.mkv"),
        "missing video": ({"videos": [cam0, tmp / "nope.mp4"]}, "nope.mp4"),
        "corrupt video": ({"videos": [cam0, garbage]}, "broken.mp4"),
        "corrupt first image": ({"videos": [cam0, folder]}, "frame_0.png"),
        "corrupt later image": ({"videos": [cam0, late], "fps": 10}, "frame_7.png"),
        "same camera name": ({"videos": [cam0, twin]}, "NAME=PATH"),
        "different frame rates": ({"videos": [cam0, slow]}, "slow.mkv 20.000"),
        "no overlap": ({**two, "offsets": ["cam1=40"]}, "no instant is shown by every camera"),
        "bad offset": ({**two, "offsets": ["cam1:3"]}, "cam1:3"),
        "offset unknown camera": ({**two, "offsets": ["cam9=1"]}, "cam9"),
        "boxes unknown camera": ({**two, "boxes": boxes("b1", '{"cam7": {"0": [1, 1, 9, 9]}}')},
                                 "b1.json"),
        "boxes not json": ({**two, "boxes": boxes("b2", "{cam0: ")}, "b2.json"),
        "boxes wrong length": ({**two, "boxes": boxes("b3", '{"cam0": {"0": [1, 1, 9]}}')},
                               "b3.json"),
        "boxes out of range": ({**two, "boxes": boxes("b4", '{"cam0": {"99": [1, 1, 9, 9]}}')},
                               "b4.json"),
        "labels 32 joints": ({**two, "labels": labels("l1", joints_3d=np.zeros((1, 32, 3)))},
                             "l1.npz"),
        "labels NaN": ({**two, "labels": labels("l2", joints_3d=pose[None] * np.nan)},
                       "l2.npz"),
        "labels in metres": ({**two, "labels": labels("l3", joints_3d=pose[None] / 1000)},
                             "metres"),
        "labels unknown camera": ({**two, "labels": labels("l4", camera=np.array(["cam5"]))},
                                  "l4.npz"),
        "labels instant out of range": ({**two, "labels": labels("l5", frame=np.array([20]))},
                                        "l5.npz"),
        "labels twice": ({**two, "labels": labels("l7", frame=np.array([1, 1]),
                                                  camera=np.array(["cam0", "cam0"]),
                                                  joints_3d=np.stack([pose, pose]))},
                         "l7.npz"),
        "labels not npz": ({**two, "labels": boxes("l6", "text")}, "l6.json"),
    }


CASES = ["one video", "missing video", "corrupt video", "corrupt first image",
         "corrupt later image", "same camera name", "different frame rates", "no overlap",
         "bad offset", "offset unknown camera", "boxes unknown camera", "boxes not json",
         "boxes wrong length", "boxes out of range", "labels 32 joints", "labels NaN",
         "labels in metres", "labels unknown camera", "labels instant out of range",
         "labels twice", "labels not npz"]


def _cli_args(kwargs: dict, out: Path) -> list[str]:
    args = ["convert", "footage", "--out", str(out), "--no-progress"]
    args += [a for v in kwargs["videos"] for a in ("--video", str(v))]
    args += [a for v in kwargs.get("offsets", []) for a in ("--offset", v)]
    for key in ("boxes", "labels", "fps"):
        if key in kwargs:
            args += [f"--{key}", str(kwargs[key])]
    return args


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_error_nothing_written(case: str, two_videos, tmp_path: Path,
                                             capsys) -> None:
    cases = _bad_inputs(tmp_path, *two_videos)
    assert set(cases) == set(CASES)
    kwargs, named = cases[case]
    out = tmp_path / "out" / "ds"
    with pytest.raises(ConvertError, match=named.replace(".", r"\.")):
        convert_footage(out=out, image_size=16, **kwargs)
    with pytest.raises(SystemExit) as stop:
        main(_cli_args(kwargs, out))
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2
    assert len(lines) == 1 and lines[0].startswith("mcss: error:") and named in lines[0], lines
    assert not out.exists() and not any(out.parent.glob("*"))  # no temporary folder left


def test_existing_output_needs_overwrite(two_videos, tmp_path: Path) -> None:
    notes: list[str] = []
    quiet = notes.append
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    for overwrite in (False, True):  # a folder that is not a dataset is never replaced
        with pytest.raises(ConvertError, match="mine"):
            convert_footage(two_videos, mine, image_size=16, overwrite=overwrite,
                            say=quiet)
    assert (mine / "keep.txt").read_text() == "mine"
    out = convert_footage(two_videos, tmp_path / "ds", image_size=16, say=quiet)
    with pytest.raises(ConvertError, match="--overwrite"):
        convert_footage(two_videos, out, image_size=32, say=quiet)
    convert_footage(two_videos, out, image_size=32, overwrite=True, say=quiet)
    assert Dataset(out).meta["image_size"] == 32 and len(notes) == 2  # cam1 runs longer


def test_train_runs_on_converted_footage(two_videos, tmp_path: Path, capsys) -> None:
    """One subject, one take, two labelled views: trains without a validation subject."""
    labels = tmp_path / "labels.npz"
    np.savez(labels, frame=np.array([2, 7]), camera=np.array(["cam0", "cam1"]),
             joints_3d=np.stack([pose_mm(), pose_mm() + 10.0]))
    data = convert_footage(two_videos, tmp_path / "ds", offsets=["cam1=3"], labels=labels,
                           image_size=32, say=lambda _: None)
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--preset", "tiny",
              "--set", "steps=2", "--set", "labelled=footage", "--set", "val_subject=none",
              "--set", "n_sequences=1", "--set", "lam=0.5", "--no-progress"])
    err = capsys.readouterr().err
    assert stop.value.code == 0, err
    assert (tmp_path / "run" / "checkpoints" / "step-00000002" / "model.safetensors").is_file()
