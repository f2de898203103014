"""BVH motion-capture files (e.g. the CMU library) -> H36M-17 joints by forward kinematics.

Supported: ``HIERARCHY`` with ``ROOT``/``JOINT``/``End Site``, ``OFFSET``, ``CHANNELS`` with
any subset and order of ``X/Y/Zposition`` and ``X/Y/Zrotation`` (degrees), and ``MOTION``
with ``Frames:`` and ``Frame Time:``. For a joint with channels ``Zrotation Xrotation
Yrotation`` the local rotation is ``Rz @ Rx @ Ry`` (the BVH convention: channels apply in the
listed order, parent side first), and ``p_child = p_joint + R_world(joint) @ offset_child``.
An ``End Site`` below joint ``J`` is named ``J_End`` (e.g. ``Head_End``: the head top).
BVH is y-up; output is z-up millimetres, ``(x, y, z) -> units_to_mm * (x, -z, y)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcss.motion import Motion
from mcss.motion.variation import axis_angle_matrix, normalise_placement, retime
from mcss.skeleton import JOINT_INDEX, JOINT_NAMES

CMU_UNIT_MM = 25.4 / 0.45
"""CMU ASF/BVH length unit: the skeletons declare ``length 0.45`` (inches), 1 unit = 56.44 mm."""

UNIT_CANDIDATES_MM: dict[str, float] = {
    "cmu": CMU_UNIT_MM,
    "inch": 25.4,
    "cm": 10.0,
    "mm": 1.0,
    "m": 1000.0,
}
"""Length units tried by ``units_to_mm="auto"``."""

PLAUSIBLE_HEIGHT_MM = (1000.0, 2400.0)
"""Range of rest-pose heights (lowest to highest joint) accepted as a human."""

CMU_NAME_MAP: dict[str, tuple[str, ...]] = {
    "pelvis": ("Hips", "hip", "pelvis", "Root"),
    "right_hip": ("RightUpLeg", "rThigh", "RightThigh", "RightHip"),
    "right_knee": ("RightLeg", "rShin", "RightShin", "RightKnee"),
    "right_foot": ("RightFoot", "rFoot", "RightAnkle"),
    "left_hip": ("LeftUpLeg", "lThigh", "LeftThigh", "LeftHip"),
    "left_knee": ("LeftLeg", "lShin", "LeftShin", "LeftKnee"),
    "left_foot": ("LeftFoot", "lFoot", "LeftAnkle"),
    "spine": ("Spine", "abdomen", "Spine1"),
    "thorax": ("Neck", "Spine1"),
    "neck_base": ("Neck1",),
    "head": ("Head",),
    "left_shoulder": ("LeftArm", "lShldr", "LeftUpperArm"),
    "left_elbow": ("LeftForeArm", "lForeArm", "LeftLowerArm", "LeftElbow"),
    "left_wrist": ("LeftHand", "lHand", "LeftWrist"),
    "right_shoulder": ("RightArm", "rShldr", "RightUpperArm"),
    "right_elbow": ("RightForeArm", "rForeArm", "RightLowerArm", "RightElbow"),
    "right_wrist": ("RightHand", "rHand", "RightWrist"),
}
"""H36M joint -> BVH joint names tried in order (matched case-insensitively, ignoring a
``namespace:`` prefix such as ``mixamorig:``). CMU: ``LeftUpLeg`` is the hip joint
(``LHipJoint`` sits at the pelvis), ``LeftArm`` the shoulder (``LeftShoulder`` is the clavicle
root), ``Neck`` the thorax (base of the neck, at ``Spine1``), ``Neck1`` the upper neck and
``Head`` (skull base, ~165 mm above the thorax, as H36M's head joint) the head. Each H36M bone
maps to one rigid BVH segment, so bone lengths stay constant; ``Head_End`` (the crown) would
not be (the ``Head`` rotation lies between it and ``Neck1``). Other skeletons, e.g. Mixamo:
``name_map={"thorax": "Spine2", "neck_base": "Neck", "head": "Head"}``."""


@dataclass
class _Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str] = field(default_factory=list)


@dataclass
class BvhData:
    """A parsed BVH file: joints (parents precede children), channel values, frame time."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # (J, 3), file units
    channels: list[list[str]]
    values: np.ndarray  # (T, total channels)
    frame_time: float


def parse_bvh(text: str) -> BvhData:
    """Parse BVH text (hierarchy and motion)."""
    tokens = text.split()
    pos = 0
    joints: list[_Joint] = []

    def expect(word: str) -> None:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] != word:
            got = tokens[pos] if pos < len(tokens) else "end of file"
            raise ValueError(f"BVH parse error: expected {word!r}, got {got!r}")
        pos += 1

    def parse_joint(parent: int) -> None:
        nonlocal pos
        kind = tokens[pos]
        if kind == "End":
            expect("End")
            expect("Site")
            name = f"{joints[parent].name}_End"
        elif kind in ("ROOT", "JOINT"):
            name = tokens[pos + 1]
            pos += 2
        else:
            raise ValueError(f"BVH parse error: unexpected {kind!r}")
        index = len(joints)
        joints.append(_Joint(name, parent, np.zeros(3)))
        expect("{")
        while tokens[pos] != "}":
            word = tokens[pos]
            if word == "OFFSET":
                joints[index].offset = np.array(tokens[pos + 1 : pos + 4], dtype=np.float64)
                pos += 4
            elif word == "CHANNELS":
                n = int(tokens[pos + 1])
                joints[index].channels = tokens[pos + 2 : pos + 2 + n]
                pos += 2 + n
            elif word in ("JOINT", "End"):
                parse_joint(index)
            else:
                raise ValueError(f"BVH parse error: unexpected {word!r} in joint {name!r}")
        expect("}")

    expect("HIERARCHY")
    parse_joint(-1)
    expect("MOTION")
    expect("Frames:")
    n_frames = int(tokens[pos])
    pos += 1
    expect("Frame")
    expect("Time:")
    frame_time = float(tokens[pos])
    pos += 1
    n_channels = sum(len(j.channels) for j in joints)
    values = np.array(tokens[pos : pos + n_frames * n_channels], dtype=np.float64)
    if values.size != n_frames * n_channels:
        raise ValueError(
            f"BVH: expected {n_frames} frames of {n_channels} channels, got {values.size} values"
        )
    return BvhData(
        names=[j.name for j in joints],
        parents=[j.parent for j in joints],
        offsets=np.array([j.offset for j in joints]).reshape(-1, 3),
        channels=[j.channels for j in joints],
        values=values.reshape(n_frames, n_channels),
        frame_time=frame_time,
    )


_AXES = {
    "X": np.array([1.0, 0.0, 0.0]),
    "Y": np.array([0.0, 1.0, 0.0]),
    "Z": np.array([0.0, 0.0, 1.0]),
}


def bvh_fk(data: BvhData) -> np.ndarray:
    """World positions of every BVH joint (incl. end sites): ``(T, J, 3)``, file units, y-up."""
    t = data.values.shape[0]
    rot: list[np.ndarray] = []
    pos = np.empty((t, len(data.names), 3))
    column = 0
    for j, (parent, offset, channels) in enumerate(
        zip(data.parents, data.offsets, data.channels, strict=True)
    ):
        local_t = np.broadcast_to(offset, (t, 3)).copy()
        local_r = np.broadcast_to(np.eye(3), (t, 3, 3))
        for ch in channels:
            v = data.values[:, column]
            column += 1
            axis, kind = ch[0].upper(), ch[1:].lower()
            if kind == "position":
                local_t[:, "XYZ".index(axis)] += v
            elif kind == "rotation":
                local_r = local_r @ axis_angle_matrix(np.deg2rad(v)[:, None] * _AXES[axis])
            else:
                raise ValueError(f"BVH: unknown channel {ch!r} of joint {data.names[j]!r}")
        if parent < 0:
            pos[:, j] = local_t
            rot.append(local_r)
        else:
            pos[:, j] = pos[:, parent] + np.einsum("tij,tj->ti", rot[parent], local_t)
            rot.append(rot[parent] @ local_r)
    return pos


def _normalise_name(name: str) -> str:
    return name.rsplit(":", 1)[-1].lower()


def resolve_joints(
    names: Sequence[str], name_map: Mapping[str, str | Sequence[str]] | None = None
) -> list[int]:
    """Index of the BVH joint used for each H36M joint (``name_map`` entries override
    :data:`CMU_NAME_MAP`); raises ``ValueError`` naming any H36M joint that has no match."""
    lookup = {}
    for i, n in enumerate(names):
        lookup.setdefault(_normalise_name(n), i)
    mapping = dict(CMU_NAME_MAP)
    for key, value in (name_map or {}).items():
        if key not in JOINT_INDEX:
            raise ValueError(f"name_map key {key!r} is not an H36M joint: {JOINT_NAMES}")
        mapping[key] = (value,) if isinstance(value, str) else tuple(value)
    out = []
    for joint in JOINT_NAMES:
        hit = next(
            (lookup[_normalise_name(c)] for c in mapping[joint] if _normalise_name(c) in lookup),
            None,
        )
        if hit is None:
            raise ValueError(
                f"BVH has no joint for H36M {joint!r} (tried {list(mapping[joint])}); "
                f"pass name_map={{{joint!r}: <name>}}. BVH joints: {list(names)}"
            )
        out.append(hit)
    return out


def _rest_height(data: BvhData) -> float:
    """Vertical (y) extent of the rest pose (offsets only), in file units."""
    rest = np.zeros((len(data.names), 3))
    for j, p in enumerate(data.parents):
        rest[j] = data.offsets[j] + (rest[p] if p >= 0 else 0.0)
    return float(rest[:, 1].max() - rest[:, 1].min())


def choose_units(height_units: float) -> float:
    """The unit in :data:`UNIT_CANDIDATES_MM` that makes ``height_units`` closest to 1.7 m."""
    if not height_units > 0:
        raise ValueError("BVH rest pose has no height: cannot detect its units")
    return min(UNIT_CANDIDATES_MM.values(), key=lambda u: abs(np.log(height_units * u / 1700.0)))


def load_bvh(
    path: str | Path,
    *,
    units_to_mm: float | str = "auto",
    name_map: Mapping[str, str | Sequence[str]] | None = None,
    fps: float | None = None,
    normalise: bool = True,
    check_height: bool = True,
) -> Motion:
    """Load a BVH file as a :class:`Motion` (z-up, mm, H36M-17 joints).

    ``units_to_mm``: millimetres per file unit, or ``"auto"`` to pick among
    :data:`UNIT_CANDIDATES_MM` (CMU 1/0.45 inch, inch, cm, mm, m) the one giving the rest
    pose a height closest to 1.7 m. With ``check_height`` an implausible height (outside
    :data:`PLAUSIBLE_HEIGHT_MM`) raises ``ValueError``. ``fps`` resamples in time (linear
    interpolation of joint positions, then bone lengths restored); ``normalise`` places the
    frame-0 pelvis above the origin and the lowest ankle at 80 mm
    (see :func:`~mcss.motion.variation.normalise_placement`).
    """
    path = Path(path)
    data = parse_bvh(path.read_text())
    index = resolve_joints(data.names, name_map)
    height = _rest_height(data)
    unit = choose_units(height) if units_to_mm == "auto" else float(units_to_mm)
    if check_height and not PLAUSIBLE_HEIGHT_MM[0] <= height * unit <= PLAUSIBLE_HEIGHT_MM[1]:
        raise ValueError(
            f"{path}: rest-pose height {height * unit / 1000:.2f} m with units_to_mm={unit:g} is "
            f"implausible; try units_to_mm={choose_units(height):g} or check_height=False"
        )
    world = bvh_fk(data)[:, index]
    joints = unit * np.stack([world[..., 0], -world[..., 2], world[..., 1]], axis=-1)
    if normalise:
        joints = normalise_placement(joints)
    native_fps = 1.0 / data.frame_time if data.frame_time > 0 else 30.0
    motion = Motion(joints, native_fps, path.stem)
    if fps is not None and not np.isclose(fps, native_fps):
        motion = retime(Motion(joints, fps, path.stem), native_fps / fps)
        motion = Motion(motion.joints, fps, path.stem)
    return motion
