"""Procedural motions: parametric gaits and gestures by FK on a fixed H36M-proportioned skeleton.

For tests and machines without motion-capture files. The skeleton (:data:`REST_OFFSETS`) has
Human3.6M S1-like bone lengths and stands about 1.7 m tall; joint angles are smooth functions
of time with parameters (speed, amplitude, frequency, phase, side) drawn from ``rng``. The
feet are put on the floor every frame (lowest ankle at 80 mm), and for the in-place kinds
the ankles' midpoint is kept fixed horizontally.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcss.motion import Motion
from mcss.motion.variation import ANKLE_HEIGHT_MM, axis_angle_matrix
from mcss.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS

# Rest pose, facing +x, z up, right side -y: offset of each joint from its parent (mm).
REST_OFFSETS = np.array(
    [
        [0.0, 0.0, 0.0],  # pelvis
        [0.0, -132.0, -10.0],  # right_hip
        [0.0, 0.0, -442.0],  # right_knee
        [0.0, 0.0, -454.0],  # right_foot (ankle)
        [0.0, 132.0, -10.0],  # left_hip
        [0.0, 0.0, -442.0],  # left_knee
        [0.0, 0.0, -454.0],  # left_foot
        [-20.0, 0.0, 232.0],  # spine
        [20.0, 0.0, 256.0],  # thorax
        [70.0, 0.0, 95.0],  # neck_base (H36M's neck/nose point, in front)
        [-30.0, 0.0, 110.0],  # head
        [-10.0, 145.0, -40.0],  # left_shoulder
        [0.0, 0.0, -278.0],  # left_elbow
        [0.0, 0.0, -251.0],  # left_wrist
        [-10.0, -145.0, -40.0],  # right_shoulder
        [0.0, 0.0, -278.0],  # right_elbow
        [0.0, 0.0, -251.0],  # right_wrist
    ]
)

_X, _Y, _Z = np.eye(3)
_J = JOINT_INDEX


class _Pose:
    """Local joint rotations ``(T, 17, 3, 3)``; ``rot`` right-multiplies one joint's rotation.

    The rotation at joint ``j`` turns the bones from ``j`` to its children, in ``j``'s parent
    frame (body axes at rest: x forward, y left, z up).
    """

    def __init__(self, frames: int) -> None:
        self.local = np.broadcast_to(np.eye(3), (frames, NUM_JOINTS, 3, 3)).copy()

    def rot(self, joint: str, axis: np.ndarray, deg: np.ndarray | float) -> None:
        deg = np.broadcast_to(np.asarray(deg, dtype=np.float64), self.local.shape[:1])
        r = axis_angle_matrix(np.deg2rad(deg)[:, None] * axis)
        j = _J[joint]
        self.local[:, j] = self.local[:, j] @ r

    # Anatomical shorthands (positive = the usual direction of the movement).
    def hip_flex(self, side: str, deg) -> None:
        self.rot(f"{side}_hip", _Y, -np.asarray(deg))

    def knee_flex(self, side: str, deg) -> None:
        self.rot(f"{side}_knee", _Y, deg)

    def shoulder_flex(self, side: str, deg) -> None:
        self.rot(f"{side}_shoulder", _Y, -np.asarray(deg))

    def elbow_flex(self, side: str, deg) -> None:
        self.rot(f"{side}_elbow", _Y, -np.asarray(deg))

    def abduct(self, joint: str, side: str, deg) -> None:
        sign = 1.0 if side == "left" else -1.0
        self.rot(f"{side}_{joint}", _X, sign * np.asarray(deg))

    def twist(self, joint: str, side: str, deg) -> None:
        """External rotation about the limb's long axis."""
        sign = 1.0 if side == "left" else -1.0
        self.rot(f"{side}_{joint}", _Z, sign * np.asarray(deg))


def _fk(local: np.ndarray, root: np.ndarray) -> np.ndarray:
    """World joints ``(T, 17, 3)`` from local rotations and the pelvis trajectory ``(T, 3)``."""
    pos = np.empty(local.shape[:1] + (NUM_JOINTS, 3))
    world = [local[:, 0]]
    pos[:, 0] = root
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        pos[:, j] = pos[:, p] + world[p] @ REST_OFFSETS[j]
        world.append(world[p] @ local[:, j])
    return pos


def _envelope(t: np.ndarray, ramp: float) -> np.ndarray:
    """0 -> 1 -> 0 smoothstep envelope with ``ramp``-second edges (a gesture starts and ends)."""
    total = t[-1] if t[-1] > 0 else 1.0
    ramp = min(ramp, total / 2) or 1.0
    x = np.clip(np.minimum(t, total - t) / ramp, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _relaxed(pose: _Pose, rng: np.random.Generator) -> None:
    """A natural standing posture: slightly bent elbows, arms a little away from the body."""
    for side in ("left", "right"):
        pose.abduct("shoulder", side, rng.uniform(4.0, 10.0))
        pose.elbow_flex(side, rng.uniform(8.0, 20.0))
        pose.knee_flex(side, rng.uniform(0.0, 4.0))
    pose.rot("neck_base", _Y, rng.uniform(-5.0, 10.0))


def _idle(pose: _Pose, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    _relaxed(pose, rng)
    f = rng.uniform(0.15, 0.35)
    ph = rng.uniform(0, 2 * np.pi, size=3)
    pose.rot("pelvis", _X, 3.0 * np.sin(2 * np.pi * f * t + ph[0]))  # weight shift
    pose.rot("pelvis", _Z, rng.uniform(-30, 30) + 5.0 * np.sin(2 * np.pi * f * t + ph[1]))
    pose.rot("neck_base", _Z, 25.0 * np.sin(2 * np.pi * 0.5 * f * t + ph[2]))
    for side, s in (("left", 1.0), ("right", -1.0)):
        pose.shoulder_flex(side, 4.0 * np.sin(2 * np.pi * f * t + ph[0] * s))
    return np.zeros((len(t), 2))


def _walk(pose: _Pose, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    _relaxed(pose, rng)
    freq = rng.uniform(0.8, 1.0)  # strides per second
    step = rng.uniform(600.0, 750.0)  # mm per step (two steps per stride)
    hip_amp, arm_amp = rng.uniform(18.0, 26.0), rng.uniform(10.0, 22.0)
    phi = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
    for side, shift in (("right", 0.0), ("left", np.pi)):
        p = phi + shift
        pose.hip_flex(side, 5.0 + hip_amp * np.sin(p))
        pose.knee_flex(side, 5.0 + 55.0 * np.maximum(np.cos(p), 0.0) ** 2)
        pose.shoulder_flex(side, -arm_amp * np.sin(p))
        pose.elbow_flex(side, 10.0 + 15.0 * np.maximum(-np.sin(p), 0.0))
    pose.rot("pelvis", _Z, 5.0 * np.sin(phi))
    pose.rot("spine", _Z, -8.0 * np.sin(phi))
    pose.rot("spine", _Y, rng.uniform(0.0, 8.0))
    x = 2.0 * step * freq * t
    return np.stack([x, np.zeros_like(x)], axis=-1)


def _wave(pose: _Pose, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    _relaxed(pose, rng)
    side = "left" if rng.random() < 0.5 else "right"
    env = _envelope(t, rng.uniform(0.4, 0.8))
    freq = rng.uniform(1.5, 2.5)
    pose.abduct("shoulder", side, env * rng.uniform(80.0, 130.0))
    pose.shoulder_flex(side, env * rng.uniform(0.0, 30.0))
    pose.twist("shoulder", side, env * 90.0)
    wave = 25.0 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    pose.elbow_flex(side, env * (rng.uniform(60.0, 90.0) + wave))
    pose.rot("neck_base", _Z, (1.0 if side == "left" else -1.0) * env * rng.uniform(0.0, 25.0))
    return np.zeros((len(t), 2))


def _squat(pose: _Pose, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    depth = rng.uniform(0.5, 1.0)
    freq = rng.uniform(0.25, 0.5)
    s = depth * 0.5 * (1.0 - np.cos(2 * np.pi * freq * t))
    for side in ("left", "right"):
        pose.hip_flex(side, 100.0 * s)
        pose.knee_flex(side, 130.0 * s)
        pose.abduct("hip", side, 10.0 * s)
        pose.shoulder_flex(side, 85.0 * s)
        pose.elbow_flex(side, 10.0 + 10.0 * s)
    pose.rot("spine", _Y, 35.0 * s)
    pose.rot("neck_base", _Y, -20.0 * s)
    return np.zeros((len(t), 2))


def _turn(pose: _Pose, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    _relaxed(pose, rng)
    total = rng.choice([-1.0, 1.0]) * rng.uniform(90.0, 270.0)
    x = np.clip(t / max(t[-1], 1e-9), 0.0, 1.0)
    pose.rot("pelvis", _Z, total * x * x * (3.0 - 2.0 * x))
    step = 2 * np.pi * rng.uniform(1.2, 1.8) * t
    active = _envelope(t, 0.3)
    for side, shift in (("right", 0.0), ("left", np.pi)):
        lift = np.maximum(np.sin(step + shift), 0.0) * active
        pose.hip_flex(side, 15.0 * lift)
        pose.knee_flex(side, 30.0 * lift)
    pose.rot("neck_base", _Z, 0.15 * total * active)
    return np.zeros((len(t), 2))


def _reach(pose: _Pose, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    _relaxed(pose, rng)
    freq = rng.uniform(0.3, 0.6)
    both = rng.random() < 0.4
    sides = ("left", "right") if both else (("left",) if rng.random() < 0.5 else ("right",))
    s = 0.5 * (1.0 - np.cos(2 * np.pi * freq * t))
    height = rng.uniform(60.0, 160.0)
    for side in sides:
        pose.shoulder_flex(side, height * s)
        pose.elbow_flex(side, 5.0 + 40.0 * (1.0 - s))
    pose.rot("spine", _Y, rng.uniform(0.0, 30.0) * s * (height < 110.0))
    return np.zeros((len(t), 2))


def _jumping_jacks(pose: _Pose, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    freq = rng.uniform(0.8, 1.2)
    s = 0.5 * (1.0 - np.cos(2 * np.pi * freq * t))
    for side in ("left", "right"):
        pose.abduct("shoulder", side, 15.0 + rng.uniform(130.0, 155.0) * s)
        pose.elbow_flex(side, 10.0)
        pose.abduct("hip", side, 3.0 + 15.0 * s)
        pose.knee_flex(side, 5.0 + 10.0 * np.sin(np.pi * s))
    return np.zeros((len(t), 2))


_KINDS: dict[str, Callable[[_Pose, np.ndarray, np.random.Generator], np.ndarray]] = {
    "idle": _idle,
    "walk": _walk,
    "wave": _wave,
    "squat": _squat,
    "turn": _turn,
    "reach": _reach,
    "jumping_jacks": _jumping_jacks,
}
PROCEDURAL_KINDS: tuple[str, ...] = tuple(_KINDS)
"""Kinds accepted by :func:`procedural_motion`."""

_ANKLES = [JOINT_INDEX["right_foot"], JOINT_INDEX["left_foot"]]


def procedural_motion(kind: str, frames: int, fps: float, rng: np.random.Generator) -> Motion:
    """A ``frames``-long procedural clip of ``kind`` (see :data:`PROCEDURAL_KINDS`) at ``fps``.

    The person starts at the origin facing +x; ``walk`` moves along +x, the other kinds stay
    in place (ankle midpoint fixed). Parameters come from ``rng``, so a seed gives a clip.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown procedural motion {kind!r}; choose from {PROCEDURAL_KINDS}")
    if frames < 1 or not fps > 0:
        raise ValueError(f"need frames >= 1 and fps > 0, got {frames}, {fps}")
    t = np.arange(frames) / fps
    pose = _Pose(frames)
    root_xy = _KINDS[kind](pose, t, rng)
    joints = _fk(pose.local, np.zeros((frames, 3)))
    if kind != "walk":  # planted feet: keep the ankle midpoint where it starts
        mid = joints[:, _ANKLES, :2].mean(axis=1)
        joints[..., :2] -= (mid - mid[:1])[:, None, :]
    joints[..., :2] += root_xy[:, None, :] - joints[:1, :1, :2]
    joints[..., 2] += (ANKLE_HEIGHT_MM - joints[:, _ANKLES, 2].min(axis=1))[:, None]
    return Motion(joints, fps, f"procedural_{kind}")
