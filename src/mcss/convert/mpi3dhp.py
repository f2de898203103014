"""MPI-INF-3DHP, as mmpose's ``preprocess_mpi_inf_3dhp.py`` lays it out, -> one mcss dataset.

Input (``--root``): frames ``S4_Seq2_Cam0_001033.jpg`` (training set) and ``TS1_002001.jpg``
(test set), under ``images/`` or directly in the root; annotation ``.npz`` files (``imgname,
center, scale, part, S``; ``S`` in metres, camera frame, in 3DHP's own 17-joint order, see
:data:`JOINTS`); ``cameras_train.pkl`` keyed ``S<subject>_Seq<n>_Cam<k>`` and
``cameras_test.pkl`` keyed ``TS1``..``TS6``.

Conventions, measured on the real files (docs/real_data.md): a training calibration's ``R``
and ``T`` map world to camera, ``X_cam = R @ X_world + T`` (``T`` in metres, a translation,
not the camera centre); the 3DHP world is y-up with the floor near y = 0, so it is rotated
to mcss's z-up world by :data:`Y_UP_TO_Z_UP`. Test calibrations hold intrinsics only: their
cameras get ``R = I``, ``t = 0`` and the rows' world joints are NaN. Calibration image sizes
are not trusted (the real ``cameras_train.pkl`` says ``h = 204`` for 2048-px frames): every
camera takes its size from its images, with a warning when they disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from mcss.convert import ConvertError
from mcss.convert.common import (
    DEFAULT_IMAGE_SIZE,
    Annotations,
    FrameTable,
    Say,
    box_from_center_scale,
    check_image_size,
    check_root,
    check_units,
    find_annotation_files,
    find_file,
    handle_missing_views,
    image_folder,
    load_annotations,
    load_calibration,
    prepare_out,
    write_dataset,
)
from mcss.geometry import Camera
from mcss.skeleton import JOINT_NAMES, NUM_JOINTS

__all__ = ["FPS", "JOINTS", "TO_MCSS", "Y_UP_TO_Z_UP", "camera_from_mpi3dhp", "convert_mpi3dhp",
           "parse_frame_name"]

FPS = 25.0
TRAIN_SUBJECTS = tuple(f"S{i}" for i in range(1, 9))
TEST_SUBJECTS = tuple(f"TS{i}" for i in range(1, 7))
TEST_SCENES = {"TS1": "GreenScreen", "TS2": "GreenScreen", "TS3": "NoGreenScreen",
               "TS4": "NoGreenScreen", "TS5": "Outdoor", "TS6": "Outdoor"}

JOINTS: tuple[str, ...] = (
    "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "pelvis", "spine", "head",
)
"""MPI-INF-3DHP's 17 joints in mmpose's order (``joints_17`` of its preprocessing)."""

TO_MCSS: tuple[int, ...] = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
"""mcss joint ``j`` is 3DHP joint ``TO_MCSS[j]``: ``mcss = joints_3dhp[..., TO_MCSS, :]``.
Three definitions differ (docs/real_data.md): mcss ``thorax`` <- 3DHP ``neck``, mcss
``neck_base`` <- 3DHP ``head``, mcss ``head`` <- 3DHP ``head_top``."""

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation from the 3DHP world (y up) to mcss's (z up): ``(x, y, z) -> (x, -z, y)``."""

ANNOTATION_FOLDERS = (".", "annotations")
CALIBRATION_FILES = {"train": ("cameras_train.pkl", "annotations/cameras_train.pkl"),
                     "test": ("cameras_test.pkl", "annotations/cameras_test.pkl")}
_TRAIN = re.compile(r"(?P<subject>S\d+)_(?P<seq>Seq\d+)_(?P<cam>Cam\d+)_(?P<frame>\d+)"
                    r"\.(?:jpe?g|png)", re.IGNORECASE)
_TEST = re.compile(r"(?P<subject>TS\d+)_(?P<frame>\d+)\.(?:jpe?g|png)", re.IGNORECASE)


def parse_frame_name(imgname: str) -> tuple[str, str, str, str, int]:
    """``S4_Seq2_Cam0_001033.jpg`` -> ``("train", "S4", "S4_Seq2", "S4_Seq2_Cam0", 1033)``;
    ``TS1_002001.jpg`` -> ``("test", "TS1", "TS1", "TS1", 2001)``: split, subject, sequence,
    calibration key (the camera), frame number (1-based)."""
    name = Path(str(imgname).replace("\\", "/")).name
    if match := _TRAIN.fullmatch(name):
        sequence = f"{match['subject']}_{match['seq']}"
        return ("train", match["subject"], sequence, f"{sequence}_{match['cam']}",
                int(match["frame"]))
    if match := _TEST.fullmatch(name):
        return "test", match["subject"], match["subject"], match["subject"], int(match["frame"])
    raise ValueError(f"image name {imgname!r} is neither S<subject>_Seq<n>_Cam<k>_<frame>.jpg "
                     "(training set) nor TS<n>_<frame>.jpg (test set)")


def convert_mpi3dhp(
    root: str | PathLike[str],
    out: str | PathLike[str],
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    annotations: Sequence[str | PathLike[str]] | None = None,
    cameras_train: str | PathLike[str] | None = None,
    cameras_test: str | PathLike[str] | None = None,
    images: str | PathLike[str] | None = None,
    units: str = "m",
    missing_views: str = "error",
    overwrite: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
    say: Say | None = None,
) -> Path:
    """Convert preprocessed MPI-INF-3DHP under ``root`` into the dataset folder ``out``.

    ``annotations`` default to the 17-joint ``.npz`` files in ``root`` or
    ``root/annotations`` (train and test alike: each row's split comes from its image name);
    the calibrations to ``cameras_train.pkl`` / ``cameras_test.pkl`` there (each is read only
    if a row needs it). Joints are reordered to mcss's H36M-17 order (:data:`TO_MCSS`).
    Other arguments as :func:`mcss.convert.h36m.convert_h36m`.
    """
    root = check_root(root)
    size = check_image_size(image_size)
    out = prepare_out(out, overwrite)
    files = ([Path(a) for a in annotations] if annotations
             else find_annotation_files(root, ANNOTATION_FOLDERS))
    calib_paths = {split: Path(given) if given else find_file(root, CALIBRATION_FILES[split])
                   for split, given in (("train", cameras_train), ("test", cameras_test))}
    folder = Path(images) if images else image_folder(root)
    calibrations = _Calibrations(calib_paths)
    tables = [_table(load_annotations(f), folder, calibrations, units) for f in files]
    table = handle_missing_views(FrameTable.concatenate(tables), missing_views, say)
    provenance = {
        "generator": "mcss convert mpi3dhp", "source": str(root),
        "annotations": [str(f) for f in files],
        "calibration": {k: str(v) for k, v in calib_paths.items()}, "units_of_S": units,
        "missing_views": missing_views,
        "joint_mapping": {name: JOINTS[j] for name, j in zip(JOINT_NAMES, TO_MCSS, strict=True)},
        "world": "3DHP world (y up) rotated to z up: (x, y, z) -> (x, -z, y); test-set "
                 "cameras have no extrinsics (R = I, t = 0) and NaN world joints",
        "time": "(frame - 1) / 25 s: frame numbers are 1-based video frames",
    }
    return write_dataset(out, table, calibrations.built, image_size=size, fps=FPS,
                         splits={"train": TRAIN_SUBJECTS, "test": TEST_SUBJECTS},
                         provenance=provenance, calibration=calibrations.files, say=say,
                         on_frame=on_frame)


class _Calibrations:
    """The two calibration files, read when first needed, and the cameras built from them.

    mmpose stores one training calibration per take (``S4_Seq2_Cam0``), but the takes share
    their cameras: identical calibrations of ``CamK`` become one camera named ``CamK`` (so a
    physical camera keeps one id across takes); a calibration that differs keeps its key.
    """

    def __init__(self, paths: Mapping[str, Path]) -> None:
        self.paths = paths
        self.loaded: dict[str, dict[Any, Any]] = {}
        self.built: dict[str, Camera] = {}  # by camera name
        self.names: dict[str, str] = {}  # calibration key -> camera name
        self.files: dict[str, Path] = {}  # camera name -> its calibration file

    def name(self, split: str, key: str, ann: Annotations, row: int) -> str:
        """The camera name of calibration ``key`` (built on first use)."""
        if key not in self.names:
            camera = self._build(split, key, ann, row)
            name = key if split == "test" else key.rsplit("_", 1)[1]
            if name in self.built and not _same(self.built[name], camera):
                name = key
            viewpoint = "" if split == "test" else key.rsplit("_", 1)[1]
            self.built.setdefault(name, replace(camera, name=name, viewpoint=viewpoint))
            self.names[key], self.files[name] = name, self.paths[split]
        return self.names[key]

    def _build(self, split: str, key: str, ann: Annotations, row: int) -> Camera:
        path = self.paths[split]
        if split not in self.loaded:
            self.loaded[split] = load_calibration(path)
        entry = self.loaded[split].get(key)
        if entry is None:
            raise ConvertError(
                f"{path}: no camera {key!r}, which {ann.imgname[row]} in {ann.path} names "
                f"(it has {len(self.loaded[split])} cameras, e.g. "
                f"{', '.join(map(str, list(self.loaded[split])[:3]))}); use the "
                "calibration of the same preprocessing or fix the frame names")
        try:
            return camera_from_mpi3dhp(entry, key, split)
        except (KeyError, ValueError, TypeError) as err:
            raise ConvertError(f"{path}: camera {key!r} is invalid ({err}); regenerate the "
                               "file with mmpose's preprocessing") from err


def _same(a: Camera, b: Camera) -> bool:
    return all(np.allclose(getattr(a, f), getattr(b, f), rtol=0, atol=1e-9)
               for f in ("fx", "fy", "cx", "cy", "R", "t", "k", "p", "width", "height"))


def camera_from_mpi3dhp(entry: Mapping[str, Any], name: str, split: str = "train") -> Camera:
    """A :class:`Camera` from one entry of mmpose's ``cameras_train.pkl`` (world->camera
    ``R``, ``T`` in metres; the y-up world turned z-up) or ``cameras_test.pkl`` (``split =
    "test"``: intrinsics only, so ``R = I``, ``t = 0``). Raises ``ValueError`` / ``KeyError``
    for an unusable entry."""
    f = np.asarray(entry["f"], dtype=np.float64).reshape(2)
    c = np.asarray(entry["c"], dtype=np.float64).reshape(2)
    size = {"width": int(entry.get("w", 0)), "height": int(entry.get("h", 0)), "name": name}
    if split == "test":
        return Camera(f[0], f[1], c[0], c[1], R=np.eye(3), t=np.zeros(3), **size)
    R = np.asarray(entry["R"], dtype=np.float64).reshape(3, 3)
    T = np.asarray(entry["T"], dtype=np.float64).reshape(3)
    if np.linalg.norm(T) > 100.0:
        raise ValueError(f"T = {T} is over 100 m from the origin: it looks like millimetres, "
                         "but mmpose's cameras_train.pkl stores metres")
    return Camera(f[0], f[1], c[0], c[1], R=R @ Y_UP_TO_Z_UP.T, t=T * 1000.0, **size)


def _table(ann: Annotations, images: Path, calibrations: _Calibrations, units: str
           ) -> FrameTable:
    """Rows of one annotation file, joints reordered to mcss's order."""
    n = len(ann)
    names = [_parse(str(name), ann.path) for name in ann.imgname]
    split, subject, sequence, camera = (np.array([row[k] for row in names], dtype=object)
                                        for k in range(4))
    frame = np.array([row[4] for row in names], dtype=np.int64)
    camera_of = {key: calibrations.name(split[i], key, ann, i)
                 for key, i in zip(*np.unique(camera, return_index=True), strict=True)}
    camera = np.array([camera_of[key] for key in camera], dtype=object)
    if ann.S is None:
        joints = np.full((n, NUM_JOINTS, 3), np.nan)
    else:
        joints = check_units(ann.S[:, TO_MCSS], units, ann.path, ann.imgname)
    world = np.full_like(joints, np.nan)
    for name in set(camera_of.values()):
        rows = (camera == name) & (split == "train")
        world[rows] = calibrations.built[name].camera_to_world(joints[rows])
    action = np.array([TEST_SCENES.get(s, "Other") if k == "test" else q.rsplit("_", 1)[1]
                       for k, s, q in zip(split, subject, sequence, strict=True)], dtype=object)
    return FrameTable(
        images=images, imgname=ann.imgname, source=np.zeros(n, dtype=np.int64),
        subject=subject, action=action, sequence=sequence, camera=camera, frame=frame,
        time=(frame - 1) / FPS, box=box_from_center_scale(ann.center, ann.scale),
        joints_2d=ann.part[:, TO_MCSS], joints_3d_camera=joints, joints_3d_world=world,
        labelled=np.full(n, ann.S is not None), sources=(ann.path,),
    )


def _parse(imgname: str, source: Path) -> tuple[str, str, str, str, int]:
    try:
        return parse_frame_name(imgname)
    except ValueError as err:
        raise ConvertError(f"{source}: {err}; name the frames as mmpose's preprocessing "
                           "does") from err
