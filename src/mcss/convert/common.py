"""Helpers shared by the real-data converters: annotation files, validation, crops, instants.

The benchmark converters (:mod:`mcss.convert.h36m`, :mod:`mcss.convert.mpi3dhp`) read mmpose's
preprocessed layout: frames on disk, an annotation ``.npz`` (``imgname, center, scale, part,
S``) and a calibration pickle. They parse it into a :class:`FrameTable` (one row per frame,
names rather than codes), validate it, and :func:`write_dataset` crops every frame into the
mcss format through :class:`~mcss.data.format.DatasetWriter`, so an error at any point leaves
nothing at ``--out``. Every problem raises :class:`~mcss.convert.ConvertError` with one line
naming the file and the fix.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from os import PathLike
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
from PIL import Image

from mcss import __version__
from mcss.convert import ConvertError
from mcss.crops import square_crop
from mcss.data.format import DatasetWriter
from mcss.geometry import Camera, image_to_crop
from mcss.safe_pickle import restricted_load
from mcss.skeleton import NUM_JOINTS, bone_lengths

__all__ = [
    "ANNOTATION_KEYS",
    "DEFAULT_IMAGE_SIZE",
    "H36M_ACTIONS",
    "MISSING_VIEWS",
    "Annotations",
    "ConvertWarning",
    "FrameTable",
    "Say",
    "box_from_center_scale",
    "cameras_with_image_sizes",
    "check_image_size",
    "check_root",
    "check_units",
    "complete_instants",
    "find_annotation_files",
    "find_file",
    "handle_missing_views",
    "image_folder",
    "image_path",
    "load_annotations",
    "load_calibration",
    "load_crop",
    "natural_key",
    "normalise_action",
    "prepare_out",
    "read_image_sizes",
    "reprojection_errors",
    "write_dataset",
]

DEFAULT_IMAGE_SIZE = 64  # as `mcss synth` (SynthConfig.image_size)
ANNOTATION_KEYS = ("imgname", "center", "scale", "part", "S")
PLAUSIBLE_BONE_MM = (50.0, 1000.0)  # bounds on a frame's median bone length
MISSING_VIEWS = ("error", "drop", "keep")
REPROJECTION_WARN = 0.05  # warn when 3D labels project this far (fraction of the box side)
CHUNK = 64  # rows per DatasetWriter.add

H36M_ACTIONS: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)
_ACTION_KEYS: dict[str, str] = {
    **{name.lower(): name for name in H36M_ACTIONS},
    "takingphoto": "Photo",
    "walkingdog": "WalkDog",
    "walkingtogether": "WalkTogether",
}

Say = Callable[[str], None]


class ConvertWarning(UserWarning):
    """Something a converter worked around (it says how); the dataset is still written."""


def _warn(message: str) -> None:
    warnings.warn(message, ConvertWarning, stacklevel=3)


def natural_key(text: str) -> list[int | str]:
    """Sort key putting ``S2`` before ``S11`` and ``frame9`` before ``frame10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


# ---------------------------------------------------------------------------- names


def normalise_action(name: str) -> str:
    """The canonical Human3.6M action (one of :data:`H36M_ACTIONS`) of a take name.

    Takes are spelled inconsistently in the released files: ``TakingPhoto`` / ``Photo``,
    ``WalkingDog`` / ``WalkDog``, ``Discussion 1`` / ``Discussion_2`` (sub-action suffixes),
    spaces or underscores. Raises ``ValueError`` for a name that is none of the 15 actions.
    """
    stem = re.sub(r"[\s_.-]*\d+$", "", name.strip())
    key = re.sub(r"[^a-z]", "", stem.lower())
    if key not in _ACTION_KEYS:
        raise ValueError(f"{name!r} is not a Human3.6M action; expected one of "
                         f"{', '.join(H36M_ACTIONS)} (with an optional sub-action number)")
    return _ACTION_KEYS[key]


def check_image_size(size: int) -> int:
    """The crop size, checked like ``mcss synth --image-size``."""
    if not 16 <= size <= 256 or size % 8:
        raise ConvertError(f"--image-size must be a multiple of 8 in [16, 256], got {size}")
    return int(size)


def prepare_out(out: str | PathLike[str], overwrite: bool) -> Path:
    """Check that ``out`` may be written: absent, or an mcss dataset and ``overwrite``."""
    out = Path(out)
    if out.exists():
        if not overwrite:
            raise ConvertError(f"{out} already exists; pass --overwrite to replace it or "
                               "choose another --out")
        if not (out / "meta.json").is_file():
            raise ConvertError(f"{out} exists and is not an mcss dataset; refusing to replace "
                               "it: choose another --out")
    return out


# ---------------------------------------------------------------------------- annotations


@dataclass
class Annotations:
    """One mmpose-style annotation file: ``S`` is None when it holds no 3D labels."""

    path: Path
    imgname: np.ndarray  # (N,) str, image paths relative to the image folder
    center: np.ndarray  # (N, 2) px
    scale: np.ndarray  # (N,) box side / 200 px
    part: np.ndarray  # (N, J, 3) u, v px, visibility
    S: np.ndarray | None  # (N, J, 3) camera frame, in the file's units

    def __len__(self) -> int:
        return len(self.imgname)


def find_annotation_files(root: Path, folders: Sequence[str], num_joints: int = NUM_JOINTS
                          ) -> list[Path]:
    """The annotation ``.npz`` files of a dataset folder: those directly in the first of
    ``root / folder`` that holds any, with every key of :data:`ANNOTATION_KEYS` but ``S`` and
    ``num_joints`` joints (others, such as 24-joint SMPL files, are not pose annotations)."""
    for folder in folders:
        candidates = sorted((root / folder).glob("*.npz"))
        found = [p for p in candidates if _is_pose_annotation(p, num_joints)]
        if found:
            return found
    where = ", ".join(str(root / f) for f in folders)
    raise ConvertError(f"{root}: no annotation .npz with {', '.join(ANNOTATION_KEYS)} and "
                       f"{num_joints} joints in {where}; run mmpose's preprocessing "
                       "(docs/real_data.md) or pass --annotations FILE")


def _is_pose_annotation(path: Path, num_joints: int) -> bool:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if not {"imgname", "center", "scale", "part"} <= keys:
                return False
            return npz["part"].ndim == 3 and npz["part"].shape[1] == num_joints
    except (OSError, ValueError):
        return True  # unreadable: let load_annotations say why


def load_annotations(path: str | PathLike[str], num_joints: int = NUM_JOINTS) -> Annotations:
    """Read and validate one annotation file (shapes, joint counts, finite values)."""
    path = Path(path)
    if not path.is_file():
        raise ConvertError(f"{path}: annotation file not found; check the path or run mmpose's "
                           "preprocessing (docs/real_data.md)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if k in ANNOTATION_KEYS}
    except (OSError, ValueError, EOFError) as err:
        raise ConvertError(f"{path}: cannot read the annotation file ({err}); write it again "
                           "with plain arrays (np.savez, string imgname, no objects)") from err
    missing = [k for k in ANNOTATION_KEYS if k != "S" and k not in arrays]
    if missing:
        raise ConvertError(f"{path}: missing key(s) {missing}; an annotation file holds "
                           f"{', '.join(ANNOTATION_KEYS)} (mmpose's preprocessing writes them)")
    ann = Annotations(path, arrays["imgname"].astype(str), arrays["center"].astype(np.float64),
                      arrays["scale"].astype(np.float64), _part(arrays["part"], path),
                      None if "S" not in arrays else arrays["S"].astype(np.float64)[..., :3])
    _check_shapes(ann, num_joints)
    _check_finite(ann)
    return ann


def _part(part: np.ndarray, path: Path) -> np.ndarray:
    part = np.asarray(part, dtype=np.float64)
    if part.ndim != 3 or part.shape[-1] not in (2, 3):
        raise ConvertError(f"{path}: part has shape {part.shape}, expected (N, joints, 2 or 3)")
    if part.shape[-1] == 2:
        part = np.concatenate([part, np.ones(part.shape[:2] + (1,))], axis=-1)
    return part


def _check_shapes(ann: Annotations, num_joints: int) -> None:
    n = len(ann.imgname)
    expected = {"center": (n, 2), "scale": (n,), "part": (n, num_joints, 3)}
    if ann.S is not None:
        expected["S"] = (n, num_joints, 3)
    for key, shape in expected.items():
        got = getattr(ann, key).shape
        if got[:1] != shape[:1]:
            raise ConvertError(f"{ann.path}: {key} has {got[0]} rows but imgname has {n}; "
                               "every key must have one row per image")
        if key in ("part", "S") and got[1] != num_joints:
            raise ConvertError(f"{ann.path}: {key} has {got[1]} joints, expected {num_joints} "
                               "(mmpose's 17-joint order); use the 17-joint annotation file")
        if got != shape:
            raise ConvertError(f"{ann.path}: {key} has shape {got}, expected {shape}")


def _check_finite(ann: Annotations) -> None:
    checks = {"center": ann.center, "scale": ann.scale, "part": ann.part[..., :2]}
    if ann.S is not None:
        checks["S"] = ann.S
    for key, values in checks.items():
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConvertError(f"{ann.path}: {key} holds NaN or Inf in {int(bad.sum())} rows "
                               f"(first: row {i}, {ann.imgname[i]}); drop those rows or fix "
                               "the labels")
    if (ann.scale <= 0).any():
        i = int(np.flatnonzero(ann.scale <= 0)[0])
        raise ConvertError(f"{ann.path}: scale must be > 0 (box side / 200 px); row {i} "
                           f"({ann.imgname[i]}) has {ann.scale[i]}")


def check_units(joints: np.ndarray, units: str, path: Path, names: np.ndarray) -> np.ndarray:
    """3D joints ``(N, 17, 3)`` (mcss order) in ``units`` ("m" or "mm") -> mm, refusing
    frames whose median bone length is outside :data:`PLAUSIBLE_BONE_MM` (a unit mistake)."""
    if units not in ("m", "mm"):
        raise ConvertError(f"--units must be 'm' or 'mm', got {units!r}")
    mm = joints * (1000.0 if units == "m" else 1.0)
    if not len(mm):
        return mm
    median = np.median(bone_lengths(mm), axis=-1)
    low, high = PLAUSIBLE_BONE_MM
    bad = (median < low) | (median > high)
    if not bad.any():
        return mm
    i = int(np.flatnonzero(bad)[0])
    if units == "m" and median[i] > high:
        hint = ("it looks like millimetres; mmpose's files store metres: divide S by 1000 or "
                "pass --units mm")
    elif units == "mm" and median[i] < low:
        hint = "it looks like metres: pass --units m (the default)"
    else:
        hint = "check the units (--units m or mm) and the joint order"
    raise ConvertError(f"{path}: S read as {units} gives a median bone length of "
                       f"{median[i]:.4g} mm in {int(bad.sum())} rows (first: {names[i]}), "
                       f"outside {low:.0f}-{high:.0f} mm; {hint}")


# ---------------------------------------------------------------------------- files


def find_file(root: Path, candidates: Sequence[str]) -> Path:
    """The first of ``root / candidate`` that exists (else the first, for the error)."""
    for candidate in candidates:
        if (root / candidate).exists():
            return root / candidate
    return root / candidates[0]


def image_folder(root: Path) -> Path:
    """Where imgnames are relative to: ``root/images`` (mmpose's layout) if it exists."""
    return root / "images" if (root / "images").is_dir() else root


def check_root(root: str | PathLike[str]) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ConvertError(f"{root}: no such folder; --root is the folder of the preprocessed "
                           "frames and annotations (docs/real_data.md)")
    return root


def load_calibration(path: str | PathLike[str]) -> dict[Any, Any]:
    """A calibration pickle (a dict), read with the restricted unpickler."""
    path = Path(path)
    if not path.is_file():
        raise ConvertError(f"{path}: calibration file not found; run mmpose's preprocessing "
                           "(docs/real_data.md) or pass --cameras FILE")
    try:
        calib = restricted_load(path)
    except Exception as err:  # UnsafePickleError, truncated or foreign files alike
        raise ConvertError(f"{path}: cannot read the calibration ({err})") from err
    if not isinstance(calib, dict):
        raise ConvertError(f"{path}: a calibration file is a dict of cameras, got "
                           f"{type(calib).__name__}; regenerate it with mmpose's preprocessing")
    return calib


def image_path(images: Path, imgname: str, source: Path) -> Path:
    """``images / imgname``, refusing names that are absolute or climb out with ``..``."""
    posix = PurePosixPath(imgname.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(imgname).drive or ".." in posix.parts:
        raise ConvertError(f"{source}: imgname {imgname!r} points outside the image folder "
                           f"{images}; image names must be relative paths without '..'")
    return images.joinpath(*posix.parts)


def _open_error(path: Path, source: Path, err: Exception) -> ConvertError:
    if isinstance(err, FileNotFoundError):
        return ConvertError(f"{path}: image not found (named in {source}); extract the frames "
                            "with mmpose's preprocessing or point --images at them")
    return ConvertError(f"{path}: cannot decode the image ({err}); extract this frame again "
                        f"or drop its row from {source}")


def read_image_sizes(table: FrameTable) -> np.ndarray:
    """``(N, 2)`` width, height of every row's image from its header (missing files raise)."""
    sizes = np.zeros((len(table), 2), dtype=np.int64)
    for i in range(len(table)):
        path = table.path(i)
        try:
            with Image.open(path) as image:
                sizes[i] = image.size
        except (OSError, ValueError, SyntaxError) as err:
            raise _open_error(path, table.sources[table.source[i]], err) from err
    return sizes


def box_from_center_scale(center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """mmpose's ``center`` ``(N, 2)`` and ``scale`` ``(N,)`` -> square boxes ``(N, 3)``
    ``(x0, y0, side)`` with ``side = 200 * scale``."""
    side = 200.0 * np.asarray(scale, dtype=np.float64)
    return np.concatenate([np.asarray(center) - side[:, None] / 2.0, side[:, None]], axis=1)


def load_crop(path: Path, box: np.ndarray, size: int, source: Path) -> np.ndarray:
    """The square ``box`` (full-image px) of an image resized to ``size``: ``(size, size, 3)``.

    JPEGs are decoded at the smallest DCT scale that still covers the crop's resolution (fast
    for 1-4 Mpx frames); area outside the image is black; resizing is antialiased.
    """
    try:
        with Image.open(path) as image:
            factor = _draft(image, size / box[2])
            rgb = image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as err:
        raise _open_error(path, source, err) from err
    return square_crop(rgb, np.asarray(box, dtype=np.float64) / factor, size)


def _draft(image: Image.Image, zoom: float) -> float:
    """Let a JPEG decode at reduced size; returns original px per decoded px."""
    if zoom >= 0.5 or image.format != "JPEG":
        return 1.0
    width = image.width
    target = (max(1, math.ceil(image.width * zoom)), max(1, math.ceil(image.height * zoom)))
    result = image.draft("RGB", target)
    return width / result[1][2] if result and result[1] else 1.0


# ---------------------------------------------------------------------------- frame table


@dataclass
class FrameTable:
    """Rows to convert, with names (not yet codes) and full-image geometry."""

    images: Path  # folder the imgnames are relative to
    imgname: np.ndarray  # (N,) str
    source: np.ndarray  # (N,) int, index into ``sources``: the annotation file of each row
    subject: np.ndarray  # (N,) str
    action: np.ndarray  # (N,) str
    sequence: np.ndarray  # (N,) str, one take (all its cameras)
    camera: np.ndarray  # (N,) str, key of the camera dict
    frame: np.ndarray  # (N,) int, frame number of the take
    time: np.ndarray  # (N,) float, s
    box: np.ndarray  # (N, 3) x0, y0, side px
    joints_2d: np.ndarray  # (N, 17, 3) u, v px, visibility
    joints_3d_camera: np.ndarray  # (N, 17, 3) mm (NaN when unlabelled)
    joints_3d_world: np.ndarray  # (N, 17, 3) mm (NaN when unknown)
    labelled: np.ndarray  # (N,) bool
    sources: tuple[Path, ...] = ()

    def __len__(self) -> int:
        return len(self.imgname)

    def select(self, rows: np.ndarray) -> FrameTable:
        """The table restricted to ``rows`` (a mask or indices)."""
        return replace(self, **{f.name: getattr(self, f.name)[rows] for f in fields(self)
                                if isinstance(getattr(self, f.name), np.ndarray)})

    def path(self, i: int) -> Path:
        return image_path(self.images, str(self.imgname[i]), self.sources[self.source[i]])

    def describe(self, i: int) -> str:
        return f"{self.imgname[i]} in {self.sources[self.source[i]]}"

    @staticmethod
    def concatenate(tables: Sequence[FrameTable]) -> FrameTable:
        """Tables of several annotation files (their ``sources`` are merged)."""
        first, sources, offset = tables[0], [], 0
        merged: dict[str, Any] = {}
        for f in fields(first):
            if isinstance(getattr(first, f.name), np.ndarray) and f.name != "source":
                merged[f.name] = np.concatenate([getattr(t, f.name) for t in tables])
        ids = []
        for t in tables:
            ids.append(t.source + offset)
            sources.extend(t.sources)
            offset += len(t.sources)
        return FrameTable(images=first.images, source=np.concatenate(ids),
                          sources=tuple(sources), **merged)


def complete_instants(sequence: np.ndarray, frame: np.ndarray, camera: np.ndarray
                      ) -> np.ndarray:
    """True for rows whose instant ``(sequence, frame)`` is seen by every camera that
    appears anywhere in that sequence."""
    seq = np.unique(sequence, return_inverse=True)[1].ravel()
    cam = np.unique(camera, return_inverse=True)[1].ravel()
    views, row_view = np.unique(np.stack([seq, frame, cam]), axis=1, return_inverse=True)
    _, instant = np.unique(views[:2], axis=1, return_inverse=True)
    instant = instant.ravel()
    cameras_of = np.bincount(np.unique(views[[0, 2]], axis=1)[0])
    complete = np.bincount(instant)[instant] >= cameras_of[views[0]]
    return complete[row_view.ravel()]


def _check_unique_views(table: FrameTable) -> None:
    keys = np.stack([np.unique(table.sequence, return_inverse=True)[1], table.frame,
                     np.unique(table.camera, return_inverse=True)[1]])
    _, first, counts = np.unique(keys, axis=1, return_index=True, return_counts=True)
    if (counts > 1).any():
        i = int(first[np.flatnonzero(counts > 1)[0]])
        twin = np.flatnonzero((keys[:, i] == keys.T).all(axis=1))[1]
        raise ConvertError(f"{table.sources[table.source[i]]}: {table.imgname[i]} and "
                           f"{table.describe(twin)} are the same view (sequence "
                           f"{table.sequence[i]}, frame {table.frame[i]}, camera "
                           f"{table.camera[i]}); remove the duplicate row")


def handle_missing_views(table: FrameTable, policy: str, say: Say | None = None
                         ) -> FrameTable:
    """Apply the ``--missing-views`` policy to instants that lack some of their sequence's
    cameras: ``error`` (default), ``drop`` those rows, or ``keep`` them (with a warning)."""
    if policy not in MISSING_VIEWS:
        raise ConvertError(f"--missing-views must be one of {', '.join(MISSING_VIEWS)}, "
                           f"got {policy!r}")
    _check_unique_views(table)
    complete = complete_instants(table.sequence, table.frame, table.camera)
    if complete.all():
        return table
    i = int(np.flatnonzero(~complete)[0])
    same_seq = table.sequence == table.sequence[i]
    seen = sorted(set(table.camera[same_seq & (table.frame == table.frame[i])]))
    missing = sorted(set(table.camera[same_seq]) - set(seen))
    detail = (f"{int((~complete).sum())} frames belong to instants that miss views (first: "
              f"sequence {table.sequence[i]} frame {table.frame[i]} has no frame of camera(s) "
              f"{', '.join(missing)}; {table.describe(i)})")
    if policy == "error":
        raise ConvertError(f"{table.sources[table.source[i]]}: {detail}; extract the missing "
                           "frames, or pass --missing-views drop (drop those instants) or "
                           "--missing-views keep")
    (say or _warn)(f"{detail}; {'dropped' if policy == 'drop' else 'kept'} "
                   "(--missing-views)")
    return table.select(complete) if policy == "drop" else table


def reprojection_errors(table: FrameTable, cameras: Mapping[str, Camera]) -> np.ndarray:
    """Mean px distance of every row's projected 3D joints from its 2D joints (NaN when
    unlabelled)."""
    errors = np.full(len(table), np.nan)
    for name, camera in cameras.items():
        rows = np.flatnonzero((table.camera == name) & table.labelled)
        if len(rows):
            uv = camera.project(table.joints_3d_camera[rows])
            errors[rows] = np.linalg.norm(uv - table.joints_2d[rows, :, :2], axis=-1).mean(-1)
    return errors


def _warn_reprojection(table: FrameTable, cameras: Mapping[str, Camera], say: Say) -> None:
    errors = reprojection_errors(table, cameras)
    bad = errors > REPROJECTION_WARN * table.box[:, 2]
    if bad.any():
        i = int(np.nanargmax(np.where(bad, errors, np.nan)))
        say(f"{int(bad.sum())} frames' 3D labels project more than "
            f"{REPROJECTION_WARN:.0%} of their box side away from their 2D labels (worst "
            f"{errors[i]:.1f} px: {table.describe(i)}); check the camera of each frame and "
            "the calibration file")


def cameras_with_image_sizes(table: FrameTable, cameras: Mapping[str, Camera],
                             calibration: Path | Mapping[str, Path], say: Say
                             ) -> dict[str, Camera]:
    """Each used camera with ``width``/``height`` from its images' headers (which also
    proves every image exists); each calibration file (``calibration``, or one per camera
    name) that says otherwise gets one warning."""
    sizes = read_image_sizes(table)
    out: dict[str, Camera] = {}
    disagree: dict[Path, list[str]] = {}
    for name in sorted(set(table.camera), key=natural_key):
        rows = np.flatnonzero(table.camera == name)
        found = np.unique(sizes[rows], axis=0)
        if len(found) > 1:
            odd = rows[np.flatnonzero((sizes[rows] != found[0]).any(axis=1))[0]]
            raise ConvertError(f"{table.path(odd)}: {sizes[odd][0]}x{sizes[odd][1]} px, but "
                               f"{table.path(rows[0])} of the same camera {name} is "
                               f"{found[0][0]}x{found[0][1]}; one camera has one image size: "
                               "re-extract the odd frames")
        cam = cameras[name]
        w, h = (int(v) for v in found[0])
        if (cam.width, cam.height) != (w, h):
            path = calibration if isinstance(calibration, Path) else calibration[name]
            disagree.setdefault(path, []).append(f"{name}: {cam.width}x{cam.height} there, "
                                                 f"{w}x{h} px images")
        out[name] = replace(cam, width=w, height=h)
    for path, items in disagree.items():
        say(f"{path}: {len(items)} camera(s) give an image size that differs from their "
            f"images (e.g. {items[0]}); using the images' size")
    return out


# ---------------------------------------------------------------------------- writing


def _codes(values: np.ndarray, names: list[str]) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup[v] for v in values.tolist()], dtype=np.int64)


def write_dataset(
    out: Path,
    table: FrameTable,
    cameras: Mapping[str, Camera],
    *,
    image_size: int,
    fps: float,
    splits: Mapping[str, Sequence[str]],
    provenance: Mapping[str, Any],
    calibration: Path | Mapping[str, Path],
    say: Say | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> Path:
    """Check image sizes and reprojection, crop every frame and write the dataset atomically.

    Rows are ordered by sequence, frame and camera. ``splits`` keep only present subjects.
    """
    say = say or _warn
    if not len(table):
        raise ConvertError(f"{', '.join(map(str, table.sources))}: no frames to convert")
    cameras = cameras_with_image_sizes(table, cameras, calibration, say)
    _warn_reprojection(table, cameras, say)
    subjects = sorted(set(table.subject), key=natural_key)
    actions = sorted(set(table.action), key=natural_key)
    sequences = sorted(set(table.sequence), key=natural_key)
    camera_names = list(cameras)
    codes = {"subject_id": _codes(table.subject, subjects),
             "action_id": _codes(table.action, actions),
             "sequence_id": _codes(table.sequence, sequences),
             "camera_id": _codes(table.camera, camera_names)}
    order = np.lexsort((codes["camera_id"], table.frame, codes["sequence_id"]))
    table = table.select(order)
    codes = {k: v[order] for k, v in codes.items()}
    meta = {
        "image_size": image_size,
        "fps": fps,
        "subjects": subjects,
        "actions": actions,
        "sequences": sequences,
        "cameras": [cameras[name].to_dict() for name in camera_names],
        "splits": {k: [s for s in v if s in subjects] for k, v in splits.items()},
        "provenance": {"mcss_version": __version__, **provenance},
    }
    with DatasetWriter(out, meta, len(table)) as writer:
        for start in range(0, len(table), CHUNK):
            rows = np.arange(start, min(start + CHUNK, len(table)))
            _add_rows(writer, table, rows, {k: v[rows] for k, v in codes.items()}, image_size)
            if on_frame:
                on_frame(int(rows[-1]) + 1, len(table))
        return writer.write()


def _add_rows(writer: DatasetWriter, table: FrameTable, rows: np.ndarray,
              codes: Mapping[str, np.ndarray], size: int) -> None:
    crops = np.stack([load_crop(table.path(i), table.box[i], size,
                                table.sources[table.source[i]]) for i in rows])
    box = table.box[rows]
    writer.add(
        crops, **codes, frame=table.frame[rows], time=table.time[rows], box=box,
        joints_2d=table.joints_2d[rows],
        joints_2d_crop=image_to_crop(table.joints_2d[rows, :, :2], box, size),
        joints_3d_camera=table.joints_3d_camera[rows],
        joints_3d_world=table.joints_3d_world[rows], labelled=table.labelled[rows],
    )
