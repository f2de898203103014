"""The on-disk dataset format: one folder, shared by the synthesiser and every converter.

Layout::

    DIR/meta.json          format version, joint names, units, image size, cameras,
                           splits, the names behind every integer code, provenance
    DIR/annotations.npz    columns, one row per frame (see ``COLUMNS``)
    DIR/images.npy         (N, H, W, 3) uint8, opened memory-mapped for O(1) random access

Datasets are written into a temporary sibling folder and renamed into place, so a reader
never sees a half-written dataset. Nothing is unpickled: NumPy files are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from mcss.data.multiview import MultiViewIndex
from mcss.geometry import Camera
from mcss.skeleton import JOINT_NAMES, NUM_JOINTS

FORMAT_NAME = "mcss-dataset"
FORMAT_VERSION = 1

COLUMNS: dict[str, tuple[str, tuple[int, ...]]] = {
    # name: (dtype, shape per row)
    "subject_id": ("int16", ()),  # index into meta["subjects"]
    "action_id": ("int16", ()),  # index into meta["actions"]
    "sequence_id": ("int32", ()),  # index into meta["sequences"]: one take, all its cameras
    "camera_id": ("int16", ()),  # index into meta["cameras"]
    "frame": ("int32", ()),  # frame number in the take; same number = same instant
    "time": ("float32", ()),  # seconds since the take's start
    "box": ("float32", (3,)),  # x0, y0, side of the square crop in full-image px
    "joints_2d": ("float32", (NUM_JOINTS, 3)),  # u, v full-image px, visibility 0/1
    "joints_2d_crop": ("float32", (NUM_JOINTS, 2)),  # u, v in crop px
    "joints_3d_camera": ("float32", (NUM_JOINTS, 3)),  # mm, camera frame
    "joints_3d_world": ("float32", (NUM_JOINTS, 3)),  # mm, world frame (NaN if unknown)
    "labelled": ("bool", ()),  # a 3D label exists for this frame
}


class DatasetError(ValueError):
    """A dataset folder is missing, incomplete or of another format; the message says how."""


class DatasetWriter:
    """Streams rows and images into a temporary folder, then renames it into place.

    Use as a context manager: on an exception the temporary folder is removed and nothing
    appears at ``out``. ``meta`` must hold ``image_size``, ``subjects``, ``actions``,
    ``sequences``, ``cameras`` (camera dicts, :meth:`Camera.to_dict`), ``splits`` and
    ``provenance``. Images go straight to a memory-mapped file, so datasets larger than
    memory can be written.
    """

    def __init__(self, out: str | os.PathLike[str], meta: dict[str, Any], num_frames: int):
        self.out = Path(out)
        self.meta = meta
        self.num_frames = num_frames
        self.out.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_temps(self.out)
        self.tmp = self.out.with_name(
            f".{self.out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.tmp.mkdir()
        size = meta["image_size"]
        try:
            self._images = _allocated_memmap(self.tmp / "images.npy",
                                             (num_frames, size, size, 3))
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self._columns: dict[str, list[np.ndarray]] = {name: [] for name in COLUMNS}
        self._filled = 0

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: type | None, *_: object) -> None:
        if self.tmp.exists():  # not renamed into place: an error happened before write()
            self.__dict__.pop("_images", None)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def add(self, images: np.ndarray, **columns: np.ndarray) -> None:
        """Append a block of rows: ``images`` ``(n, H, W, 3)`` uint8 and every column."""
        missing = set(COLUMNS) - set(columns)
        unknown = set(columns) - set(COLUMNS)
        if missing or unknown:
            raise ValueError(f"columns missing {sorted(missing)}, unknown {sorted(unknown)}")
        n = len(images)
        if self._filled + n > self.num_frames:
            raise ValueError(f"more than the {self.num_frames} frames announced")
        for name, (dtype, shape) in COLUMNS.items():
            value = np.broadcast_to(np.asarray(columns[name], dtype=dtype), (n, *shape))
            self._columns[name].append(value)
        self._images[self._filled : self._filled + n] = images
        self._filled += n

    def write(self) -> Path:
        """Finish ``images.npy``, write ``annotations.npz`` and ``meta.json``; rename."""
        if self._filled != self.num_frames:
            raise ValueError(f"{self._filled} frames written, {self.num_frames} announced")
        self._images.flush()
        del self._images
        columns = {k: np.concatenate(v) for k, v in self._columns.items()}
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "joint_names": list(JOINT_NAMES),
            "units": {"joints_3d": "mm", "joints_2d": "px", "time": "s"},
            "num_frames": self.num_frames,
            **self.meta,
        }
        np.savez(self.tmp / "annotations.npz", **columns)
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        if self.out.exists():
            shutil.rmtree(self.out)
        os.replace(self.tmp, self.out)
        return self.out


def _remove_abandoned_temps(out: Path) -> None:
    """Delete temporary folders for ``out`` left by writers that were killed (their process
    is gone); a writer still running elsewhere keeps its folder."""
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        pid = tmp.name.removeprefix(f".{out.name}.tmp-").split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _allocated_memmap(path: Path, shape: tuple[int, ...]) -> np.memmap:
    """A uint8 ``.npy`` memmap whose blocks are reserved on disk now, so a full disk is an
    ``OSError`` here (naming the file) rather than a SIGBUS halfway through writing."""
    try:
        images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
        with path.open("r+b") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, path.stat().st_size)
            except OSError as err:
                if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err
    return images


class Dataset:
    """Read-only view of a dataset folder: columns as arrays, images memory-mapped.

    ``ds.joints_3d_camera[i]``, ``ds.images[i]`` and ``ds.index.row(seq, frame, cam)`` are
    all O(1).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        try:
            with np.load(self.path / "annotations.npz", allow_pickle=False) as npz:
                self.columns: dict[str, np.ndarray] = {k: npz[k] for k in npz.files}
            self.images: np.ndarray = np.load(self.path / "images.npy", mmap_mode="r")
        except (OSError, ValueError) as err:
            raise DatasetError(f"{self.path}: cannot read the dataset files ({err}); "
                               "write it again with `mcss synth` or `mcss convert`") from err
        self._validate()

    def _validate(self) -> None:
        missing = set(COLUMNS) - set(self.columns)
        if missing:
            raise DatasetError(f"{self.path / 'annotations.npz'}: missing columns "
                               f"{sorted(missing)}; write the dataset again")
        n = self.meta["num_frames"]
        bad = [k for k, v in self.columns.items() if len(v) != n]
        if bad or len(self.images) != n:
            raise DatasetError(f"{self.path}: columns {bad} or images ({len(self.images)}) "
                               f"do not have the {n} rows meta.json declares")

    def __len__(self) -> int:
        return self.meta["num_frames"]

    def __getattr__(self, name: str) -> np.ndarray:
        columns = self.__dict__.get("columns", {})
        if name in columns:
            return columns[name]
        raise AttributeError(name)

    @cached_property
    def cameras(self) -> list[Camera]:
        return [Camera.from_dict(c) for c in self.meta["cameras"]]

    @cached_property
    def viewpoint_id(self) -> np.ndarray:
        """Per row, an index of its physical viewpoint: cameras with the same ``viewpoint``
        (one Human3.6M camera calibrated per subject) share it; others are their own."""
        names = [c.get("viewpoint") or f"#{i}" for i, c in enumerate(self.meta["cameras"])]
        codes = np.unique(names, return_inverse=True)[1].astype(np.int16)
        return codes[self.columns["camera_id"]]

    @cached_property
    def index(self) -> MultiViewIndex:
        return MultiViewIndex(self.columns["sequence_id"], self.columns["frame"],
                              self.columns["camera_id"])

    @property
    def subjects(self) -> np.ndarray:
        """Subject name of every row."""
        return np.asarray(self.meta["subjects"])[self.columns["subject_id"]]

    @property
    def actions(self) -> np.ndarray:
        """Action name of every row."""
        return np.asarray(self.meta["actions"])[self.columns["action_id"]]

    def rows_of(self, subjects: list[str] | tuple[str, ...]) -> np.ndarray:
        """Row indices of the given subjects (raises for a subject the dataset lacks)."""
        known = self.meta["subjects"]
        unknown = [s for s in subjects if s not in known]
        if unknown:
            raise DatasetError(f"{self.path}: no subject {unknown}; it has {known}")
        codes = [known.index(s) for s in subjects]
        return np.flatnonzero(np.isin(self.columns["subject_id"], codes))

    def split_rows(self, split: str) -> np.ndarray:
        """Row indices of a split named in ``meta["splits"]`` (e.g. ``train``, ``test``)."""
        splits: Mapping[str, list[str]] = self.meta["splits"]
        if split not in splits:
            raise DatasetError(f"{self.path}: no split {split!r}; it has {sorted(splits)}")
        return self.rows_of(splits[split])


def read_meta(path: Path) -> dict[str, Any]:
    """Read and check ``meta.json`` of a dataset folder."""
    meta_path = Path(path) / "meta.json"
    if not meta_path.is_file():
        raise DatasetError(f"{path}: not an mcss dataset (no meta.json); create one with "
                           "`mcss synth --out DIR` or `mcss convert ...`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise DatasetError(f"{meta_path}: not valid JSON ({err})") from err
    if meta.get("format") != FORMAT_NAME:
        raise DatasetError(f"{meta_path}: format is {meta.get('format')!r}, not {FORMAT_NAME!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{meta_path}: format version {meta.get('format_version')} is not supported by "
            f"this mcss (reads version {FORMAT_VERSION}); convert the data again"
        )
    return meta
