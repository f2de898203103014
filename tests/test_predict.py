"""`mcss predict` on real H36M frames and on a video: poses, output files, renders, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import fixture_path
from mcss.cli import main
from mcss.data.format import Dataset
from mcss.evaluate import predict as evaluate_predict
from mcss.predict import BoxTable, Source, load_model, square_from_xywh
from mcss.skeleton import JOINT_NAMES


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    return stop.value.code


def h36m_boxes(tmp_path: Path) -> tuple[Path, Path, dict[str, list[float]]]:
    """The H36M fixture folder and a box file from its npz (square side = scale * 200 px)."""
    npz = np.load(fixture_path("h36m/test_h36m_body3d.npz"))
    boxes = {}
    for name, centre, scale in zip(npz["imgname"], npz["center"], npz["scale"], strict=True):
        side = float(scale) * 200
        boxes[str(name)] = [centre[0] - side / 2, centre[1] - side / 2, side, side]
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(boxes))
    return fixture_path("h36m"), path, boxes


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_predict_h36m_images_with_boxes(tmp_path: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    folder, box_file, boxes = h36m_boxes(tmp_path)
    out = tmp_path / "pred"
    assert run_cli("predict", tiny_checkpoint, folder, "--boxes", box_file, "--out", out,
                   "--render", "--batch-size", "3", "--no-progress") == 0
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["units"] == "mm" and doc["joint_names"] == list(JOINT_NAMES)
    assert sorted(f["input"] for f in doc["frames"]) == sorted(boxes)
    for record in doc["frames"]:
        assert record["box_source"] == "boxes" and record["frame"] == 0
        np.testing.assert_allclose(record["box"], boxes[record["input"]], atol=0.01)
        for key in ("pose_camera", "pose_canonical"):
            assert list(record[key]) == list(JOINT_NAMES)
            pose = np.array(list(record[key].values()))
            assert pose.shape == (17, 3) and np.isfinite(pose).all()
            assert np.abs(pose[0]).max() < 0.01  # root-relative: the pelvis at the origin
    with np.load(out / "predictions.npz", allow_pickle=False) as npz:
        assert list(npz["joint_names"]) == list(JOINT_NAMES)
        assert npz["pose_camera"].shape == npz["pose_canonical"].shape == (4, 17, 3)
        assert npz["rotation"].shape == (4, 3, 3) and npz["box"].shape == (4, 4)
        assert list(npz["input"]) == [f["input"] for f in doc["frames"]]
        assert np.isfinite(npz["pose_camera"]).all()
        np.testing.assert_allclose(npz["pose_camera"],
                                   npz["pose_canonical"] @ npz["rotation"].transpose(0, 2, 1),
                                   atol=1e-2)
        spread = np.ptp(npz["pose_camera"], axis=0).max()
        assert spread > 1.0  # different crops give different poses
    renders = sorted((out / "render").glob("*.png"))
    assert len(renders) == 4
    assert Image.open(renders[0]).size == (3 * 256, 256)


def test_predict_video_one_pose_per_frame_and_mp4(
    tmp_path: Path, tiny_checkpoint: Path, tiny_dataset: Path  # noqa: F811
) -> None:
    crops = Dataset(tiny_dataset).images
    frames = []
    for i in range(5):
        frame = np.zeros((48, 80, 3), dtype=np.uint8)
        frame[8:40, 24:56] = crops[i]
        frames.append(frame)
    video = write_video(tmp_path / "clip.mp4", frames)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"clip.mp4": {"0": [24, 8, 32, 32], "3": [20, 4, 40, 40]}}))
    out = tmp_path / "pred"
    assert run_cli("predict", tiny_checkpoint, video, "--boxes", boxes, "--out", out,
                   "--render", "--batch-size", "2", "--no-progress") == 0
    with np.load(out / "predictions.npz", allow_pickle=False) as npz:
        assert list(npz["frame"]) == [0, 1, 2, 3, 4] and set(npz["input"]) == {"clip.mp4"}
        assert npz["pose_camera"].shape == (5, 17, 3) and np.isfinite(npz["pose_camera"]).all()
        np.testing.assert_allclose(npz["box"][:3], [[24, 8, 32, 32]] * 3)
        np.testing.assert_allclose(npz["box"][3:], [[20, 4, 40, 40]] * 2)
    with av.open(str(out / "render" / "clip.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 5 and decoded[0].shape == (256, 768, 3)


def test_centre_crop_of_a_dataset_crop_predicts_as_evaluation_does(
    tmp_path: Path, tiny_checkpoint: Path, tiny_dataset: Path  # noqa: F811
) -> None:
    """A crop saved as an image and predicted goes through the same preprocessing as the
    crops evaluation and training feed the network."""
    crops = np.array(Dataset(tiny_dataset).images[10:13])
    for i, image in enumerate(crops):
        Image.fromarray(image).save(tmp_path / f"crop{i}.png")
    out = tmp_path / "pred"
    assert run_cli("predict", tiny_checkpoint, *sorted(tmp_path.glob("crop*.png")), "--out", out,
                   "--no-progress") == 0
    with np.load(out / "predictions.npz", allow_pickle=False) as npz:
        assert set(npz["box_source"]) == {"centre"}
        mine = npz["pose_camera"]
    reference = evaluate_predict(load_model(tiny_checkpoint).model, crops)["pose_camera"]
    np.testing.assert_allclose(mine, reference, atol=1e-3)


def test_boxes_are_squared_and_held_between_listed_frames(tmp_path: Path) -> None:
    np.testing.assert_allclose(square_from_xywh([10, 20, 40, 100]), [-20, 20, 100, 100])
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps({"a.jpg": [0, 0, 5, 5], "v.mp4": {"2": [1, 1, 4, 4],
                                                                 "10": [2, 2, 4, 4]}}))
    table = BoxTable(path)
    video = Source(Path("x/v.mp4"), "v.mp4", "video")
    assert [table.lookup(video, f)[0] for f in (0, 2, 9, 10, 50)] == [1, 1, 1, 2, 2]
    assert table.lookup(Source(Path("b.jpg"), "b.jpg", "image"), 0) is None
    assert table.unused([video]) == ["a.jpg"]


def test_checkpoint_without_crop_size_assumes_64(
    tmp_path: Path, tiny_checkpoint: Path  # noqa: F811
) -> None:
    copy = shutil.copytree(tiny_checkpoint, tmp_path / "step-00000001")
    state = json.loads((copy / "state.json").read_text())
    del state["extra"]["image_size"]
    (copy / "state.json").write_text(json.dumps(state))
    loaded = load_model(copy)
    assert (loaded.image_size, loaded.size_known) == (64, False)
    assert load_model(copy, 48).image_size == 48


@pytest.mark.parametrize("case", ["no checkpoint", "corrupt image", "unreadable video",
                                  "box outside", "bad box file", "no input"])
def test_errors_give_one_line_naming_the_file(
    case: str, tmp_path: Path, tiny_checkpoint: Path, capsys  # noqa: F811
) -> None:
    image = tmp_path / "person.png"
    Image.fromarray(np.full((60, 40, 3), 128, np.uint8)).save(image)
    boxes = tmp_path / "boxes.json"
    ckpt, inputs, named = tiny_checkpoint, [image], image
    if case == "no checkpoint":
        ckpt = named = tmp_path / "missing-run"
    elif case == "corrupt image":
        named = tmp_path / "broken.jpg"
        named.write_bytes(b"\xff\xd8 not a jpeg")
        inputs = [named]
    elif case == "unreadable video":
        named = tmp_path / "broken.mp4"
        named.write_bytes(b"not a video at all")
        inputs = [named]
    elif case == "box outside":
        boxes.write_text(json.dumps({"person.png": [500, 10, 20, 40]}))
        inputs += ["--boxes", boxes]
    elif case == "bad box file":
        boxes.write_text("{not json")
        inputs += ["--boxes", boxes]
        named = boxes
    else:
        named = tmp_path / "nothing.jpg"
        inputs = [named]
    code = run_cli("predict", ckpt, *inputs, "--out", tmp_path / "out", "--no-progress")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, (case, err)
    assert err[0].startswith("mcss: error: ") and str(named) in err[0], (case, err)
    assert not (tmp_path / "out" / "predictions.json").exists()
