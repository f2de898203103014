"""Inference on images, image folders and videos: person crops, batched prediction, writers.

A crop is made as the training crops are: a square box around the person, resized to the
network's input size, fed as RGB floats in [0, 1] (the network normalises them itself).
Boxes come from a JSON file (:class:`BoxTable`) or, without one, a centre crop of the
frame: mcss ships no person detector.

Box file format (``--boxes``), keyed by input name (the file's path relative to the folder
given on the command line, or its file name), boxes ``[x0, y0, w, h]`` in px::

    {"walk.jpg": [410, 120, 200, 520],
     "clip.mp4": {"0": [400, 100, 220, 540], "30": [420, 104, 220, 536]}}

A video takes one box for every frame, or a dict keyed by frame index (from 0); a frame
that is not listed uses the last listed frame before it (the first listed one before that).
Every box is made square around its centre (side ``max(w, h)``); its centre must lie in the
frame, and the part outside the frame is filled with black.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.nn import functional as F

from mcss.augment import to_tensor
from mcss.checkpoint import STATE_FILE, CheckpointError, checkpoint_extra, latest_checkpoint
from mcss.crops import centre_square, square_crop
from mcss.evaluate import load_trained
from mcss.model import IMAGE_MEAN, IMAGE_STD, PoseNet
from mcss.skeleton import JOINT_INDEX, JOINT_NAMES

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
DEFAULT_IMAGE_SIZE = 64  # the synthetic presets' crop size, for checkpoints that do not say
FORMAT_NAME = "mcss-predictions"
FORMAT_VERSION = 1
OUTPUT_KEYS = ("embedding", "pose_canonical", "pose_camera", "rotation")


class PredictError(ValueError):
    """An input that cannot be used for inference; the message names the file and the fix."""


# --------------------------------------------------------------------------- the model


@dataclass
class LoadedModel:
    """A trained network, the checkpoint folder it came from and its input crop size."""

    model: PoseNet
    folder: Path
    image_size: int
    size_known: bool  # False: the checkpoint does not record it, DEFAULT_IMAGE_SIZE assumed


def load_model(run_or_checkpoint: Path, image_size: int | None = None) -> LoadedModel:
    """The trained model of a run folder (its latest checkpoint) or a checkpoint folder.

    The input size is ``image_size`` if given, else the ``image_size`` the checkpoint
    records, else :data:`DEFAULT_IMAGE_SIZE`.
    """
    path = Path(run_or_checkpoint)
    fix = "pass a run folder of `mcss train` or one of its checkpoints/step-* folders"
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist: {fix}")
    if not (path / STATE_FILE).is_file() and latest_checkpoint(path) is None:
        raise CheckpointError(f"{path} holds no checkpoint: {fix}")
    model, _, folder = load_trained(path)
    _, extra = checkpoint_extra(folder)
    recorded = extra.get("image_size")
    size = image_size or recorded or DEFAULT_IMAGE_SIZE
    if not 8 <= int(size) <= 1024:
        raise PredictError(f"image size {size} px is out of range (8-1024)")
    return LoadedModel(model, folder, int(size), bool(image_size or recorded))


def canonical_frame_torch(pose: torch.Tensor) -> torch.Tensor:
    """:func:`mcss.geometry.canonical_body_frame` in torch: rows x, up, z of ``(B, 17, 3)``."""
    up = F.normalize(pose[:, JOINT_INDEX["thorax"]] - pose[:, JOINT_INDEX["pelvis"]], dim=-1)
    hips = pose[:, JOINT_INDEX["right_hip"]] - pose[:, JOINT_INDEX["left_hip"]]
    x = F.normalize(hips - (hips * up).sum(-1, keepdim=True) * up, dim=-1)
    return torch.stack([x, up, torch.cross(x, up, dim=-1)], dim=1)


def network_outputs(model: PoseNet, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """What inference and the ONNX export return for crops ``(B, 3, H, W)`` in [0, 1]:
    the L2-normalised embedding (what the metric loss and pose search compare), the
    canonical pose, the camera-frame pose (root-relative, mm) and the body-to-camera
    rotation, with ``pose_camera = pose_canonical @ rotation.T``. A ``pose_frame=camera``
    model predicts no canonical pose: it is derived from its camera-frame pose."""
    out = model(images)
    embedding = F.normalize(out.embedding, dim=-1)
    if out.pose_canonical is not None:
        return {"embedding": embedding, "pose_canonical": out.pose_canonical,
                "pose_camera": out.pose_camera, "rotation": out.rotation}
    frame = canonical_frame_torch(out.pose_camera)
    return {"embedding": embedding, "pose_canonical": out.pose_camera @ frame.transpose(1, 2),
            "pose_camera": out.pose_camera, "rotation": frame.transpose(1, 2)}


@torch.no_grad()
def run_network(model: PoseNet, crops: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`network_outputs` (eval mode) of uint8 crops ``(B, H, W, 3)`` as NumPy arrays."""
    model.eval()
    crops = np.asarray(crops)
    if not crops.flags.writeable:  # memory-mapped dataset crops; torch wants writable memory
        crops = crops.copy()
    return {k: v.float().numpy() for k, v in network_outputs(model, to_tensor(crops)).items()}


def input_description(image_size: int) -> dict[str, Any]:
    """The network's expected input, as recorded in exports and indexes."""
    return {"shape": ["batch", 3, image_size, image_size], "dtype": "float32",
            "layout": "NCHW", "colour": "RGB", "range": [0.0, 1.0],
            "normalisation": {"mean": list(IMAGE_MEAN), "std": list(IMAGE_STD),
                              "applied": "inside the network"},
            "crop": "square person box, side max(w, h) around the box centre, resized to "
                    f"{image_size}x{image_size} px; outside the frame is black"}


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Source:
    """One input file: an image or a video, and the name it goes by in boxes and outputs."""

    path: Path
    name: str
    kind: str  # "image" | "video"
    frames: int | None = None  # frames of a video, if the container says
    fps: Fraction | None = None


def find_inputs(paths: Sequence[Path]) -> list[Source]:
    """Every image and video of ``paths`` (files, or folders searched recursively, sorted).
    Videos are opened here, so an unreadable one fails before any work is done."""
    sources: list[Source] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p))
            if not found:
                raise PredictError(f"{path}: no image ({', '.join(sorted(IMAGE_SUFFIXES))}) or "
                                   f"video ({', '.join(sorted(VIDEO_SUFFIXES))}) in this folder")
            sources += [_source(p, p.relative_to(path).as_posix()) for p in found]
        elif path.is_file():
            if not _kind(path):
                raise PredictError(f"{path}: not an image or video file name (suffixes: "
                                   f"{', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})")
            sources.append(_source(path, path.name))
        else:
            raise PredictError(f"{path}: no such file or folder")
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PredictError(f"two inputs are both named {duplicates[0]!r}; pass their common "
                           "folder instead, so that they are named by their relative paths")
    return sources


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def _source(path: Path, name: str) -> Source:
    if _kind(path) == "image":
        return Source(path, name, "image", 1)
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            return Source(path, name, "video", stream.frames or None, stream.average_rate)
    except av.error.FFmpegError as err:
        raise PredictError(f"{path}: cannot read the video ({err})") from err


def _video_stream(container: Any, path: Path) -> Any:
    if not container.streams.video:
        raise PredictError(f"{path}: the file holds no video stream")
    return container.streams.video[0]


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 ``(H, W, 3)``."""
    if not Path(path).is_file():
        raise PredictError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise PredictError(f"{path}: cannot read the image ({err}); is the file corrupt?") from err


def read_video(path: Path) -> Iterator[np.ndarray]:
    """The frames of a video as RGB uint8 ``(H, W, 3)``, decoded one at a time."""
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as err:
        raise PredictError(f"{path}: cannot decode the video ({err})") from err


# --------------------------------------------------------------------------- boxes and crops


def square_from_xywh(xywh: Sequence[float]) -> np.ndarray:
    """``[x0, y0, w, h]`` -> the square ``[x0, y0, side, side]`` of side ``max(w, h)`` with the
    same centre (training crops are square boxes around the person)."""
    x0, y0, w, h = (float(v) for v in xywh)
    side = max(w, h)
    return np.array([x0 + (w - side) / 2, y0 + (h - side) / 2, side, side])


def centre_box(height: int, width: int) -> np.ndarray:
    """The largest square ``[x0, y0, side, side]`` centred in a frame."""
    x0, y0, side = centre_square(width, height)
    return np.array([x0, y0, side, side])


def crop(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square ``box`` ``[x0, y0, side, side]`` of an RGB image resized to ``size`` px,
    as the converters crop training frames (:func:`mcss.crops.square_crop`)."""
    return square_crop(Image.fromarray(image), box[:3], size)


class BoxTable:
    """Person boxes read from a JSON file (format in the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError as err:
            raise PredictError(f"{self.path}: no such box file") from err
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise PredictError(f"{self.path}: not a readable JSON box file ({err})") from err
        if not isinstance(data, dict):
            raise PredictError(f"{self.path}: must hold a JSON object keyed by input name")
        self.entries = {str(k): self._parse(str(k), v) for k, v in data.items()}

    def _parse(self, name: str, value: Any) -> dict[int, np.ndarray] | np.ndarray:
        if isinstance(value, dict):
            try:
                frames = {int(k): self._box(name, v) for k, v in value.items()}
            except ValueError as err:
                raise PredictError(f"{self.path}: entry {name!r}: frame keys must be frame "
                                   f"indices ({err})") from err
            if not frames:
                raise PredictError(f"{self.path}: entry {name!r} lists no frame")
            return dict(sorted(frames.items()))
        return self._box(name, value)

    def _box(self, name: str, value: Any) -> np.ndarray:
        box = np.asarray(value, dtype=np.float64) if isinstance(value, list) else None
        if box is None or box.shape != (4,) or not np.isfinite(box).all() or (box[2:] <= 0).any():
            raise PredictError(f"{self.path}: entry {name!r}: a box is [x0, y0, w, h] in px "
                               f"with w, h > 0; got {value!r}")
        return box

    def lookup(self, source: Source, frame: int) -> np.ndarray | None:
        """The ``[x0, y0, w, h]`` box of a frame of ``source``, or None when not listed."""
        entry = self.entries.get(source.name, self.entries.get(source.path.name))
        if entry is None or isinstance(entry, np.ndarray):
            return entry
        keys = np.fromiter(entry, dtype=np.int64)
        pick = max(int(np.searchsorted(keys, frame, side="right")) - 1, 0)
        return entry[int(keys[pick])]

    def unused(self, sources: Iterable[Source]) -> list[str]:
        """Entries that name no input (likely a typo in the box file)."""
        known = {n for s in sources for n in (s.name, s.path.name)}
        return sorted(set(self.entries) - known)


@dataclass
class FrameCrop:
    """One frame ready for the network."""

    source: Source
    frame: int
    box: np.ndarray  # [x0, y0, side, side] px, square
    box_source: str  # "boxes" | "centre"
    crop: np.ndarray  # (S, S, 3) uint8


def frame_crops(sources: Sequence[Source], size: int,
                boxes: BoxTable | None = None) -> Iterator[FrameCrop]:
    """Every frame of every source, cropped, in order."""
    for source in sources:
        frames = [read_image(source.path)] if source.kind == "image" else read_video(source.path)
        for index, image in enumerate(frames):
            given = boxes.lookup(source, index) if boxes is not None else None
            if given is None:
                box, origin = centre_box(*image.shape[:2]), "centre"
            else:
                box, origin = square_from_xywh(given), "boxes"
                _check_inside(box, image.shape, source, index, boxes)
            yield FrameCrop(source, index, box, origin, crop(image, box, size))


def _check_inside(box: np.ndarray, shape: tuple[int, ...], source: Source, index: int,
                  boxes: BoxTable | None) -> None:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    if not (0 <= cx < shape[1] and 0 <= cy < shape[0]):
        where = f"frame {index} of {source.path}" if source.kind == "video" else str(source.path)
        origin = f" (from {boxes.path})" if boxes is not None else ""
        raise PredictError(f"{where}: the box{origin} centred at ({cx:.0f}, {cy:.0f}) lies "
                           f"outside the {shape[1]}x{shape[0]} px image; boxes are "
                           "[x0, y0, w, h] in px")


# --------------------------------------------------------------------------- prediction


@dataclass
class Predictions:
    """Per-frame results, in input order."""

    inputs: list[str] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    box_sources: list[str] = field(default_factory=list)
    outputs: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {k: [] for k in OUTPUT_KEYS})

    def __len__(self) -> int:
        return len(self.frames)

    def array(self, key: str) -> np.ndarray:
        """One network output over all frames, e.g. ``array("pose_camera")`` ``(N, 17, 3)``."""
        parts = self.outputs[key]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def add(self, batch: list[FrameCrop], out: dict[str, np.ndarray]) -> None:
        for item in batch:
            self.inputs.append(item.source.name)
            self.frames.append(item.frame)
            self.boxes.append(item.box)
            self.box_sources.append(item.box_source)
        for key in OUTPUT_KEYS:
            self.outputs[key].append(out[key])


def batches(items: Iterable[FrameCrop], size: int) -> Iterator[list[FrameCrop]]:
    """Consecutive lists of at most ``size`` items."""
    batch: list[FrameCrop] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_frames(
    model: PoseNet,
    frames: Iterable[FrameCrop],
    batch_size: int = 64,
    on_batch: Callable[[list[FrameCrop], dict[str, np.ndarray]], None] | None = None,
) -> Predictions:
    """Run the network on crops in batches; ``on_batch`` sees every batch and its outputs
    (to render, or advance a progress bar)."""
    if batch_size < 1:
        raise PredictError(f"--batch-size must be >= 1, got {batch_size}")
    result = Predictions()
    for batch in batches(frames, batch_size):
        out = run_network(model, np.stack([item.crop for item in batch]))
        result.add(batch, out)
        if on_batch is not None:
            on_batch(batch, out)
    return result


# --------------------------------------------------------------------------- writers


def write_atomic(path: Path, write: Callable[[Any], None]) -> Path:
    """Write ``path`` through ``write(binary file)`` into a temporary sibling, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _header(pred: Predictions, checkpoint: Path, image_size: int) -> dict[str, Any]:
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "checkpoint": str(checkpoint), "image_size": image_size, "units": "mm",
            "root_relative": True, "joint_names": list(JOINT_NAMES), "frames_count": len(pred),
            "box_format": "[x0, y0, side, side] px: the square crop fed to the network",
            "pose_frames": "pose_camera: camera frame (x right, y down, z forward); "
                           "pose_canonical: body frame (docs/training.md); "
                           "pose_camera = pose_canonical @ rotation.T"}


def write_json(pred: Predictions, path: Path, checkpoint: Path, image_size: int) -> Path:
    """Predictions as JSON: one record per frame, joints keyed by name (mm, 0.01 mm)."""
    arrays = {k: pred.array(k) for k in ("pose_camera", "pose_canonical", "rotation")}
    records = []
    for i in range(len(pred)):
        records.append({
            "input": pred.inputs[i], "frame": pred.frames[i],
            "box": np.round(pred.boxes[i], 2).tolist(), "box_source": pred.box_sources[i],
            "pose_camera": _named(arrays["pose_camera"][i]),
            "pose_canonical": _named(arrays["pose_canonical"][i]),
            "rotation": np.round(arrays["rotation"][i].astype(np.float64), 6).tolist(),
        })
    text = json.dumps(_header(pred, checkpoint, image_size) | {"frames": records}, indent=1)
    return write_atomic(path, lambda fh: fh.write(text.encode() + b"\n"))


def _named(pose: np.ndarray) -> dict[str, list[float]]:
    values = np.round(pose.astype(np.float64), 2).tolist()
    return dict(zip(JOINT_NAMES, values, strict=True))


def write_npz(pred: Predictions, path: Path, checkpoint: Path, image_size: int) -> Path:
    """Predictions as arrays (no object arrays: read with ``allow_pickle=False``)."""
    arrays = {
        "input": np.asarray(pred.inputs, dtype=str),
        "frame": np.asarray(pred.frames, dtype=np.int64),
        "box": np.asarray(pred.boxes, dtype=np.float64).reshape(-1, 4),
        "box_source": np.asarray(pred.box_sources, dtype=str),
        "joint_names": np.asarray(JOINT_NAMES),
        "header": np.asarray(json.dumps(_header(pred, checkpoint, image_size))),
        **{k: pred.array(k).astype(np.float32) for k in OUTPUT_KEYS},
    }
    return write_atomic(path, lambda fh: np.savez(fh, **arrays))


class VideoWriter:
    """RGB frames to an H.264 MP4 with PyAV (MPEG-4 part 2 where libx264 is missing),
    written under a temporary name and renamed into place by :meth:`close`."""

    def __init__(self, path: Path, fps: Fraction | float | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        self.fps = Fraction(fps).limit_denominator(1001) if fps else Fraction(25)
        self.container: Any = None
        self.stream: Any = None

    def write(self, frame: np.ndarray) -> None:
        if self.container is None:
            self.container = av.open(str(self.tmp), mode="w")
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            self.stream = self.container.add_stream(codec, rate=self.fps)
            self.stream.height, self.stream.width = frame.shape[:2]
            self.stream.pix_fmt = "yuv420p"
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        self.container.mux(self.stream.encode(image))

    def close(self) -> None:
        if self.container is not None:
            self.container.mux(self.stream.encode())
            self.container.close()
            self.container = None
            os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):
                self.container.close()
            self.container = None
        self.tmp.unlink(missing_ok=True)


class Renderer:
    """Writes, per image, ``<name>.png``, and per video, ``<name>.mp4``: each frame's crop
    beside its predicted skeleton (:func:`mcss.draw.render_panel`). Frames arrive in input
    order, so one video is open at a time."""

    def __init__(self, out: Path, size: int = 256) -> None:
        self.out, self.size = Path(out), size
        self.video: VideoWriter | None = None
        self.video_source: Source | None = None
        self.written: list[Path] = []

    def __call__(self, batch: list[FrameCrop], out: dict[str, np.ndarray]) -> None:
        from mcss.draw import render_panel

        for item, pose in zip(batch, out["pose_camera"], strict=True):
            caption = (Path(item.source.name).name if item.source.kind == "image"
                       else f"frame {item.frame}")[: self.size // 7]
            panel = render_panel(item.crop, pose, self.size, caption)
            if item.source.kind == "image":
                self._close_video()
                path = self._path(item.source, ".png")
                write_atomic(path, lambda fh, p=panel: Image.fromarray(p).save(fh, format="PNG"))
                self.written.append(path)
            else:
                if self.video_source != item.source:
                    self._close_video()
                    self.video = VideoWriter(self._path(item.source, ".mp4"), item.source.fps)
                    self.video_source = item.source
                self.video.write(panel)

    def _path(self, source: Source, suffix: str) -> Path:
        """``a/b.jpg`` -> ``render/a__b.png`` (``a__b.jpg.png`` if ``a/b.png`` took it)."""
        flat = source.name.replace("/", "__")
        path = self.out / (Path(flat).stem + suffix)
        return self.out / (flat + suffix) if path in self.written else path

    def _close_video(self) -> None:
        if self.video is not None:
            self.video.close()
            self.written.append(self.video.path)
            self.video, self.video_source = None, None

    def close(self) -> None:
        self._close_video()

    def abort(self) -> None:
        """Drop a half-written video (after an error)."""
        if self.video is not None:
            self.video.abort()
            self.video, self.video_source = None, None


@dataclass
class PredictRun:
    """What :func:`predict_inputs` wrote."""

    predictions: Predictions
    json: Path
    npz: Path
    renders: list[Path]
    unused_boxes: list[str]


def count_frames(sources: Sequence[Source]) -> int | None:
    """Frames to process, or None when a video's container does not say."""
    counts = [s.frames for s in sources]
    return None if None in counts else int(sum(counts))


def predict_inputs(
    model: LoadedModel,
    sources: Sequence[Source],
    out: Path,
    boxes: Path | None = None,
    batch_size: int = 64,
    render: bool = False,
    on_frames: Callable[[int], None] | None = None,
) -> PredictRun:
    """Predict every frame of ``sources`` (see :func:`find_inputs`) and write
    ``out/predictions.json``, ``out/predictions.npz`` and, with ``render``, one PNG per
    image and one MP4 per video into ``out/render/``."""
    table = BoxTable(boxes) if boxes is not None else None
    renderer = Renderer(Path(out) / "render") if render else None

    def on_batch(batch: list[FrameCrop], outputs: dict[str, np.ndarray]) -> None:
        if renderer is not None:
            renderer(batch, outputs)
        if on_frames is not None:
            on_frames(len(batch))

    try:
        pred = predict_frames(model.model, frame_crops(sources, model.image_size, table),
                              batch_size, on_batch)
    except BaseException:
        if renderer is not None:
            renderer.abort()
        raise
    if renderer is not None:
        renderer.close()
    out = Path(out)
    return PredictRun(
        pred,
        write_json(pred, out / "predictions.json", model.folder, model.image_size),
        write_npz(pred, out / "predictions.npz", model.folder, model.image_size),
        renderer.written if renderer is not None else [],
        table.unused(sources) if table is not None else [],
    )
