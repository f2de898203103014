"""The on-disk format: round trip, atomic writes, determinism, splits and the view index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mcss.data.format import COLUMNS, Dataset, DatasetError, DatasetWriter
from mcss.data.multiview import MultiViewIndex
from mcss.skeleton import JOINT_INDEX, bone_lengths
from mcss.synth.body import SUBJECT_ACTORS, TEST_SUBJECTS, TRAIN_SUBJECTS
from mcss.synth.generate import preset, synthesize


def _rows(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    cols = {}
    for name, (dtype, shape) in COLUMNS.items():
        cols[name] = (rng.random((n, *shape)) * 100).astype(dtype)
    cols["frame"] = np.arange(n, dtype=np.int32)
    return cols


def _meta() -> dict:
    return {"image_size": 8, "subjects": ["S1"], "actions": ["walk"], "sequences": ["S1_walk_1"],
            "cameras": [], "splits": {"train": ["S1"]}, "provenance": {}}


def test_written_dataset_reads_back_equal(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cols = _rows(5, rng)
    images = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    with DatasetWriter(tmp_path / "ds", _meta(), 5) as writer:
        writer.add(images[:2], **{k: v[:2] for k, v in cols.items()})
        writer.add(images[2:], **{k: v[2:] for k, v in cols.items()})
        writer.write()
    ds = Dataset(tmp_path / "ds")
    assert len(ds) == 5 and np.array_equal(ds.images, images)
    for name in COLUMNS:
        assert np.array_equal(getattr(ds, name), cols[name]), name
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary folder left


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path / "ds", _meta(), 4) as writer:
        writer.add(rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8), **_rows(2, rng))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_reader_refuses_other_versions_and_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no meta.json"):
        Dataset(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "mcss-dataset",
                                                    "format_version": 99}))
    with pytest.raises(DatasetError, match="format version 99"):
        Dataset(tmp_path)


def test_multiview_index_matches_a_dense_table() -> None:
    rng = np.random.default_rng(5)
    keys = {(int(s), int(f), int(c)) for s, f, c in
            zip(rng.integers(0, 4, 300), rng.integers(3, 60, 300), rng.integers(0, 5, 300),
                strict=True)}
    seq, frame, cam = (np.array(a) for a in zip(*sorted(keys, key=lambda _: rng.random()),
                                                 strict=True))
    index = MultiViewIndex(seq, frame, cam)
    dense = np.full((4, 62, 5), -1)
    dense[seq, frame, cam] = np.arange(len(seq))
    for s in range(5):  # sequence 4 does not exist
        for f in range(62):
            expected = dense[s, f] if s < 4 else np.full(5, -1)
            assert index.views(s, f).tolist() == expected[expected >= 0].tolist()
            assert [index.row(s, f, c) for c in range(5)] == expected.tolist()
        for v in (1, 2, 3):
            full = (dense[s] >= 0).sum(axis=1) >= v if s < 4 else np.zeros(62, bool)
            assert index.frames(s, v).tolist() == np.flatnonzero(full).tolist()


def test_multiview_index_groups_instants() -> None:
    seq = np.array([0, 0, 0, 1, 1])
    frame = np.array([3, 3, 4, 0, 0])
    cam = np.array([0, 1, 0, 1, 2])
    index = MultiViewIndex(seq, frame, cam)
    assert index.row(0, 3, 1) == 1 and index.row(0, 4, 1) == -1
    assert index.views(1, 0).tolist() == [3, 4]
    assert index.frames(0).tolist() == [3]
    with pytest.raises(ValueError, match="share"):
        MultiViewIndex(seq, np.zeros(5, int), np.zeros(5, int))


def test_tiny_dataset_layout(tiny_dataset: Path) -> None:
    ds = Dataset(tiny_dataset)
    cfg = preset("tiny")
    n_actions = cfg.max_actions
    assert len(ds) == 7 * n_actions * cfg.frames_per_take * cfg.cameras
    assert ds.images.shape[1:] == (32, 32, 3) and ds.images.dtype == np.uint8
    assert isinstance(ds.images, np.memmap)
    assert ds.meta["splits"] == {"train": list(TRAIN_SUBJECTS), "test": list(TEST_SUBJECTS)}
    # Every subject performs every action, and each subject is a different actor.
    pairs = {(s, a) for s, a in zip(ds.subjects, ds.actions, strict=True)}
    assert len(pairs) == 7 * n_actions
    assert len(set(SUBJECT_ACTORS.values())) == len(SUBJECT_ACTORS)
    # Every instant is seen by every camera, with the same world pose.
    for seq in range(ds.index.num_sequences):
        for frame in ds.index.frames(seq):
            rows = ds.index.views(seq, frame)
            assert len(rows) == cfg.cameras
            assert np.ptp(ds.joints_3d_world[rows], axis=0).max() == 0


def test_labels_are_consistent(tiny_dataset: Path) -> None:
    ds = Dataset(tiny_dataset)
    for i in range(0, len(ds), 37):
        cam = ds.cameras[ds.camera_id[i]]
        world = ds.joints_3d_world[i].astype(np.float64)
        assert np.allclose(cam.world_to_camera(world), ds.joints_3d_camera[i], atol=0.05)
        assert np.allclose(cam.project(ds.joints_3d_camera[i].astype(np.float64)),
                           ds.joints_2d[i, :, :2], atol=0.01)
        crop = (ds.joints_2d[i, :, :2] - ds.box[i, :2]) * 32 / ds.box[i, 2]
        assert np.allclose(crop, ds.joints_2d_crop[i], atol=1e-3)
        assert (ds.joints_2d_crop[i] >= 0).all() and (ds.joints_2d_crop[i] < 32).all()
    # One actor keeps its bone lengths over time within a take.
    rows = np.flatnonzero((ds.sequence_id == 0) & (ds.camera_id == 0))
    assert bone_lengths(ds.joints_3d_world[rows].astype(np.float64)).std(axis=0).max() < 1.0


def test_same_seed_gives_byte_identical_dataset(tiny_dataset: Path, tmp_path: Path) -> None:
    again = synthesize(preset("tiny"), tmp_path / "again")
    for name in ("meta.json", "annotations.npz", "images.npy"):
        assert (again / name).read_bytes() == (tiny_dataset / name).read_bytes(), name
    other = synthesize(preset("tiny", seed=1), tmp_path / "other")
    assert (other / "images.npy").read_bytes() != (tiny_dataset / "images.npy").read_bytes()


def test_extra_subjects_add_unlabelled_actors_and_change_nothing_else(
        tiny_dataset: Path, tmp_path: Path) -> None:
    base = Dataset(tiny_dataset)
    ds = Dataset(synthesize(preset("tiny", extra_subjects=2), tmp_path / "extra"))
    assert ds.meta["splits"]["train"] == [*TRAIN_SUBJECTS, "X1", "X2"]
    assert ds.meta["splits"]["test"] == list(TEST_SUBJECTS)
    n = len(base)  # the standard subjects come first and are byte-identical
    assert len(ds) == n * 9 // 7
    assert np.array_equal(ds.images[:n], base.images[:])
    assert np.array_equal(ds.joints_3d_camera[:n], base.joints_3d_camera)
    extra = ds.meta["actors"]["X1"], ds.meta["actors"]["X2"]
    assert extra[0]["shirt"] != extra[1]["shirt"]
    assert {a["name"] for a in extra}.isdisjoint(SUBJECT_ACTORS.values())
    with pytest.raises(ValueError, match="extra subjects"):
        preset("tiny", extra_subjects=-1)


def test_marked_left_darkens_the_left_side_only(tiny_dataset: Path, tmp_path: Path) -> None:
    base = Dataset(tiny_dataset)
    ds = Dataset(synthesize(preset("tiny", marked_left=True), tmp_path / "marked"))
    assert np.array_equal(ds.joints_3d_camera, base.joints_3d_camera)
    seen = {}
    for side in ("left", "right"):
        idx = [JOINT_INDEX[f"{side}_{name}"] for name in ("elbow", "knee")]
        uv = np.floor(ds.joints_2d_crop[:, idx]).astype(int).clip(0, ds.meta["image_size"] - 1)
        rows = np.arange(len(ds))[:, None]
        visible = ds.joints_2d[:, idx, 2] > 0
        pixels = [np.asarray(d.images[:])[rows, uv[..., 1], uv[..., 0]][visible].astype(float)
                  for d in (ds, base)]
        seen[side] = pixels[0].sum() / pixels[1].sum()
    assert seen["right"] == 1.0
    assert 0.4 < seen["left"] < 0.6  # MARK_SHADE, up to the 8-bit rounding and the noise


def test_recorded_config_without_newer_fields_still_matches(tiny_dataset: Path) -> None:
    from mcss.synth.generate import same_config

    recorded = dict(Dataset(tiny_dataset).meta["provenance"]["config"])
    assert same_config(recorded, preset("tiny"))
    del recorded["extra_subjects"]  # a dataset written before the field existed
    assert same_config(recorded, preset("tiny"))
    assert not same_config(recorded, preset("tiny", extra_subjects=1))
    assert not same_config(None, preset("tiny"))
