"""Take variations: every take differs from its clip (retime, blend, joint noise, mirroring).

All functions keep bone lengths constant over time: poses are edited as bone directions and
rebuilt along the kinematic tree of :mod:`mcss.skeleton` with fixed lengths.
World frames are z-up, millimetres.
"""

from __future__ import annotations

import math

import numpy as np

from mcss.geometry import rotation_about_z
from mcss.motion import Motion
from mcss.skeleton import BONES, JOINT_INDEX, NUM_JOINTS, bone_lengths, mirror

ANKLE_HEIGHT_MM = 80.0
"""Height of the lowest ankle ("foot" joint) above the floor after placement normalisation."""

MIN_JOINT_HEIGHT_MM = 40.0
"""No joint centre comes closer to the floor than this after placement normalisation."""

_ANKLES = (JOINT_INDEX["right_foot"], JOINT_INDEX["left_foot"])
_BONE_OF_CHILD = {c: b for b, (_, c) in enumerate(BONES)}
# Hinge joints (knee, elbow) named by the child joint of their lower bone.
_HINGE_CHILDREN = (
    JOINT_INDEX["right_foot"],
    JOINT_INDEX["left_foot"],
    JOINT_INDEX["right_wrist"],
    JOINT_INDEX["left_wrist"],
)
# Girdle bones: pelvis->hip gets no noise (the pelvis is rigid), thorax->shoulder half of it.
_NOISE_SCALE = np.ones(NUM_JOINTS)
_NOISE_SCALE[[JOINT_INDEX["right_hip"], JOINT_INDEX["left_hip"]]] = 0.0
_NOISE_SCALE[[JOINT_INDEX["right_shoulder"], JOINT_INDEX["left_shoulder"]]] = 0.5
_MAX_FLEXION = math.radians(160.0)


# --------------------------------------------------------------------------- geometry helpers


def axis_angle_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices from rotation vectors (axis * radians): ``(..., 3) -> (..., 3, 3)``."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    theta = np.linalg.norm(rotvec, axis=-1)[..., None, None]
    k = rotvec / np.maximum(theta[..., 0], 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    skew = np.stack(
        [
            np.stack([zero, -kz, ky], axis=-1),
            np.stack([kz, zero, -kx], axis=-1),
            np.stack([-ky, kx, zero], axis=-1),
        ],
        axis=-2,
    )
    eye = np.broadcast_to(np.eye(3), skew.shape)
    return eye + np.sin(theta) * skew + (1.0 - np.cos(theta)) * (skew @ skew)


def facing_direction(joints: np.ndarray) -> np.ndarray:
    """Horizontal facing direction ``z x (right_hip - left_hip)``: ``(..., 17, 3) -> (..., 3)``.

    For a person facing ``f`` with up ``z``, the right side is ``f x z``; hence ``f = z x right``.
    Falls back to +x where the hip axis is vertical.
    """
    right = joints[..., JOINT_INDEX["right_hip"], :] - joints[..., JOINT_INDEX["left_hip"], :]
    f = np.stack([-right[..., 1], right[..., 0], np.zeros_like(right[..., 0])], axis=-1)
    n = np.linalg.norm(f, axis=-1, keepdims=True)
    fallback = np.broadcast_to(np.array([1.0, 0.0, 0.0]), f.shape)
    return np.where(n > 1e-9, f / np.maximum(n, 1e-12), fallback)


def heading_angle(joints: np.ndarray) -> np.ndarray:
    """Heading (radians from +x about +z) of :func:`facing_direction`: ``(..., 17, 3) -> (...)``."""
    f = facing_direction(joints)
    return np.arctan2(f[..., 1], f[..., 0])


def reference_bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Per-bone median length over all frames: ``(T, 17, 3) -> (16,)``."""
    return np.median(bone_lengths(joints).reshape(-1, len(BONES)), axis=0)


def bone_directions(joints: np.ndarray) -> np.ndarray:
    """Unit direction of every bone (parent to child): ``(..., 17, 3) -> (..., 16, 3)``."""
    parents = np.array([p for p, _ in BONES])
    children = np.array([c for _, c in BONES])
    d = joints[..., children, :] - joints[..., parents, :]
    n = np.linalg.norm(d, axis=-1, keepdims=True)
    up = np.broadcast_to(np.array([0.0, 0.0, 1.0]), d.shape)
    return np.where(n > 1e-9, d / np.maximum(n, 1e-12), up)


def build_from_directions(
    root: np.ndarray, directions: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Pose from the root position ``(..., 3)``, bone directions ``(..., 16, 3)`` and lengths."""
    lengths = np.broadcast_to(np.asarray(lengths, dtype=np.float64), directions.shape[:-1])
    out = np.empty(directions.shape[:-2] + (NUM_JOINTS, 3))
    out[..., 0, :] = root
    for b, (p, c) in enumerate(BONES):  # parents precede children in BONES
        out[..., c, :] = out[..., p, :] + directions[..., b, :] * lengths[..., b, None]
    return out


def normalise_placement(
    joints: np.ndarray,
    ankle_height_mm: float = ANKLE_HEIGHT_MM,
    min_joint_height_mm: float = MIN_JOINT_HEIGHT_MM,
) -> np.ndarray:
    """Move a clip ``(T, 17, 3)`` with one rigid translation (so jumps stay jumps): the pelvis
    is above the origin at frame 0, and the floor (z = 0) is where the lowest ankle over the
    clip is ``ankle_height_mm`` above it, or lower where another joint would otherwise come
    closer than ``min_joint_height_mm`` to it (knees when crawling, hands in a roll)."""
    shift = np.zeros(3)
    shift[:2] = -joints[0, 0, :2]
    shift[2] = max(
        ankle_height_mm - joints[:, _ANKLES, 2].min(),
        min_joint_height_mm - joints[..., 2].min(),
    )
    return joints + shift


# --------------------------------------------------------------------------- variations


def set_bone_lengths(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rebuild poses ``(..., 17, 3)`` along the tree with new bone ``lengths`` (16, in
    :data:`~mcss.skeleton.BONES` order, or broadcastable ``(..., 16)``), keeping the pelvis
    position and every bone's direction. Actors of other builds are made with it."""
    joints = np.asarray(joints, dtype=np.float64)
    return build_from_directions(joints[..., 0, :], bone_directions(joints), lengths)


def _sample(joints: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Linear interpolation of frames at fractional indices ``src``."""
    src = np.clip(src, 0.0, joints.shape[0] - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, joints.shape[0] - 1)
    w = (src - i0)[:, None, None]
    return (1.0 - w) * joints[i0] + w * joints[i1]


def retime(m: Motion, speed: float) -> Motion:
    """Play ``m`` ``speed`` times faster (same fps): the duration becomes ``duration / speed``.

    Frames are interpolated linearly and rebuilt with the clip's bone lengths, so the small
    chord shortening of interpolation does not change the skeleton.
    """
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    t = m.num_frames
    n = int(round((t - 1) / speed)) + 1
    joints = _sample(m.joints, np.arange(n) * speed)
    joints = set_bone_lengths(joints, reference_bone_lengths(m.joints))
    return Motion(joints, m.fps, f"{m.name}~x{speed:.2f}")


def _smooth_headings(joints: np.ndarray, window: int) -> np.ndarray:
    """Per-frame heading angle, smoothed with a moving average of unit vectors (keeps the
    overall heading and turns, drops the in-gait pelvis yaw wobble)."""
    f = facing_direction(joints)[:, :2]
    if window > 1 and f.shape[0] > 1:
        pad = window // 2
        fp = np.pad(f, ((pad, pad), (0, 0)), mode="edge")
        kernel = np.ones(window) / window
        f = np.stack([np.convolve(fp[:, k], kernel, mode="valid") for k in range(2)], axis=-1)
        f = f[: joints.shape[0]]
    return np.arctan2(f[:, 1], f[:, 0])


def blend(a: Motion, b: Motion, weight: float) -> Motion:
    """Blend clip ``b`` into ``a`` with ``weight`` in [0, 1] without breaking bone lengths.

    ``b`` is stretched in time to ``a``'s frame count and turned per frame about its pelvis so
    that its (smoothed) heading matches ``a``'s; bone directions are then averaged and
    renormalised, lengths are the weighted average of both clips' lengths (constant), the
    pelvis follows ``a``'s horizontal path with a blended height, and the clip is shifted so
    that its lowest ankle height is the blend of the two clips'.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight must be in [0, 1], got {weight}")
    t = a.num_frames
    ja = a.joints
    jb = _sample(b.joints, np.linspace(0.0, b.num_frames - 1, t))
    window = max(1, int(round(0.5 * a.fps)) | 1)
    turn = _smooth_headings(ja, window) - _smooth_headings(jb, window)
    rel_b = (jb - jb[:, :1]) @ np.swapaxes(rotation_about_z(turn), -1, -2)
    da, db = bone_directions(ja), bone_directions(rel_b)
    d = (1.0 - weight) * da + weight * db
    n = np.linalg.norm(d, axis=-1, keepdims=True)
    d = np.where(n > 1e-6, d / np.maximum(n, 1e-12), da)
    lengths_a, lengths_b = reference_bone_lengths(ja), reference_bone_lengths(b.joints)
    lengths = (1.0 - weight) * lengths_a + weight * lengths_b
    root = ja[:, 0].copy()
    root[:, 2] = (1.0 - weight) * ja[:, 0, 2] + weight * jb[:, 0, 2]
    joints = build_from_directions(root, d, lengths)
    floor_a = ja[:, _ANKLES, 2].min()
    floor_b = b.joints[:, _ANKLES, 2].min()
    joints[..., 2] += (1.0 - weight) * floor_a + weight * floor_b - joints[:, _ANKLES, 2].min()
    return Motion(joints, a.fps, f"{a.name}+{b.name}@{weight:.2f}")


def _smooth_curves(
    rng: np.random.Generator, t: np.ndarray, n: int, freq_hz: tuple[float, float]
) -> np.ndarray:
    """``n`` smooth random 3-vector curves over times ``t``: sums of 3 sinusoids each, scaled
    to a peak norm of 1 over the clip: ``(T, n, 3)``."""
    k = 3
    amp = rng.normal(size=(n, 3, k))
    freq = rng.uniform(freq_hz[0], freq_hz[1], size=(n, 3, k))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(n, 3, k))
    curves = (amp * np.sin(2.0 * np.pi * freq * t[:, None, None, None] + phase)).sum(-1)
    peak = np.linalg.norm(curves, axis=-1).max(axis=0)
    return curves / np.maximum(peak, 1e-9)[None, :, None]


def rotation_noise(
    m: Motion,
    rng: np.random.Generator,
    max_deg: float = 8.0,
    *,
    freq_hz: tuple[float, float] = (0.1, 0.7),
) -> Motion:
    """Smooth, low-frequency rotation noise per joint, within joint limits.

    Each bone's child subtree is rotated about its parent joint by a smoothly varying
    rotation (sums of sinusoids of ``freq_hz``) whose angle never exceeds ``max_deg``
    (each joint draws its own peak in ``[0.5, 1] * max_deg``). Joint-limit rule:
    - knees and elbows (hinges) only change their flexion angle, within the plane of the
      limb, and the new angle stays in ``[flexion / 2, max(flexion, 160 deg)]``: a hinge
      never straightens past half its bend, so it can never pass straight and bend
      backwards, and a straight limb stays straight;
    - pelvis->hip bones get no noise (the pelvis is rigid), thorax->shoulder bones half.
    Bone lengths are unchanged (rotations only).
    """
    if max_deg <= 0:
        return m
    t = np.arange(m.num_frames) / m.fps
    peak = np.deg2rad(max_deg) * rng.uniform(0.5, 1.0, size=NUM_JOINTS) * _NOISE_SCALE
    rotvec = _smooth_curves(rng, t, NUM_JOINTS, freq_hz) * peak[None, :, None]
    dirs = bone_directions(m.joints)
    lengths = reference_bone_lengths(m.joints)
    acc = {0: np.broadcast_to(np.eye(3), (m.num_frames, 3, 3))}
    new_dirs = np.empty_like(dirs)
    for b, (p, c) in enumerate(BONES):
        if c in _HINGE_CHILDREN:
            local = _hinge_rotation(dirs[:, _BONE_OF_CHILD[p]], dirs[:, b], rotvec[:, c, 0])
        else:
            local = axis_angle_matrix(rotvec[:, c])
        acc[c] = acc[p] @ local
        new_dirs[:, b] = np.einsum("tij,tj->ti", acc[c], dirs[:, b])
    joints = build_from_directions(m.joints[:, 0], new_dirs, lengths)
    return Motion(joints, m.fps, f"{m.name}~n{max_deg:g}")


def _hinge_rotation(upper: np.ndarray, lower: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Rotation of the lower bone about the hinge normal changing the flexion by ``delta``
    (radians), clamped to ``[flexion / 2, max(flexion, 160 deg)]``: ``(T, 3, 3)``."""
    normal = np.cross(upper, lower)
    sin_f = np.linalg.norm(normal, axis=-1)
    flex = np.arctan2(sin_f, np.einsum("ti,ti->t", upper, lower))
    target = np.clip(flex + delta, 0.5 * flex, np.maximum(flex, _MAX_FLEXION))
    axis = normal / np.maximum(sin_f, 1e-12)[:, None]
    change = np.where(sin_f > 1e-6, target - flex, 0.0)
    return axis_angle_matrix(axis * change[:, None])


def mirror_motion(m: Motion) -> Motion:
    """Mirror through the body's sagittal plane at frame 0 and swap left/right labels.

    The plane is vertical, through the frame-0 pelvis, containing the frame-0 facing
    direction; it is fixed over the clip, so the mirrored person performs the mirrored motion
    (a right kick becomes a left kick, a left turn a right turn) in the same place.
    Mirroring twice gives back the clip.
    """
    origin = np.array([m.joints[0, 0, 0], m.joints[0, 0, 1], 0.0])
    h = float(heading_angle(m.joints[0]))
    to_body = rotation_about_z(-h)
    local = (m.joints - origin) @ to_body.T
    local = mirror(local, axis=1)
    joints = local @ rotation_about_z(h).T + origin
    return Motion(joints, m.fps, f"{m.name}~mirror")


def place(m: Motion, heading_rad: float, offset_xy_mm: tuple[float, float] | np.ndarray) -> Motion:
    """Rotate the clip by ``heading_rad`` about the world z axis, then translate it in xy."""
    offset = np.array([offset_xy_mm[0], offset_xy_mm[1], 0.0], dtype=np.float64)
    joints = m.joints @ rotation_about_z(heading_rad).T + offset
    return Motion(joints, m.fps, m.name)


def vary(
    m: Motion,
    rng: np.random.Generator,
    *,
    speed_range: tuple[float, float] = (0.8, 1.25),
    noise_deg: float = 8.0,
    mirror_prob: float = 0.5,
    other: Motion | None = None,
    blend_weight: float | tuple[float, float] = (0.1, 0.4),
) -> Motion:
    """One take of ``m``: blend with ``other`` (if given), retime, joint noise, maybe mirror.

    Everything is drawn from ``rng`` in a fixed order (the same numbers are drawn whatever
    the options), so a seed gives the same take. ``speed`` is log-uniform in ``speed_range``;
    ``blend_weight`` is a fixed weight or a uniform range. Placement (heading, position) is
    left to :func:`place`.
    """
    lo, hi = (blend_weight, blend_weight) if np.isscalar(blend_weight) else blend_weight
    weight = float(rng.uniform(lo, hi))
    speed = float(np.exp(rng.uniform(np.log(speed_range[0]), np.log(speed_range[1]))))
    do_mirror = bool(rng.random() < mirror_prob)
    noise_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
    out = m
    if other is not None and weight > 0.0:
        out = blend(out, other, weight)
    if not math.isclose(speed, 1.0):
        out = retime(out, speed)
    out = rotation_noise(out, noise_rng, noise_deg)
    if do_mirror:
        out = mirror_motion(out)
    return out


__all__ = [
    "ANKLE_HEIGHT_MM",
    "MIN_JOINT_HEIGHT_MM",
    "axis_angle_matrix",
    "blend",
    "bone_directions",
    "build_from_directions",
    "facing_direction",
    "heading_angle",
    "mirror_motion",
    "normalise_placement",
    "place",
    "reference_bone_lengths",
    "retime",
    "rotation_noise",
    "set_bone_lengths",
    "vary",
]
