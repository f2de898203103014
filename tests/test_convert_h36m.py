"""`mcss convert h36m` on the real Human3.6M fixture: geometry, names, instants, bad input,
and a training run on the converted folder."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES, fixture_path
from convert_helpers import assert_left_is_left, assert_refused, edit_npz
from mcss.cli import main
from mcss.convert import ConvertError
from mcss.convert.common import (
    DEFAULT_IMAGE_SIZE,
    H36M_ACTIONS,
    complete_instants,
    normalise_action,
)
from mcss.convert.h36m import convert_h36m, parse_frame_name
from mcss.data.format import Dataset
from mcss.geometry import camera_from_h36m, square_box
from mcss.safe_pickle import restricted_load
from mcss.skeleton import JOINT_INDEX as J
from mcss.synth.generate import SynthConfig

SIZE = 32
NPZ = "test_h36m_body3d.npz"


def copy_fixture(tmp_path: Path) -> Path:
    """A writable copy of the H36M fixture (the shared one is read-only)."""
    src = fixture_path("h36m")
    root = tmp_path / "h36m"
    for file in src.rglob("*"):
        if file.is_file():
            (root / file.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, root / file.relative_to(src))
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, list[str]]:
    notes: list[str] = []
    out = tmp_path_factory.mktemp("h36m") / "data"
    return Dataset(convert_h36m(fixture_path("h36m"), out, SIZE, say=notes.append)), notes


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize(("spelling", "action"), [
    ("Photo", "Photo"), ("TakingPhoto", "Photo"), ("TakingPhoto_1", "Photo"),
    ("Photo 1", "Photo"), ("WalkDog", "WalkDog"), ("WalkingDog", "WalkDog"),
    ("WalkDog_1", "WalkDog"), ("Walking Dog 2", "WalkDog"), ("Discussion", "Discussion"),
    ("Discussion 1", "Discussion"), ("Discussion_2", "Discussion"), ("SittingDown 2",
    "SittingDown"), ("Sitting 1", "Sitting"), ("WalkTogether 1", "WalkTogether"),
    ("Walking", "Walking"), ("directions", "Directions"), ("Greeting_3", "Greeting"),
])
def test_action_names_are_normalised(spelling: str, action: str) -> None:
    assert normalise_action(spelling) == action


def test_unknown_actions_are_refused_and_canonical_names_are_fixed_points() -> None:
    assert len(H36M_ACTIONS) == 15
    assert all(normalise_action(a) == a for a in H36M_ACTIONS)
    for name in ("_ALL", "Dancing", ""):
        with pytest.raises(ValueError, match="not a Human3.6M action"):
            normalise_action(name)


def test_frame_names_are_parsed() -> None:
    assert parse_frame_name("S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg"
                            ) == ("S1", "Directions_1", "54138969", 1)
    assert parse_frame_name("S11_Discussion 2.60457274_001206.jpg") == (
        "S11", "Discussion_2", "60457274", 1206)
    with pytest.raises(ValueError, match="not S<subject>"):
        parse_frame_name("S1_Directions_1_000001.jpg")


def test_default_image_size_is_synths() -> None:
    assert SynthConfig.image_size == DEFAULT_IMAGE_SIZE


# ---------------------------------------------------------------------------- geometry


def test_meta_names_splits_and_time(converted: tuple[Dataset, list[str]]) -> None:
    ds, _ = converted
    meta = ds.meta
    assert meta["subjects"] == ["S1", "S5", "S7", "S8"]
    assert meta["actions"] == ["Directions", "Greeting", "SittingDown", "WalkDog"]
    assert meta["sequences"] == ["S1_Directions_1", "S5_SittingDown", "S7_Greeting",
                                 "S8_WalkDog_1"]
    assert [c.name for c in ds.cameras] == ["S1.54138969", "S5.54138969", "S7.55011271",
                                            "S8.55011271"]
    # One physical camera, calibrated per subject: one viewpoint, so cross-view retrieval
    # never counts S5's view from camera 54138969 as "another camera" for S1's.
    assert [c.viewpoint for c in ds.cameras] == ["54138969", "54138969", "55011271",
                                                 "55011271"]
    v = ds.viewpoint_id[np.argsort(ds.camera_id)]
    assert v[0] == v[1] != v[2] == v[3]
    assert meta["splits"] == {"train": ["S1", "S5", "S7", "S8"], "test": []}
    assert meta["fps"] == 50.0 and meta["image_size"] == SIZE and ds.images.shape[1] == SIZE
    np.testing.assert_array_equal(ds.frame, [1, 2061, 396, 26])
    np.testing.assert_allclose(ds.time, (ds.frame - 1) / 50.0, atol=1e-5)
    assert ds.labelled.all()


def test_image_size_comes_from_the_images(converted: tuple[Dataset, list[str]]) -> None:
    """cameras.pkl says 1000x1000 for camera 55011271, but S7's frame is 1000x1002."""
    ds, notes = converted
    sizes = {c.name: (c.width, c.height) for c in ds.cameras}
    assert sizes["S7.55011271"] == (1000, 1002) and sizes["S8.55011271"] == (1000, 1000)
    assert len(notes) == 1 and "cameras.pkl" in notes[0] and "S7.55011271" in notes[0]


def test_2d_joints_lie_inside_their_crops(converted: tuple[Dataset, list[str]]) -> None:
    ds, _ = converted
    uv = ds.joints_2d_crop
    assert (uv >= 0).all() and (uv <= SIZE).all()
    sides = 200.0 * np.load(fixture_path(f"h36m/{NPZ}"))["scale"]
    np.testing.assert_allclose(np.sort(ds.box[:, 2]), np.sort(sides), rtol=1e-6)


def test_crops_show_the_box(converted: tuple[Dataset, list[str]]) -> None:
    """The fast (JPEG draft) crop matches a plain full-resolution crop of the box."""
    ds, _ = converted
    for i in range(len(ds)):
        seq = ds.meta["sequences"][ds.sequence_id[i]]
        cam = ds.cameras[ds.camera_id[i]].name.split(".")[1]
        name = f"{seq}.{cam}_{ds.frame[i]:06d}.jpg"
        x0, y0, side = (float(v) for v in ds.box[i])
        image = Image.open(FIXTURES / "h36m" / seq.split("_")[0] / name[:-11] / name)
        ref = np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR,
                                                     box=(x0, y0, x0 + side, y0 + side)))
        assert np.abs(ref.astype(float) - ds.images[i]).mean() < 6.0, name


def test_3d_joints_project_onto_the_2d_labels(converted: tuple[Dataset, list[str]]) -> None:
    """Camera-frame joints, and world joints through the converted camera, land on `part`."""
    ds, _ = converted
    for i in range(len(ds)):
        cam = ds.cameras[ds.camera_id[i]]
        part = ds.joints_2d[i, :, :2]
        from_camera = np.linalg.norm(cam.project(ds.joints_3d_camera[i]) - part, axis=-1)
        world = cam.world_to_camera(ds.joints_3d_world[i])
        from_world = np.linalg.norm(cam.project(world) - part, axis=-1)
        assert from_camera.max() < 0.01 and from_world.max() < 0.01, (i, from_camera.max())


def test_3d_joints_are_millimetres_upright_in_a_z_up_world(
    converted: tuple[Dataset, list[str]]
) -> None:
    ds, _ = converted
    src = np.load(fixture_path(f"h36m/{NPZ}"))  # rows in the dataset's order (S1, S5, S7, S8)
    np.testing.assert_allclose(ds.joints_3d_camera, src["S"][:, :, :3] * 1000, atol=1e-3)
    world = ds.joints_3d_world
    feet = world[:, [J["right_foot"], J["left_foot"]], 2].min(axis=1)
    assert (feet > -100).all() and (feet < 250).all()
    assert (world[:, J["head"], 2] > world[:, J["pelvis"], 2] + 300).all()


def test_left_is_left(converted: tuple[Dataset, list[str]]) -> None:
    assert_left_is_left(converted[0].joints_3d_camera)


# ---------------------------------------------------------------------------- instants


def test_complete_instants() -> None:
    seq = np.array(["a", "a", "a", "a", "b", "a"])
    frame = np.array([1, 1, 6, 6, 1, 9])
    cam = np.array(["c1", "c2", "c1", "c1", "c9", "c2"])
    np.testing.assert_array_equal(complete_instants(seq, frame, cam),
                                  [True, True, False, False, True, False])


def _add_second_view_and_lone_frame(root: Path) -> None:
    """S1 Directions 1 frame 1 seen by camera 55011271 too (labels made consistent through
    the calibration), and a frame 6 that only camera 54138969 saw."""
    calib = restricted_load(root / "cameras.pkl")
    cam1, cam2 = (camera_from_h36m(calib[("S1", c)]) for c in ("54138969", "55011271"))
    first = root / "S1" / "S1_Directions_1.54138969" / "S1_Directions_1.54138969_000001.jpg"
    second = root / "S1" / "S1_Directions_1.55011271" / "S1_Directions_1.55011271_000001.jpg"
    lone = first.with_name("S1_Directions_1.54138969_000006.jpg")
    second.parent.mkdir()
    shutil.copyfile(first, second)
    shutil.copyfile(first, lone)

    def edit(a: dict[str, np.ndarray]) -> None:
        X2 = cam2.world_to_camera(cam1.camera_to_world(a["S"][0, :, :3] * 1000))
        part2 = cam2.project(X2)
        box = square_box(part2, 1.2)
        rows = {"imgname": [str(second.relative_to(root)), str(lone.relative_to(root))],
                "center": [box[:2] + box[2] / 2, a["center"][0]],
                "scale": [box[2] / 200, a["scale"][0]],
                "part": [np.concatenate([part2, np.ones((17, 1))], 1), a["part"][0]],
                "S": [np.concatenate([X2 / 1000, np.ones((17, 1))], 1), a["S"][0]]}
        for key, new in rows.items():
            a[key] = np.concatenate([a[key], np.asarray(new, dtype=a[key].dtype)])

    edit_npz(root / NPZ, edit)


def test_views_of_one_instant_are_grouped(tmp_path: Path, capsys: pytest.CaptureFixture
                                          ) -> None:
    root = copy_fixture(tmp_path)
    _add_second_view_and_lone_frame(root)
    out = tmp_path / "out"
    with pytest.raises(ConvertError, match=r"test_h36m_body3d\.npz.*--missing-views"):
        convert_h36m(root, out, SIZE)
    assert_refused(["convert", "h36m", "--root", str(root), "--out", str(out)], out, capsys,
                   NPZ, "camera(s) S1.55011271", "--missing-views")
    ds = Dataset(convert_h36m(root, out, SIZE, missing_views="drop", say=lambda _: None))
    assert len(ds) == 5 and 6 not in ds.frame
    seq = ds.meta["sequences"].index("S1_Directions_1")
    views = ds.index.views(seq, 1)
    assert sorted(ds.cameras[ds.camera_id[r]].name for r in views) == ["S1.54138969",
                                                                      "S1.55011271"]
    # Both cameras' labels give one world pose: world joints are consistent across views.
    np.testing.assert_allclose(ds.joints_3d_world[views[0]], ds.joints_3d_world[views[1]],
                               atol=0.01)
    kept = convert_h36m(root, tmp_path / "kept", SIZE, missing_views="keep", say=lambda _: None)
    assert len(Dataset(kept)) == 6


# ---------------------------------------------------------------------------- bad input


def _drop_camera(root: Path) -> list[str]:
    calib = restricted_load(root / "cameras.pkl")
    del calib[("S5", "54138969")]
    (root / "cameras.pkl").write_bytes(pickle.dumps(calib))
    return []


def _nan_label(root: Path) -> list[str]:
    edit_npz(root / NPZ, lambda a: a["S"].__setitem__((1, 5, 2), np.nan))
    return []


def _millimetres(root: Path) -> list[str]:
    edit_npz(root / NPZ, lambda a: a["S"].__setitem__((Ellipsis, slice(0, 3)),
                                                      a["S"][..., :3] * 1000))
    return []


def _corrupt_jpeg(root: Path) -> list[str]:
    jpg = next(root.glob("S7/*/*.jpg"))
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 3])
    return []


def _not_an_image(root: Path) -> list[str]:
    next(root.glob("S8/*/*.jpg")).write_bytes(b"these bytes are no JPEG")
    return []


def _escaping_imgname(root: Path) -> list[str]:
    def edit(a: dict[str, np.ndarray]) -> None:
        names = a["imgname"].astype(object)
        names[2] = "../elsewhere/" + names[2]
        a["imgname"] = names.astype(str)
    edit_npz(root / NPZ, edit)
    return []


def _missing_npz(root: Path) -> list[str]:
    (root / NPZ).unlink()
    return []


def _missing_image(root: Path) -> list[str]:
    next(root.glob("S8/*/*.jpg")).unlink()
    return []


def _joint_count(root: Path) -> list[str]:
    edit_npz(root / NPZ, lambda a: a.__setitem__("part", a["part"][:, :16]))
    return ["--annotations", str(root / NPZ)]


def _unknown_camera_id(root: Path) -> list[str]:
    def edit(a: dict[str, np.ndarray]) -> None:
        a["imgname"] = np.char.replace(a["imgname"], "S1_Directions_1.54138969",
                                       "S1_Directions_1.12345678")
    edit_npz(root / NPZ, edit)
    return []


def _unknown_action(root: Path) -> list[str]:
    edit_npz(root / NPZ, lambda a: a.__setitem__(
        "imgname", np.char.replace(a["imgname"], "S7_Greeting", "S7_Dancing")))
    return []


class _RunsCode:
    """Unpickling this runs a shell command (what a malicious calibration file would do)."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.sentinel}",))


def _malicious_pickle(root: Path) -> list[str]:
    (root / "cameras.pkl").write_bytes(pickle.dumps({("S1", "54138969"): _RunsCode(
        root / "PWNED")}))
    return []


BREAKS: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "calibration pickle that runs code": (_malicious_pickle, ("cameras.pkl", "system")),
    "camera missing from cameras.pkl": (_drop_camera, ("cameras.pkl", "'S5', '54138969'")),
    "frame names an unknown camera": (_unknown_camera_id, ("cameras.pkl", "12345678")),
    "NaN label": (_nan_label, (NPZ, "NaN", "S5_SittingDown")),
    "millimetres where metres are expected": (_millimetres, (NPZ, "millimetres",
                                                             "--units mm")),
    "corrupt JPEG": (_corrupt_jpeg, ("S7_Greeting.55011271_000396.jpg", "cannot decode")),
    "not an image": (_not_an_image, ("S8_WalkDog_1.55011271_000026.jpg", "cannot decode")),
    "imgname climbs out of the root": (_escaping_imgname, (NPZ, "../elsewhere",
                                                           "outside the image folder")),
    "no annotation file": (_missing_npz, ("no annotation .npz", "--annotations")),
    "missing image": (_missing_image, ("S8_WalkDog_1.55011271_000026.jpg", "not found")),
    "mismatched joint count": (_joint_count, (NPZ, "16 joints", "expected 17")),
    "unknown action": (_unknown_action, (NPZ, "Dancing", "not a Human3.6M action")),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_bad_input_is_refused_with_one_line(case: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    root = copy_fixture(tmp_path)
    breaker, needles = BREAKS[case]
    extra = breaker(root)
    out = tmp_path / "out" / "h36m"
    with pytest.raises(ConvertError) as err:
        convert_h36m(root, out, SIZE, annotations=extra[1:] or None, say=lambda _: None)
    assert all(n in str(err.value) for n in needles), str(err.value)
    assert not out.exists() and not list(out.parent.glob(".h36m.tmp-*"))
    args = ["convert", "h36m", "--root", str(root), "--out", str(out), "--image-size",
            str(SIZE), *extra]
    assert_refused(args, out, capsys, *needles)
    assert not (root / "PWNED").exists()  # the malicious pickle's command never ran


def test_metres_refused_when_told_millimetres(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert_refused(["convert", "h36m", "--root", str(fixture_path("h36m")), "--out", str(out),
                    "--units", "mm"], out, capsys, NPZ, "looks like metres", "--units m")


def test_missing_files_named_by_option(tmp_path: Path, capsys) -> None:
    root, out = fixture_path("h36m"), tmp_path / "out"
    assert_refused(["convert", "h36m", "--root", str(root), "--out", str(out), "--annotations",
                    str(tmp_path / "missing.npz")], out, capsys, "missing.npz", "not found")
    assert_refused(["convert", "h36m", "--root", str(root), "--out", str(out), "--cameras",
                    str(tmp_path / "none.pkl")], out, capsys, "none.pkl", "not found")
    assert_refused(["convert", "h36m", "--root", str(root), "--out", str(out),
                    "--image-size", "30"], out, capsys, "--image-size")


def test_cli_writes_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "data"
    args = ["convert", "h36m", "--root", str(fixture_path("h36m")), "--out", str(out),
            "--image-size", str(SIZE)]
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 0 and "wrote" in err and "warning:" in err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["provenance"]["generator"] == "mcss convert h36m"
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main([*args, "--overwrite", "--no-progress"])
    assert stop.value.code == 0


def test_help_teaches_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["convert", "h36m", "--help"])
    assert stop.value.code == 0
    assert "Example: mcss convert h36m --root" in capsys.readouterr().out.replace("\n", " ")


# ---------------------------------------------------------------------------- training


def test_train_and_eval_on_the_converted_fixture(converted: tuple[Dataset, list[str]],
                                                 tmp_path: Path, capsys) -> None:
    """Two training steps and an evaluation on real converted frames. The fixture has no
    multi-view instant, so the multi-view term cannot run: this is the baseline (lam=0);
    no test subject either, so the evaluation reads the train split."""
    data, run = converted[0].path, tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny",
              "--set", "steps=2", "--set", "ckpt_every=2", "--set", "lam=0",
              "--no-progress"])
    assert stop.value.code == 0
    with pytest.raises(SystemExit) as stop:
        main(["eval", str(run), "--data", str(data), "--split", "train"])
    assert stop.value.code == 0 and "mean over actions" in capsys.readouterr().out
    result = json.loads((run / "eval-train.json").read_text())
    assert set(result["per_action"]) == {"Directions", "Greeting", "SittingDown", "WalkDog"}


def test_mcss_term_without_multi_view_instants_is_one_clear_line(
        converted: tuple[Dataset, list[str]], tmp_path: Path, capsys) -> None:
    data, run = converted[0].path, tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny",
              "--no-progress"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1, lines
    assert str(data) in lines[0] and "seen by 2 cameras" in lines[0] and "lam=0" in lines[0]
    assert not run.exists()
