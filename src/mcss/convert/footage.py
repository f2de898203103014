"""A studio's own footage: synchronised videos (or frame folders), one per camera, to mcss.

No calibration is needed. Cameras are synchronised by frame index plus a per-camera offset:
with ``offsets[cam] = k``, frame ``i + k`` of camera ``cam`` shows instant ``i`` (``k``
defaults to 0 and may be negative). An instant's number is therefore the frame number of
any camera without an offset. Only instants ``i >= 0`` that every camera shows are kept;
cameras that run longer are truncated to that common range, with a warning.

Crops are square: around given person boxes (keyed by each camera's *own* frame numbers,
as a detector run on each video writes them), or, without boxes, the largest centred
square of the frame. An optional labelled set (3D poses in mm, camera frame, keyed by
instant and camera) marks those rows ``labelled``; every other row has NaN joints.

Everything but the pixels is validated before decoding starts; a bad input (or a frame
that fails to decode later) raises :class:`~mcss.convert.ConvertError` with one message that
names the file and the fix, and nothing appears at ``out``. Frames are streamed one at a
time, never a whole video.
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from mcss import __version__
from mcss.convert import ConvertError
from mcss.convert.common import (
    DEFAULT_IMAGE_SIZE,
    PLAUSIBLE_BONE_MM,
    ConvertWarning,
    check_image_size,
    natural_key,
    prepare_out,
)
from mcss.crops import centre_square, square_crop
from mcss.data.format import DatasetWriter
from mcss.geometry import Camera, square_box
from mcss.skeleton import NUM_JOINTS, bone_lengths

DEFAULT_MARGIN = 1.2  # as geometry.square_box
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
CHUNK = 64  # rows per DatasetWriter.add

__all__ = [
    "CameraInput",
    "FootagePlan",
    "Labels",
    "convert_footage",
    "open_camera",
    "parse_offsets",
    "parse_videos",
    "plan_footage",
]


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class CameraInput:
    """One camera's footage: a video file or a folder of frame images (sorted by name)."""

    name: str
    path: Path
    num_frames: int
    width: int
    height: int
    fps: float | None  # None for frame folders
    files: tuple[Path, ...] = ()  # the frame folder's images, in order

    def frames(self, start: int, stop: int) -> Iterator[Image.Image]:
        """RGB frames ``start .. stop - 1``, decoded one at a time."""
        source = self._folder_frames if self.files else self._video_frames
        produced = 0
        for image in source(start, stop):
            produced += 1
            yield image
        if produced < stop - start:
            raise ConvertError(
                f"{self.path}: only {start + produced} frames could be decoded, "
                f"{self.num_frames} were counted; the file is truncated or corrupt: "
                f"re-encode it (e.g. ffmpeg -i {self.path.name} -c:v libx264 fixed.mp4)"
            )

    def _video_frames(self, start: int, stop: int) -> Iterator[Image.Image]:
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for index, frame in enumerate(container.decode(stream)):
                    if index >= stop:
                        return
                    if index >= start:
                        yield frame.to_image()
        except av.FFmpegError as err:
            raise ConvertError(f"{self.path}: cannot decode the video ({err}); re-encode it "
                               f"(e.g. ffmpeg -i {self.path.name} -c:v libx264 fixed.mp4)"
                               ) from err

    def _folder_frames(self, start: int, stop: int) -> Iterator[Image.Image]:
        for file in self.files[start:stop]:
            image = _read_image(file)
            if image.size != (self.width, self.height):
                raise ConvertError(
                    f"{file}: {image.width}x{image.height} px, but {self.files[0].name} is "
                    f"{self.width}x{self.height}: every frame of camera {self.name!r} must "
                    "have one size; resize or remove it"
                )
            yield image


def _read_image(file: Path) -> Image.Image:
    try:
        with Image.open(file) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as err:
        raise ConvertError(f"{file}: cannot read the image ({err}); replace or remove it") from err


def open_camera(name: str, path: str | PathLike[str]) -> CameraInput:
    """Inspect one camera's footage (count frames, read the size and rate) without decoding
    it all; raises :class:`ConvertError` for a missing, empty or unreadable input."""
    path = Path(path)
    if path.is_dir():
        return _open_folder(name, path)
    if not path.is_file():
        raise ConvertError(f"{path}: no such video file or frame folder; check the --video path")
    return _open_video(name, path)


def _open_folder(name: str, path: Path) -> CameraInput:
    files = sorted((f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda f: natural_key(f.name))
    if not files:
        raise ConvertError(f"{path}: frame folder without images ({', '.join(IMAGE_SUFFIXES)}); "
                           "point --video at a video file or a folder of frames")
    width, height = _read_image(files[0]).size
    return CameraInput(name, path, len(files), width, height, None, tuple(files))


def _open_video(name: str, path: Path) -> CameraInput:
    fix = (f"check that it plays, or re-encode it (e.g. ffmpeg -i {path.name} -c:v libx264 "
           "fixed.mp4)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ConvertError(f"{path}: no video stream; {fix}")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            first = next(container.decode(stream), None)
        if first is None:
            raise ConvertError(f"{path}: no frame could be decoded; {fix}")
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            count = sum(1 for packet in container.demux(stream) if packet.size)
    except av.FFmpegError as err:
        raise ConvertError(f"{path}: cannot read the video ({err}); {fix}") from err
    return CameraInput(name, path, count, first.width, first.height,
                       float(rate) if rate else None)


def parse_videos(videos: Sequence[str | PathLike[str]]) -> dict[str, Path]:
    """``["cam0.mp4", "side=/data/b"]`` -> ``{"cam0": Path("cam0.mp4"), "side": ...}``.

    A camera is named by ``NAME=PATH``, else by the file's stem (the folder's name).
    """
    named: dict[str, Path] = {}
    for item in videos:
        text = str(item)
        name, sep, rest = text.partition("=")
        if sep and name and "/" not in name and not Path(text).exists():
            path = Path(rest)
        else:
            path = Path(text)
            name = path.name if path.is_dir() else path.stem
        if name in named:
            raise ConvertError(f"{path}: camera name {name!r} is also {named[name]}; name the "
                               f"cameras apart with --video NAME=PATH")
        named[name] = path
    if len(named) < 2:
        raise ConvertError(f"{len(named)} video(s) given ({', '.join(map(str, named.values()))});"
                           " multi-view footage needs at least 2 synchronised cameras: pass "
                           "--video once per camera")
    return named


def parse_offsets(offsets: Sequence[str] | Mapping[str, int] | None,
                  cameras: Sequence[str]) -> dict[str, int]:
    """``["cam1=3"]`` -> ``{"cam0": 0, "cam1": 3}``: camera ``cam1``'s frame ``i + 3``
    shows instant ``i``. Cameras not named get offset 0."""
    result = dict.fromkeys(cameras, 0)
    items = offsets.items() if isinstance(offsets, Mapping) else _split_offsets(offsets or [])
    for name, value in items:
        if name not in result:
            raise ConvertError(f"--offset {name}={value}: no camera {name!r}; cameras are "
                               f"{', '.join(cameras)}")
        result[name] = int(value)
    return result


def _split_offsets(items: Sequence[str]) -> Iterator[tuple[str, int]]:
    for item in items:
        match = re.fullmatch(r"\s*([^=\s]+)\s*=\s*([+-]?\d+)\s*", item)
        if not match:
            raise ConvertError(f"--offset {item!r}: write CAM=N with an integer N (frames), e.g. "
                               "--offset cam1=3 when cam1's frame i+3 shows instant i")
        yield match.group(1), int(match.group(2))


# ---------------------------------------------------------------------------- boxes


def load_boxes(
    path: str | PathLike[str], cameras: Sequence[CameraInput], margin: float = DEFAULT_MARGIN
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a boxes JSON: ``{camera: {frame: [x0, y0, w, h]}}`` (px, the camera's own frame
    numbers; a list per camera, indexed by frame, works too; ``null`` = no box).

    Returns, per camera named in the file, its boxed frame numbers and their square boxes
    ``(x0, y0, side)`` (``margin`` times the longer side, same centre).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConvertError(f"{path}: cannot read the boxes JSON ({err}); write "
                           '{"CAM": {"FRAME": [x0, y0, w, h], ...}, ...}') from err
    if not isinstance(data, dict) or not data:
        raise ConvertError(f'{path}: expected an object {{"CAM": {{"FRAME": [x0, y0, w, h]}}}}'
                           f", got {type(data).__name__}")
    by_name = {c.name: c for c in cameras}
    unknown = sorted(set(data) - set(by_name))
    if unknown:
        raise ConvertError(f"{path}: unknown camera(s) {unknown}; the cameras are "
                           f"{', '.join(by_name)} (video stems or --video NAME=PATH)")
    return {name: _camera_boxes(path, by_name[name], entries, margin)
            for name, entries in data.items()}


def _camera_boxes(path: Path, camera: CameraInput, entries: Any, margin: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(entries, list):
        entries = dict(enumerate(entries))
    if not isinstance(entries, dict):
        raise ConvertError(f"{path}: camera {camera.name!r} must map frame numbers to "
                           f"[x0, y0, w, h], got {type(entries).__name__}")
    frames, xywh = [], []
    for key, box in entries.items():
        if box is None:
            continue
        where = f"{path}: camera {camera.name!r} frame {key!r}"
        try:
            frame = int(key)
            values = np.asarray(box, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ConvertError(f"{where}: need an integer frame and [x0, y0, w, h] numbers "
                               f"({err})") from err
        if values.shape != (4,) or not np.isfinite(values).all():
            raise ConvertError(f"{where}: box {box!r} is not 4 finite numbers [x0, y0, w, h]")
        if not 0 <= frame < camera.num_frames:
            raise ConvertError(f"{where}: out of range; {camera.path} has frames 0-"
                               f"{camera.num_frames - 1} (boxes use each camera's own frame "
                               "numbers, not instants)")
        if min(values[2:]) < 1.0:
            raise ConvertError(f"{where}: box {box!r} is under 1 px wide or high; boxes are "
                               "[x0, y0, w, h] in pixels (normalised? multiply by the image size)")
        frames.append(frame)
        xywh.append(values)
    if not frames:
        raise ConvertError(f"{path}: camera {camera.name!r} has no box; give at least one or "
                           "leave the camera out (it then gets the centred square)")
    if len(set(frames)) < len(frames):
        raise ConvertError(f"{path}: camera {camera.name!r} lists a frame twice (keys "
                           "'7' and '07'?); give one box per frame")
    order = np.argsort(frames)
    xywh_sorted = np.asarray(xywh)[order]
    corners = np.stack([xywh_sorted[:, :2], xywh_sorted[:, :2] + xywh_sorted[:, 2:]], axis=1)
    return np.asarray(frames)[order], square_box(corners, margin)


def camera_boxes(camera: CameraInput, raw_frames: np.ndarray,
                 given: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Square boxes ``(n, 3)`` of ``raw_frames``: interpolated linearly between the given
    boxes (held beyond the first and last), or the centred square without boxes."""
    if given is None:
        return np.tile(centre_square(camera.width, camera.height), (len(raw_frames), 1))
    frames, boxes = given
    return np.stack([np.interp(raw_frames, frames, boxes[:, k]) for k in range(3)], axis=1)


# ---------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Labels:
    """3D labels of some views: camera index, instant and camera-frame joints (mm)."""

    camera: np.ndarray  # (N,) index into the cameras
    instant: np.ndarray  # (N,)
    joints: np.ndarray  # (N, 17, 3) mm, camera frame


def load_labels(path: str | PathLike[str], cameras: Sequence[str], instants: range) -> Labels:
    """Read and check a labels ``.npz``: ``frame`` (instants), ``camera`` (names) and
    ``joints_3d`` ``(N, 17, 3)`` mm, camera frame, mcss/H36M-17 joint order."""
    path = Path(path)
    how = ("save it with np.savez(path, frame=instants, camera=np.array(names, dtype=str), "
           "joints_3d=joints)")
    if not path.is_file():
        raise ConvertError(f"{path}: no such labels file; check the --labels path")
    if not zipfile.is_zipfile(path):
        raise ConvertError(f"{path}: not an .npz archive (labels are never unpickled); {how}")
    try:
        npz = np.load(path, allow_pickle=False)
        with npz:
            missing = {"frame", "camera", "joints_3d"} - set(npz.files)
            if missing:
                raise ConvertError(f"{path}: missing key(s) {sorted(missing)}; {how}")
            frame, camera, joints = npz["frame"], npz["camera"], npz["joints_3d"]
    except ConvertError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise ConvertError(f"{path}: cannot read the labels .npz ({err}); {how}") from err
    joints = _check_joints(path, joints)
    labels = Labels(_check_cameras(path, camera, cameras, len(joints)),
                    _check_instants(path, frame, instants, len(joints)), joints)
    _refuse_duplicates(path, labels, cameras)
    return labels


def _check_joints(path: Path, joints: np.ndarray) -> np.ndarray:
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or not len(joints):
        raise ConvertError(f"{path}: joints_3d has shape {joints.shape}; need (N, {NUM_JOINTS}, 3)"
                           ", N >= 1: the 17 joints in mcss/H36M-17 order "
                           "(mcss.skeleton.JOINT_NAMES), mm, camera frame")
    try:
        joints = joints.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ConvertError(f"{path}: joints_3d is not numeric ({joints.dtype})") from err
    bad = np.flatnonzero(~np.isfinite(joints).all(axis=(1, 2)))
    if len(bad):
        raise ConvertError(f"{path}: joints_3d rows {bad[:5].tolist()} hold NaN or Inf "
                           f"({len(bad)} rows); drop those rows or fill the joints")
    median = np.median(bone_lengths(joints), axis=1)
    lo, hi = PLAUSIBLE_BONE_MM
    bad = np.flatnonzero((median < lo) | (median > hi))
    if len(bad):
        unit = " (metres? multiply by 1000)" if median[bad[0]] < 5 else ""
        raise ConvertError(f"{path}: joints_3d rows {bad[:5].tolist()} have a median bone "
                           f"length of {median[bad[0]]:.3g}, not a person's {lo:.0f}-{hi:.0f} "
                           f"mm: joints_3d must be millimetres{unit} in mcss/H36M-17 order")
    return joints


def _check_cameras(path: Path, camera: np.ndarray, cameras: Sequence[str], n: int) -> np.ndarray:
    if camera.shape != (n,) or camera.dtype.kind not in "US":
        raise ConvertError(f"{path}: camera must be {n} names (np.array(names, dtype=str)), "
                           f"got shape {camera.shape}, dtype {camera.dtype}")
    names = camera.astype(str).tolist()
    unknown = sorted(set(names) - set(cameras))
    if unknown:
        raise ConvertError(f"{path}: unknown camera(s) {unknown}; the cameras are "
                           f"{', '.join(cameras)} (video stems or --video NAME=PATH)")
    return np.array([list(cameras).index(name) for name in names], dtype=np.int64)


def _check_instants(path: Path, frame: np.ndarray, instants: range, n: int) -> np.ndarray:
    if frame.shape != (n,) or frame.dtype.kind not in "iu":
        raise ConvertError(f"{path}: frame must be {n} integer instants, got shape "
                           f"{frame.shape}, dtype {frame.dtype}")
    out = np.flatnonzero((frame < instants.start) | (frame >= instants.stop))
    if len(out):
        raise ConvertError(f"{path}: instants {frame[out[:5]].tolist()} are outside the "
                           f"instants {instants.start}-{instants.stop - 1} every camera shows; "
                           "frame holds instants (frame i + offset of each camera)")
    return frame.astype(np.int64)


def _refuse_duplicates(path: Path, labels: Labels, cameras: Sequence[str]) -> None:
    keys = labels.camera * (labels.instant.max() + 1) + labels.instant
    values, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        first = np.flatnonzero(keys == values[counts > 1][0])[0]
        raise ConvertError(f"{path}: instant {labels.instant[first]} of camera "
                           f"{cameras[labels.camera[first]]!r} is labelled "
                           f"{counts.max()} times; keep one label per view")


# ---------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class FootagePlan:
    """Everything validated, nothing decoded yet: what :func:`write_footage` writes."""

    cameras: list[CameraInput]
    offsets: dict[str, int]
    instants: range  # kept instants, every camera shows them
    fps: float
    boxes: np.ndarray  # (V, T, 3) square crop box of every camera and kept instant
    labels: Labels | None
    warnings: list[str]


def plan_footage(
    videos: Sequence[str | PathLike[str]] | Mapping[str, str | PathLike[str]],
    offsets: Sequence[str] | Mapping[str, int] | None = None,
    boxes: str | PathLike[str] | None = None,
    labels: str | PathLike[str] | None = None,
    margin: float = DEFAULT_MARGIN,
    fps: float | None = None,
) -> FootagePlan:
    """Open and validate every input (see :func:`convert_footage`)."""
    named = dict(videos) if isinstance(videos, Mapping) else parse_videos(videos)
    if len(named) < 2:
        raise ConvertError(f"{len(named)} camera(s) given; need at least 2 synchronised videos")
    if margin <= 0:
        raise ConvertError(f"--margin must be > 0 (box side / longer box side), got {margin}")
    cameras = [open_camera(name, path) for name, path in named.items()]
    shift = parse_offsets(offsets, [c.name for c in cameras])
    instants, notes = _common_instants(cameras, shift)
    given = load_boxes(boxes, cameras, margin) if boxes is not None else {}
    square = np.stack([
        camera_boxes(c, np.arange(instants.start, instants.stop) + shift[c.name],
                     given.get(c.name)) for c in cameras
    ])
    labelled = load_labels(labels, [c.name for c in cameras], instants) if labels else None
    return FootagePlan(cameras, shift, instants, _frame_rate(cameras, fps), square, labelled,
                       notes)


def _common_instants(cameras: Sequence[CameraInput], offsets: Mapping[str, int]
                     ) -> tuple[range, list[str]]:
    """Instants ``i >= 0`` every camera shows (frame ``i + offset``), and warnings."""
    spans = {c.name: range(max(0, -offsets[c.name]), c.num_frames - offsets[c.name])
             for c in cameras}
    common = range(max(s.start for s in spans.values()), min(s.stop for s in spans.values()))
    described = "; ".join(
        f"{c.name} ({c.path.name}): {c.num_frames} frames, offset {offsets[c.name]:+d} -> "
        + (f"instants {s.start}-{s.stop - 1}" if len(s) else "no instant >= 0")
        for c, s in zip(cameras, spans.values(), strict=True)
    )
    if not common:
        raise ConvertError(f"no instant is shown by every camera: {described}; check --offset "
                           "(camera CAM's frame i+N shows instant i for --offset CAM=N)")
    notes = []
    if any(s != common for s in spans.values()):
        notes.append(f"cameras cover different instants ({described}); keeping instants "
                     f"{common.start}-{common.stop - 1} ({len(common)}) that every camera shows")
    return common, notes


def _frame_rate(cameras: Sequence[CameraInput], fps: float | None) -> float:
    if fps is not None:
        if not fps > 0:
            raise ConvertError(f"--fps must be > 0, got {fps}")
        return float(fps)
    rates = {c.path: c.fps for c in cameras if c.fps}
    if not rates:
        raise ConvertError(f"{cameras[0].path}: frame folders carry no frame rate; pass --fps")
    if max(rates.values()) - min(rates.values()) > 1e-3 * max(rates.values()):
        listed = ", ".join(f"{p.name} {r:.3f}" for p, r in rates.items())
        raise ConvertError(f"the videos run at different frame rates ({listed} fps): frame-index "
                           "synchronisation needs one rate; re-encode them to one rate (ffmpeg "
                           "-r) or pass --fps to take the frames as they are")
    return next(iter(rates.values()))


# ---------------------------------------------------------------------------- write


def nominal_camera(camera: CameraInput) -> dict[str, Any]:
    """A placeholder camera for meta.json: focal = image width, principal point at the
    centre, identity pose. ``calibrated: false`` says so (readers ignore the extra key)."""
    nominal = Camera(fx=camera.width, fy=camera.width, cx=camera.width / 2.0,
                     cy=camera.height / 2.0, R=np.eye(3), t=np.zeros(3), width=camera.width,
                     height=camera.height, name=camera.name)
    return {**nominal.to_dict(), "calibrated": False}


def _meta(plan: FootagePlan, image_size: int, subject: str, action: str,
          sources: dict[str, str | None]) -> dict[str, Any]:
    return {
        "image_size": image_size,
        "fps": plan.fps,
        "subjects": [subject],
        "actions": [action],
        "sequences": [f"{subject}_{action}"],
        "cameras": [nominal_camera(c) for c in plan.cameras],
        "splits": {"train": [subject], "test": []},
        "provenance": {
            "generator": "mcss convert footage",
            "mcss_version": __version__,
            "videos": {c.name: str(c.path.resolve()) for c in plan.cameras},
            "frames": {c.name: c.num_frames for c in plan.cameras},
            "offsets": plan.offsets,
            "instants": [plan.instants.start, plan.instants.stop - 1],
            "labelled_views": 0 if plan.labels is None else len(plan.labels.joints),
            **sources,
        },
    }


def write_footage(
    plan: FootagePlan, out: str | PathLike[str], image_size: int, meta: dict[str, Any],
    on_frame: Callable[[int, int], None] | None = None,
) -> Path:
    """Decode, crop and write every (camera, instant) of ``plan``, camera by camera."""
    count = len(plan.instants)
    total = count * len(plan.cameras)
    nan_2d = np.full((NUM_JOINTS, 3), np.nan)
    with DatasetWriter(out, meta, total) as writer:
        for cam_id, camera in enumerate(plan.cameras):
            shift = plan.offsets[camera.name]
            frames = camera.frames(plan.instants.start + shift, plan.instants.stop + shift)
            for lo in range(0, count, CHUNK):
                hi = min(lo + CHUNK, count)
                images = np.stack([square_crop(next(frames), plan.boxes[cam_id, k], image_size)
                                   for k in range(lo, hi)])
                instants = np.arange(lo, hi) + plan.instants.start
                joints, labelled = _labels_of(plan.labels, cam_id, instants)
                writer.add(
                    images, subject_id=0, action_id=0, sequence_id=0, camera_id=cam_id,
                    frame=instants, time=instants / plan.fps, box=plan.boxes[cam_id, lo:hi],
                    joints_2d=nan_2d, joints_2d_crop=nan_2d[:, :2], joints_3d_camera=joints,
                    joints_3d_world=nan_2d, labelled=labelled,
                )
                if on_frame:
                    on_frame(cam_id * count + hi, total)
            frames.close()
        return writer.write()


def _labels_of(labels: Labels | None, cam_id: int, instants: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame joints (NaN where unlabelled) and the labelled flag of some instants."""
    joints = np.full((len(instants), NUM_JOINTS, 3), np.nan)
    labelled = np.zeros(len(instants), dtype=bool)
    if labels is not None:
        pick = (labels.camera == cam_id) & np.isin(labels.instant, instants)
        rows = labels.instant[pick] - instants[0]
        joints[rows], labelled[rows] = labels.joints[pick], True
    return joints, labelled


def convert_footage(
    videos: Sequence[str | PathLike[str]] | Mapping[str, str | PathLike[str]],
    out: str | PathLike[str],
    offsets: Sequence[str] | Mapping[str, int] | None = None,
    boxes: str | PathLike[str] | None = None,
    labels: str | PathLike[str] | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    margin: float = DEFAULT_MARGIN,
    fps: float | None = None,
    subject: str = "footage",
    action: str = "session",
    overwrite: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> Path:
    """Convert synchronised footage (one video or frame folder per camera) into an mcss
    dataset at ``out`` and return it.

    ``videos``: paths or ``NAME=PATH`` strings (or a name -> path mapping); a camera is
    named by its file stem / folder name otherwise. ``offsets``: ``{cam: N}`` or
    ``["cam=N"]``, camera ``cam``'s frame ``i + N`` shows instant ``i``. ``boxes``: JSON
    ``{cam: {frame: [x0, y0, w, h]}}`` in px, keyed by the camera's own frame numbers.
    ``labels``: ``.npz`` with ``frame`` (instants), ``camera`` (names), ``joints_3d``
    ``(N, 17, 3)`` mm, camera frame. All rows form one subject, action and sequence in the
    train split. ``on_frame(done, total)`` reports progress; ``say`` receives warnings
    (default: :func:`warnings.warn`). Raises :class:`ConvertError` (nothing written).
    """
    check_image_size(image_size)
    out = prepare_out(out, overwrite)
    plan = plan_footage(videos, offsets, boxes, labels, margin, fps)
    for note in plan.warnings:
        (say or _warn)(note)
    sources = {"boxes": str(Path(boxes).resolve()) if boxes else None,
               "labels": str(Path(labels).resolve()) if labels else None, "margin": margin}
    meta = _meta(plan, image_size, subject, action, sources)
    return write_footage(plan, out, image_size, meta, on_frame)


def _warn(message: str) -> None:
    warnings.warn(message, ConvertWarning, stacklevel=3)
