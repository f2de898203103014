"""DeepMimic humanoid motion clips shipped with pybullet, converted to H36M-17 joints by FK.

Clip files ``pybullet_data/data/motions/humanoid3d_<name>.txt`` are JSON with ``"Frames"``:
one row of 44 numbers per key frame (verified against pybullet's
``pybullet_envs/deep_mimic/env/humanoid_pose_interpolator.py``)::

    0 duration (s, to the next key frame)  1:4 root position     4:8 root orientation
    8:12 chest   12:16 neck   16:20 right hip   20 right knee   21:25 right ankle
    25:29 right shoulder   29 right elbow   30:34 left hip   34 left knee
    35:39 left ankle   39:43 left shoulder   43 left elbow

Quaternions are ``w, x, y, z``, each the rotation of a link relative to its parent link;
knees and elbows are one angle (radians) about the joint axis. Bone offsets come from the
humanoid model beside the clips, ``pybullet_data/humanoid/humanoid.urdf``, scaled by 0.25
as DeepMimic loads it. The DeepMimic world is y-up, metres, the character faces +x and its
right side is +z; we convert to z-up millimetres with ``(x, y, z) -> (x, -z, y)`` (a proper
rotation). Joint mapping: see :data:`H36M_FROM_DEEPMIMIC` and ``docs/motion.md``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import numpy as np

from mcss.motion import Motion
from mcss.motion.variation import axis_angle_matrix, normalise_placement
from mcss.skeleton import JOINT_INDEX, NUM_JOINTS

DEFAULT_CLIPS: tuple[str, ...] = (
    "walk",
    "run",
    "jump",
    "kick",
    "spinkick",
    "punch",
    "dance_a",
    "dance_b",
    "spin",
)
"""Upright, Human3.6M-like clips: the default set."""

ACROBATIC_CLIPS: tuple[str, ...] = (
    "backflip",
    "cartwheel",
    "crawl",
    "roll",
    "getup_facedown",
    "getup_faceup",
)
"""Opt-in clips whose poses are far outside the benchmarks' distribution."""

MODEL_SCALE = 0.25
"""DeepMimic loads ``humanoid.urdf`` with ``globalScaling=0.25``."""

# Points fixed in the DeepMimic head ("neck" link) frame, in scaled metres (+x forward, +y up
# the head): H36M's neck_base (its "neck/nose" point, in front of the neck) and head (upper
# head). The head link is a sphere of radius 0.1025 centred 0.175 above the neck joint; the
# offsets give H36M-like thorax->neck_base (~117 mm) and neck_base->head (~119 mm) lengths.
NECK_BASE_IN_HEAD = (0.06, 0.10, 0.0)
HEAD_IN_HEAD = (0.03, 0.215, 0.0)

# Frame-row layout: link name -> (first column, number of columns: 4 quaternion, 1 angle).
_LAYOUT: dict[str, tuple[int, int]] = {
    "chest": (8, 4),
    "neck": (12, 4),
    "right_hip": (16, 4),
    "right_knee": (20, 1),
    "right_ankle": (21, 4),
    "right_shoulder": (25, 4),
    "right_elbow": (29, 1),
    "left_hip": (30, 4),
    "left_knee": (34, 1),
    "left_ankle": (35, 4),
    "left_shoulder": (39, 4),
    "left_elbow": (43, 1),
}
_ROW_LENGTH = 44

H36M_FROM_DEEPMIMIC: dict[str, str] = {
    "pelvis": "root",
    "right_hip": "right_hip",
    "right_knee": "right_knee",
    "right_foot": "right_ankle",
    "left_hip": "left_hip",
    "left_knee": "left_knee",
    "left_foot": "left_ankle",
    "spine": "chest",
    "thorax": "neck",
    "neck_base": "neck + NECK_BASE_IN_HEAD",
    "head": "neck + HEAD_IN_HEAD",
    "left_shoulder": "left_shoulder",
    "left_elbow": "left_elbow",
    "left_wrist": "left_wrist",
    "right_shoulder": "right_shoulder",
    "right_elbow": "right_elbow",
    "right_wrist": "right_wrist",
}
"""H36M joint -> DeepMimic joint (link origin) whose world position it takes."""


def _data_root() -> Path:
    try:
        import pybullet_data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise FileNotFoundError(
            "pybullet_data is not installed: `pip install pybullet` to get the DeepMimic clips"
        ) from exc
    return Path(pybullet_data.getDataPath())


def clip_paths(which: str = "default") -> dict[str, Path]:
    """Paths of the DeepMimic clips: ``which="default"`` (upright) or ``"all"`` (+ acrobatics)."""
    if which == "default":
        names = DEFAULT_CLIPS
    elif which == "all":
        names = DEFAULT_CLIPS + ACROBATIC_CLIPS
    else:
        raise ValueError(f"which must be 'default' or 'all', got {which!r}")
    folder = _data_root() / "data" / "motions"
    paths = {name: folder / f"humanoid3d_{name}.txt" for name in names}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"DeepMimic clips missing from pybullet_data: {missing}")
    return paths


@lru_cache(maxsize=1)
def _model() -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """Joints of ``humanoid.urdf``: child link -> (parent link, scaled origin xyz, axis)."""
    path = _data_root() / "humanoid" / "humanoid.urdf"
    if not path.is_file():
        raise FileNotFoundError(f"DeepMimic humanoid model not found: {path}")
    joints = {}
    text = path.read_text().replace("\x00", "")  # the shipped file ends with a NUL byte
    for j in ET.fromstring(text).iter("joint"):
        origin = j.find("origin")
        axis = j.find("axis")
        xyz = np.array(origin.get("xyz").split(), dtype=np.float64) * MODEL_SCALE
        ax = np.array(axis.get("xyz").split(), dtype=np.float64) if axis is not None else None
        joints[j.find("child").get("link")] = (j.find("parent").get("link"), xyz, ax)
    return joints


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices from quaternions ``(..., 4)`` in ``w, x, y, z`` order (normalised)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def _slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Shortest-path spherical interpolation of quaternions ``(..., 4)`` at fractions ``t``."""
    q0 = q0 / np.linalg.norm(q0, axis=-1, keepdims=True)
    q1 = q1 / np.linalg.norm(q1, axis=-1, keepdims=True)
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    t = t[..., None]
    safe = sin > 1e-6
    w0 = np.where(safe, np.sin((1.0 - t) * theta) / np.where(safe, sin, 1.0), 1.0 - t)
    w1 = np.where(safe, np.sin(t * theta) / np.where(safe, sin, 1.0), t)
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _resample(frames: np.ndarray, fps: float) -> np.ndarray:
    """Key frames with per-frame durations -> rows at uniform ``1/fps`` steps (slerp, lerp)."""
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    n = int(np.floor(times[-1] * fps + 1e-3)) + 1
    tq = np.arange(n) / fps
    i0 = np.clip(np.searchsorted(times, tq, side="right") - 1, 0, max(len(frames) - 2, 0))
    i1 = np.minimum(i0 + 1, len(frames) - 1)
    span = times[i1] - times[i0]
    frac = np.clip((tq - times[i0]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    a, b = frames[i0], frames[i1]
    out = a + frac[:, None] * (b - a)  # positions and hinge angles: linear
    for start, size in [(4, 4)] + [v for v in _LAYOUT.values() if v[1] == 4]:
        out[:, start : start + size] = _slerp(
            a[:, start : start + 4], b[:, start : start + 4], frac
        )
    return out


def deepmimic_fk(rows: np.ndarray) -> np.ndarray:
    """World positions of the 17 H36M joints from frame rows ``(T, 44)``: ``(T, 17, 3)`` in the
    DeepMimic world (y-up, metres)."""
    model = _model()
    t = rows.shape[0]
    rot = {"root": _quat_matrix(rows[:, 4:8])}
    pos = {"root": rows[:, 1:4]}
    order = ["chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder",
             "right_elbow", "right_wrist", "left_hip", "left_knee", "left_ankle",
             "left_shoulder", "left_elbow", "left_wrist"]  # fmt: skip
    for link in order:
        parent, xyz, axis = model[link]
        pos[link] = pos[parent] + rot[parent] @ xyz
        if link not in _LAYOUT:  # fixed joint (wrists)
            rot[link] = rot[parent]
            continue
        start, size = _LAYOUT[link]
        if size == 4:
            local = _quat_matrix(rows[:, start : start + 4])
        else:
            local = axis_angle_matrix(rows[:, start, None] * axis)
        rot[link] = rot[parent] @ local
    out = np.empty((t, NUM_JOINTS, 3))
    for h36m, src in H36M_FROM_DEEPMIMIC.items():
        if src in pos:
            out[:, JOINT_INDEX[h36m]] = pos[src]
    out[:, JOINT_INDEX["neck_base"]] = pos["neck"] + rot["neck"] @ np.array(NECK_BASE_IN_HEAD)
    out[:, JOINT_INDEX["head"]] = pos["neck"] + rot["neck"] @ np.array(HEAD_IN_HEAD)
    return out


def y_up_m_to_z_up_mm(points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` y-up metres -> z-up millimetres: ``(x, y, z) -> 1000 * (x, -z, y)``."""
    return 1000.0 * np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


def load_deepmimic(path: str | Path, fps: float | None = None) -> Motion:
    """Load a DeepMimic clip as a :class:`Motion` resampled at ``fps`` (default 30).

    Rotations are slerped between key frames before FK (so bone lengths stay exact). The clip
    is placed with its frame-0 pelvis above the origin and its lowest ankle 80 mm above the
    floor (z = 0), lower where a knee or hand would go under 40 mm (crawl, roll, get-ups).
    """
    path = Path(path)
    fps = 30.0 if fps is None else float(fps)
    frames = np.asarray(json.loads(path.read_text())["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != _ROW_LENGTH or len(frames) < 1:
        raise ValueError(
            f"{path}: expected key frames of {_ROW_LENGTH} numbers, got {frames.shape}"
        )
    joints = y_up_m_to_z_up_mm(deepmimic_fk(_resample(frames, fps)))
    name = path.stem.removeprefix("humanoid3d_")
    return Motion(normalise_placement(joints), fps, name)


def load_deepmimic_clips(which: str = "default", fps: float | None = None) -> dict[str, Motion]:
    """All clips of a set (see :func:`clip_paths`) loaded with :func:`load_deepmimic`."""
    return {name: load_deepmimic(path, fps) for name, path in clip_paths(which).items()}
