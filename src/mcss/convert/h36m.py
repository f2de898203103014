"""Human3.6M, as mmpose's ``preprocess_h36m.py`` lays it out, -> one mcss dataset folder.

Input (``--root``): frames ``S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg``
(under ``images/`` or directly in the root), annotation ``.npz`` files (``imgname, center,
scale, part, S``; ``S`` in metres, camera frame, mmpose's H36M-17 order = mcss's order) and
``cameras.pkl`` keyed ``(subject, camera id)``. Frames of one take in different cameras share
their frame number: rows with equal ``(sequence, frame)`` are one instant.
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
    normalise_action,
    prepare_out,
    write_dataset,
)
from mcss.geometry import Camera, camera_from_h36m
from mcss.skeleton import NUM_JOINTS

__all__ = ["FPS", "TEST_SUBJECTS", "TRAIN_SUBJECTS", "convert_h36m", "parse_frame_name"]

FPS = 50.0
TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
ANNOTATION_FOLDERS = (".", "annotation_body3d", "annotation_body3d/fps50",
                      "annotation_body3d/fps10")
CALIBRATION_FILES = ("cameras.pkl", "annotation_body3d/cameras.pkl")
_NAME = re.compile(r"(?P<subject>S\d+)_(?P<take>.+)\.(?P<camera>\d+)_(?P<frame>\d+)"
                   r"\.(?:jpe?g|png)", re.IGNORECASE)


def parse_frame_name(imgname: str) -> tuple[str, str, str, int]:
    """``.../S1_Directions_1.54138969_000001.jpg`` -> ``("S1", "Directions_1", "54138969",
    1)``: subject, take (spaces as ``_``), camera id, frame number (1-based, of the video)."""
    match = _NAME.fullmatch(Path(str(imgname).replace("\\", "/")).name)
    if match is None:
        raise ValueError(f"image name {imgname!r} is not S<subject>_<Action>[_<n>].<camera id>"
                         "_<frame>.jpg")
    take = match["take"].replace(" ", "_")
    return match["subject"], take, match["camera"], int(match["frame"])


def convert_h36m(
    root: str | PathLike[str],
    out: str | PathLike[str],
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    annotations: Sequence[str | PathLike[str]] | None = None,
    cameras: str | PathLike[str] | None = None,
    images: str | PathLike[str] | None = None,
    units: str = "m",
    missing_views: str = "error",
    overwrite: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
    say: Say | None = None,
) -> Path:
    """Convert preprocessed Human3.6M under ``root`` into the dataset folder ``out``.

    ``annotations`` (default: the 17-joint ``.npz`` files found in ``root`` or
    ``root/annotation_body3d[/fps50|/fps10]``), ``cameras`` (default ``cameras.pkl`` there)
    and ``images`` (default ``root/images`` or ``root``) override the layout. ``units`` is
    the unit of ``S`` ("m" as mmpose writes it, or "mm"). ``missing_views``: see
    :func:`~mcss.convert.common.handle_missing_views`. Crops are the annotation's boxes
    (side ``200 * scale``) resized to ``image_size``. Every check runs before the first crop
    is written; the write is atomic.
    """
    root = check_root(root)
    size = check_image_size(image_size)
    out = prepare_out(out, overwrite)
    files = ([Path(a) for a in annotations] if annotations
             else find_annotation_files(root, ANNOTATION_FOLDERS))
    calib_path = Path(cameras) if cameras else find_file(root, CALIBRATION_FILES)
    calib = load_calibration(calib_path)
    folder = Path(images) if images else image_folder(root)
    built: dict[str, Camera] = {}
    tables = [_table(load_annotations(f), folder, calib, calib_path, units, built)
              for f in files]
    table = handle_missing_views(FrameTable.concatenate(tables), missing_views, say)
    provenance = {"generator": "mcss convert h36m", "source": str(root),
                  "annotations": [str(f) for f in files], "calibration": str(calib_path),
                  "units_of_S": units, "missing_views": missing_views,
                  "time": "(frame - 1) / 50 s: frame numbers are 1-based video frames"}
    return write_dataset(out, table, built, image_size=size, fps=FPS,
                         splits={"train": TRAIN_SUBJECTS, "test": TEST_SUBJECTS},
                         provenance=provenance, calibration=calib_path, say=say,
                         on_frame=on_frame)


def _table(ann: Annotations, images: Path, calib: Mapping[Any, Any], calib_path: Path,
           units: str, built: dict[str, Camera]) -> FrameTable:
    """Rows of one annotation file; adds the cameras it uses to ``built``."""
    n = len(ann)
    names = [_parse(str(name), ann.path) for name in ann.imgname]
    subject = np.array([s for s, _, _, _ in names], dtype=object)
    take = np.array([t for _, t, _, _ in names], dtype=object)
    camera = np.array([f"{s}.{c}" for s, _, c, _ in names], dtype=object)
    frame = np.array([f for _, _, _, f in names], dtype=np.int64)
    actions = {t: _action(t, ann, take) for t in set(take)}
    for i in np.unique(camera, return_index=True)[1]:
        if camera[i] not in built:
            built[camera[i]] = _camera(calib, calib_path, names[i][0], names[i][2], ann, i)
    if ann.S is None:
        joints = np.full((n, NUM_JOINTS, 3), np.nan)
    else:
        joints = check_units(ann.S, units, ann.path, ann.imgname)
    world = np.full_like(joints, np.nan)
    for name in set(camera):
        rows = camera == name
        world[rows] = built[name].camera_to_world(joints[rows])
    return FrameTable(
        images=images, imgname=ann.imgname, source=np.zeros(n, dtype=np.int64),
        subject=subject, action=np.array([actions[t] for t in take], dtype=object),
        sequence=np.array([f"{s}_{t}" for s, t in zip(subject, take, strict=True)],
                          dtype=object),
        camera=camera, frame=frame, time=(frame - 1) / FPS,
        box=box_from_center_scale(ann.center, ann.scale), joints_2d=ann.part,
        joints_3d_camera=joints, joints_3d_world=world,
        labelled=np.full(n, ann.S is not None), sources=(ann.path,),
    )


def _parse(imgname: str, source: Path) -> tuple[str, str, str, int]:
    try:
        return parse_frame_name(imgname)
    except ValueError as err:
        raise ConvertError(f"{source}: {err}; name the frames as mmpose's preprocessing "
                           "does (S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001"
                           ".jpg)") from err


def _action(take: str, ann: Annotations, takes: np.ndarray) -> str:
    try:
        return normalise_action(take)
    except ValueError as err:
        first = ann.imgname[int(np.flatnonzero(takes == take)[0])]
        raise ConvertError(f"{ann.path}: {first}: {err}; drop frames of other takes (e.g. "
                           "'_ALL') from the annotation file") from err


def _camera(calib: Mapping[Any, Any], calib_path: Path, subject: str, camera_id: str,
            ann: Annotations, row: int) -> Camera:
    """The calibration of one (subject, camera id), named ``S1.54138969``."""
    entry = calib.get((subject, camera_id))
    if entry is None:
        known = sorted({str(k[1]) for k in calib if isinstance(k, tuple) and len(k) == 2})
        raise ConvertError(f"{calib_path}: no camera ({subject!r}, {camera_id!r}), which "
                           f"{ann.imgname[row]} in {ann.path} names (cameras there: "
                           f"{', '.join(known) or 'none'}); use the cameras.pkl of the same "
                           "preprocessing or fix the frame names")
    try:
        camera = camera_from_h36m(entry, name=f"{subject}.{camera_id}")
        return replace(camera, viewpoint=str(camera_id))
    except (KeyError, ValueError) as err:
        raise ConvertError(f"{calib_path}: camera ({subject!r}, {camera_id!r}) is invalid "
                           f"({err}); regenerate cameras.pkl with mmpose's preprocessing"
                           ) from err
