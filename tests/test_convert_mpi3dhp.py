"""`mcss convert mpi3dhp` on the real MPI-INF-3DHP fixture: the joint mapping, the camera
conventions found in the data, bad input, and a training run on the converted folder."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import fixture_path
from convert_helpers import assert_left_is_left, assert_refused, edit_npz
from mcss.cli import main
from mcss.convert import ConvertError
from mcss.convert.mpi3dhp import (
    JOINTS,
    TO_MCSS,
    Y_UP_TO_Z_UP,
    camera_from_mpi3dhp,
    convert_mpi3dhp,
    parse_frame_name,
)
from mcss.data.format import Dataset
from mcss.geometry import to_canonical
from mcss.safe_pickle import restricted_load
from mcss.skeleton import JOINT_INDEX as J
from mcss.skeleton import JOINT_NAMES

SIZE = 32
TRAIN_NPZ, TEST_NPZ = "test_3dhp_train.npz", "test_3dhp_test.npz"
# 2D labels of these joints (mcss names) sit 1-2 px off the projection of their 3D labels
# in mmpose's files; every other joint reprojects within 0.2 px (docs/real_data.md).
OFF_BY_PIXELS = ("right_hip", "left_hip", "spine")


def copy_fixture(tmp_path: Path) -> Path:
    """A writable copy of the 3DHP fixture (the shared one is read-only)."""
    src = fixture_path("mpi_inf_3dhp")
    root = tmp_path / "3dhp"
    root.mkdir()
    for file in src.iterdir():
        shutil.copyfile(file, root / file.name)
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, list[str]]:
    notes: list[str] = []
    out = tmp_path_factory.mktemp("3dhp") / "data"
    ds = Dataset(convert_mpi3dhp(fixture_path("mpi_inf_3dhp"), out, SIZE, say=notes.append))
    return ds, notes


def rows_of(ds: Dataset, split: str) -> np.ndarray:
    return ds.split_rows(split)


# ---------------------------------------------------------------------------- names, mapping


def test_frame_names_are_parsed() -> None:
    assert parse_frame_name("S4_Seq2_Cam0_001033.jpg") == ("train", "S4", "S4_Seq2",
                                                           "S4_Seq2_Cam0", 1033)
    assert parse_frame_name("images/TS1_002001.jpg") == ("test", "TS1", "TS1", "TS1", 2001)
    with pytest.raises(ValueError, match="neither"):
        parse_frame_name("S4_Cam0_001033.jpg")


def test_joint_mapping_pairs_like_joints() -> None:
    assert sorted(TO_MCSS) == list(range(17))
    pairs = {mcss: JOINTS[j] for mcss, j in zip(JOINT_NAMES, TO_MCSS, strict=True)}
    differing = {"right_foot": "right_ankle", "left_foot": "left_ankle", "thorax": "neck",
                 "neck_base": "head", "head": "head_top"}
    for mcss, hp in pairs.items():
        assert hp == differing.get(mcss, mcss), (mcss, hp)


# ---------------------------------------------------------------------------- converted data


def test_meta_names_splits_and_time(converted: tuple[Dataset, list[str]]) -> None:
    ds, _ = converted
    meta = ds.meta
    assert meta["subjects"] == ["S4", "S8", "TS1", "TS2"]
    assert meta["sequences"] == ["S4_Seq2", "S8_Seq1", "TS1", "TS2"]
    assert meta["actions"] == ["GreenScreen", "Seq1", "Seq2"]
    # the takes share their calibrations: one camera per physical camera
    assert [c.name for c in ds.cameras] == ["Cam0", "Cam8", "TS1", "TS2"]
    assert meta["splits"] == {"train": ["S4", "S8"], "test": ["TS1", "TS2"]}
    assert meta["fps"] == 25.0 and ds.images.shape[1:] == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(ds.frame, [1033, 2165, 2001, 1850])
    np.testing.assert_allclose(ds.time, (ds.frame - 1) / 25.0, atol=1e-4)
    mapping = meta["provenance"]["joint_mapping"]
    assert mapping["head"] == "head_top" and mapping["thorax"] == "neck"


def test_image_size_comes_from_the_images(converted: tuple[Dataset, list[str]]) -> None:
    """cameras_train.pkl says h = 204 for 2048-px frames: the images win, with a warning."""
    ds, notes = converted
    assert all((c.width, c.height) == (2048, 2048) for c in ds.cameras)
    assert len(notes) == 1 and "cameras_train.pkl" in notes[0] and "2048x204 " in notes[0]


def test_2d_joints_lie_inside_their_crops(converted: tuple[Dataset, list[str]]) -> None:
    ds, _ = converted
    assert (ds.joints_2d_crop >= 0).all() and (ds.joints_2d_crop <= SIZE).all()


def test_crop_outside_the_image_is_black(converted: tuple[Dataset, list[str]]) -> None:
    ds, _ = converted
    row = ds.meta["sequences"].index("TS2")  # its box starts 249 px left of the image
    x0, _, side = ds.box[row]
    assert x0 < -200
    blank = int((-x0) / side * SIZE) - 1
    assert ds.images[row][:, :blank].max() <= 2 and ds.images[row][:, blank + 2:].mean() > 20


def test_3d_joints_project_onto_the_2d_labels(converted: tuple[Dataset, list[str]]) -> None:
    ds, _ = converted
    exact = [J[n] for n in JOINT_NAMES if n not in OFF_BY_PIXELS]
    for i in range(len(ds)):
        cam = ds.cameras[ds.camera_id[i]]
        part = ds.joints_2d[i, :, :2]
        error = np.linalg.norm(cam.project(ds.joints_3d_camera[i]) - part, axis=-1)
        assert error.mean() < 1.0 and error[exact].max() < 0.5, (i, error)
        if ds.meta["subjects"][ds.subject_id[i]].startswith("S"):  # training: calibrated
            world = cam.world_to_camera(ds.joints_3d_world[i])
            assert np.abs(cam.project(world) - cam.project(ds.joints_3d_camera[i])).max() < 1e-3
        else:
            assert np.isnan(ds.joints_3d_world[i]).all()


def test_pelvis_is_at_the_pelvis_and_the_spine_goes_up(
    converted: tuple[Dataset, list[str]]
) -> None:
    joints = converted[0].joints_3d_camera.astype(np.float64)
    hips = (joints[:, J["left_hip"]] + joints[:, J["right_hip"]]) / 2
    assert np.linalg.norm(joints[:, J["pelvis"]] - hips, axis=-1).max() < 30.0
    height = to_canonical(joints)[..., 1]
    chain = [J[n] for n in ("pelvis", "spine", "thorax", "neck_base", "head")]
    assert (np.diff(height[:, chain], axis=1) > 0).all()
    assert (np.linalg.norm(joints[:, J["head"]] - joints[:, J["neck_base"]], axis=-1) > 120).all()


def test_left_is_left(converted: tuple[Dataset, list[str]]) -> None:
    assert_left_is_left(converted[0].joints_3d_camera)


def test_world_is_z_up_with_the_floor_at_zero(converted: tuple[Dataset, list[str]]) -> None:
    ds, _ = converted
    world = ds.joints_3d_world[rows_of(ds, "train")]
    feet = world[:, [J["left_foot"], J["right_foot"]], 2]
    assert (feet > -50).all() and (feet < 300).all()
    sitting = world[ds.meta["sequences"].index("S4_Seq2")]  # S4 sits on the floor
    assert sitting[J["head"], 2] > sitting[J["pelvis"], 2] + 400


def test_extrinsics_are_world_to_camera() -> None:
    """Read as ``X_cam = R X_world + T``, all 128 training cameras stand 0.8-2.5 m above the
    floor, upright, aimed at the capture volume; read the other way (R camera-to-world), some
    would stand below the floor."""
    calib = restricted_load(fixture_path("mpi_inf_3dhp/cameras_train.pkl"))
    heights, transposed = [], []
    for key, entry in calib.items():
        cam = camera_from_mpi3dhp(entry, key)
        heights.append(cam.center[2])
        to_volume = np.array([0.0, 0.0, 900.0]) - cam.center
        assert cam.R[2] @ to_volume / np.linalg.norm(to_volume) > np.cos(np.radians(40)), key
        assert cam.R[1, 2] < -0.5, key  # image down is world down
        other = -(entry["R"] @ entry["T"][:, 0]) * 1000  # centre if R were camera-to-world
        transposed.append((Y_UP_TO_Z_UP @ other)[2])
    assert min(heights) > 700 and max(heights) < 2600
    assert min(transposed) < 0


def _add_view(root: Path) -> None:
    """S4 Seq2 frame 1033 seen by camera 8 as well (labels carried through the calibration;
    the image is a copy, its pixels do not matter here)."""
    calib = restricted_load(root / "cameras_train.pkl")
    cam0, cam8 = (camera_from_mpi3dhp(calib[f"S4_Seq2_Cam{k}"], f"Cam{k}") for k in (0, 8))
    shutil.copyfile(root / "S4_Seq2_Cam0_001033.jpg", root / "S4_Seq2_Cam8_001033.jpg")

    def edit(a: dict[str, np.ndarray]) -> None:
        X8 = cam8.world_to_camera(cam0.camera_to_world(a["S"][0, :, :3] * 1000))
        ones = np.ones((17, 1))
        new = {"imgname": "S4_Seq2_Cam8_001033.jpg", "center": a["center"][0],
               "scale": a["scale"][0], "part": np.concatenate([cam8.project(X8), ones], 1),
               "S": np.concatenate([X8 / 1000, ones], 1)}
        for key, value in new.items():
            a[key] = np.concatenate([a[key], np.asarray([value], dtype=a[key].dtype)])

    edit_npz(root / TRAIN_NPZ, edit)


def test_views_of_one_instant_share_a_world_pose(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    _add_view(root)
    ds = Dataset(convert_mpi3dhp(root, tmp_path / "a", SIZE, say=lambda _: None))
    assert [c.name for c in ds.cameras] == ["Cam0", "Cam8", "TS1", "TS2"]
    views = ds.index.views(ds.meta["sequences"].index("S4_Seq2"), 1033)
    assert sorted(ds.cameras[ds.camera_id[r]].name for r in views) == ["Cam0", "Cam8"]
    np.testing.assert_allclose(ds.joints_3d_world[views[0]], ds.joints_3d_world[views[1]],
                               atol=0.01)
    # A take whose camera 8 was calibrated differently keeps its own camera.
    calib = restricted_load(root / "cameras_train.pkl")
    calib["S8_Seq1_Cam8"]["T"] = calib["S8_Seq1_Cam8"]["T"] + 0.01
    (root / "cameras_train.pkl").write_bytes(pickle.dumps(calib))
    ds = Dataset(convert_mpi3dhp(root, tmp_path / "b", SIZE, say=lambda _: None))
    assert [c.name for c in ds.cameras] == ["Cam0", "Cam8", "S8_Seq1_Cam8", "TS1", "TS2"]
    assert [c.viewpoint for c in ds.cameras] == ["Cam0", "Cam8", "Cam8", "", ""]


# ---------------------------------------------------------------------------- bad input


def _drop_camera(root: Path) -> list[str]:
    calib = restricted_load(root / "cameras_train.pkl")
    del calib["S8_Seq1_Cam8"]
    (root / "cameras_train.pkl").write_bytes(pickle.dumps(calib))
    return []


def _nan_label(root: Path) -> list[str]:
    edit_npz(root / TEST_NPZ, lambda a: a["S"].__setitem__((1, 0, 0), np.inf))
    return []


def _millimetres(root: Path) -> list[str]:
    edit_npz(root / TRAIN_NPZ, lambda a: a.__setitem__("S", a["S"] * 1000))
    return []


def _corrupt_jpeg(root: Path) -> list[str]:
    jpg = root / "TS2_001850.jpg"
    jpg.write_bytes(jpg.read_bytes()[:20000])
    return []


def _escaping_imgname(root: Path) -> list[str]:
    edit_npz(root / TRAIN_NPZ, lambda a: a.__setitem__(
        "imgname", np.char.add("../", a["imgname"])))
    return []


def _missing_test_calibration(root: Path) -> list[str]:
    (root / "cameras_test.pkl").unlink()
    return []


def _bad_name(root: Path) -> list[str]:
    edit_npz(root / TEST_NPZ, lambda a: a.__setitem__(
        "imgname", np.char.replace(a["imgname"], "TS1_", "Test1_")))
    return []


BREAKS: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "camera missing from the calibration": (_drop_camera, ("cameras_train.pkl",
                                                           "S8_Seq1_Cam8", TRAIN_NPZ)),
    "Inf label": (_nan_label, (TEST_NPZ, "NaN or Inf", "TS2_001850.jpg")),
    "millimetres where metres are expected": (_millimetres, (TRAIN_NPZ, "millimetres")),
    "corrupt JPEG": (_corrupt_jpeg, ("TS2_001850.jpg", "cannot decode")),
    "imgname climbs out of the root": (_escaping_imgname, (TRAIN_NPZ, "outside the image")),
    "calibration file missing": (_missing_test_calibration, ("cameras_test.pkl",
                                                             "not found")),
    "unparsable frame name": (_bad_name, (TEST_NPZ, "Test1_002001.jpg")),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_bad_input_is_refused_with_one_line(case: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    root = copy_fixture(tmp_path)
    breaker, needles = BREAKS[case]
    extra = breaker(root)
    out = tmp_path / "out"
    with pytest.raises(ConvertError) as err:
        convert_mpi3dhp(root, out, SIZE, say=lambda _: None)
    assert all(n in str(err.value) for n in needles), str(err.value)
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))
    assert_refused(["convert", "mpi3dhp", "--root", str(root), "--out", str(out),
                    "--image-size", str(SIZE), *extra], out, capsys, *needles)


def test_missing_annotation_file_and_wrong_units(tmp_path: Path, capsys) -> None:
    root, out = fixture_path("mpi_inf_3dhp"), tmp_path / "out"
    assert_refused(["convert", "mpi3dhp", "--root", str(root), "--out", str(out),
                    "--annotations", str(root / "mpi_inf_3dhp_train.npz")], out, capsys,
                   "mpi_inf_3dhp_train.npz", "not found")
    assert_refused(["convert", "mpi3dhp", "--root", str(root), "--out", str(out), "--units",
                    "mm"], out, capsys, "looks like metres")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_refused(["convert", "mpi3dhp", "--root", str(empty), "--out", str(out)], out,
                   capsys, "no annotation .npz")


def test_cli_converts_one_split(tmp_path: Path, capsys) -> None:
    out = tmp_path / "test-only"
    with pytest.raises(SystemExit) as stop:
        main(["convert", "mpi3dhp", "--root", str(fixture_path("mpi_inf_3dhp")), "--out",
              str(out), "--annotations", str(fixture_path(f"mpi_inf_3dhp/{TEST_NPZ}")),
              "--image-size", str(SIZE), "--cameras-train", str(tmp_path / "unused.pkl")])
    assert stop.value.code == 0, capsys.readouterr().err
    ds = Dataset(out)
    assert ds.meta["splits"] == {"train": [], "test": ["TS1", "TS2"]}
    assert ds.meta["actions"] == ["GreenScreen"]


def test_help_teaches_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["convert", "mpi3dhp", "--help"])
    assert stop.value.code == 0
    assert "Example: mcss convert mpi3dhp --root" in capsys.readouterr().out.replace("\n", " ")


# ---------------------------------------------------------------------------- training


def test_train_and_eval_on_the_converted_fixture(converted: tuple[Dataset, list[str]],
                                                 tmp_path: Path, capsys) -> None:
    """Two training steps (labels of S4, validation on S8) and an evaluation on TS1/TS2.
    The fixture has no multi-view instant, so this is the baseline (lam=0)."""
    data, run = converted[0].path, tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny",
              "--set", "steps=2", "--set", "ckpt_every=2", "--set", "lam=0",
              "--set", "labelled=S4", "--set", "val_subject=S8", "--no-progress"])
    assert stop.value.code == 0
    with pytest.raises(SystemExit) as stop:
        main(["eval", str(run), "--data", str(data)])
    assert stop.value.code == 0 and "mean over actions" in capsys.readouterr().out
    result = json.loads((run / "eval-test.json").read_text())
    assert result["frames"] == 2 and set(result["per_action"]) == {"GreenScreen"}
