"""Synthetic actors: build, clothing and skin, and the capsules and spheres of their body.

An actor is a small table of numbers: bone-length scales, limb thickness and the colours of
each body part. Left and right limbs share colours, as real clothes do, so the network has to
tell left from right by the body's shape and the face, not by colour. The head has a face
(skin, with a nose) at the front and hair at the back, so the facing direction is visible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mcss.skeleton import BONES, JOINT_INDEX, NUM_JOINTS

J = JOINT_INDEX


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    value = int(hex_colour.lstrip("#"), 16)
    return ((value >> 16) / 255.0, ((value >> 8) & 255) / 255.0, (value & 255) / 255.0)


@dataclass(frozen=True)
class Actor:
    """One synthetic person. Scales multiply the motion's bone lengths; radii are metres."""

    name: str
    height_scale: float
    leg_scale: float
    arm_scale: float
    shoulder_scale: float
    thickness: float
    skin: str
    hair: str
    shirt: str
    trousers: str
    shoes: str
    long_sleeves: bool
    long_trousers: bool

    def to_dict(self) -> dict:
        return asdict(self)


# Eight-plus looks that differ in skin, build and clothing as much as real people do.
# The test subjects (S9, S11) share no clothing colour and no skin tone with S1.
ACTORS: tuple[Actor, ...] = (
    Actor("ada", 1.00, 1.00, 1.00, 1.00, 1.00, "#e8b995", "#3b2314", "#c0392b", "#2c3e70",
          "#1b1b1b", True, True),
    Actor("bo", 1.06, 1.04, 1.03, 1.08, 1.15, "#8d5524", "#111111", "#f1c40f", "#4d4d4d",
          "#f2f2f2", False, True),
    Actor("cyd", 0.93, 0.95, 0.96, 0.92, 0.90, "#f3d3bd", "#d9a441", "#27ae60", "#d8c8a8",
          "#6e3b1f", False, False),
    Actor("dev", 1.03, 1.06, 1.00, 1.02, 1.05, "#c68642", "#2a1a10", "#ecf0f1", "#101820",
          "#8e1b1b", True, True),
    Actor("eli", 0.97, 0.98, 1.02, 0.97, 1.25, "#ffdbac", "#7a3e13", "#8e44ad", "#7f8c8d",
          "#222222", True, False),
    Actor("fay", 0.95, 1.02, 0.97, 0.94, 0.95, "#5c3a21", "#0c0c0c", "#16a085", "#1f3a93",
          "#dddddd", False, True),
    Actor("gus", 1.08, 1.00, 1.06, 1.10, 1.10, "#a1665e", "#4a4a4a", "#34495e", "#b9770e",
          "#3d2b1f", True, True),
    Actor("hana", 0.98, 0.97, 0.99, 0.99, 0.92, "#e0ac69", "#1a1a1a", "#ff7f9f", "#f5f5dc",
          "#2e4053", False, False),
    Actor("ivo", 1.01, 1.03, 1.01, 1.04, 1.08, "#7d4a2a", "#1e1208", "#e67e22", "#145a32",
          "#111111", True, True),
    Actor("juno", 0.96, 0.99, 0.98, 0.95, 0.98, "#f1c27d", "#8a5a2b", "#2e86c1", "#5d3a1a",
          "#a93226", False, True),
)

# Human3.6M-style subjects, each a different actor; S9 and S11 are held out for testing.
SUBJECT_ACTORS: dict[str, str] = {
    "S1": "ada", "S5": "cyd", "S6": "gus", "S7": "hana", "S8": "ivo", "S9": "bo", "S11": "fay",
}
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in np.clip(rgb, 0.0, 1.0))


def random_actor(name: str, rng: np.random.Generator) -> Actor:
    """An actor of random build and clothing (uniform hue, any lightness), for extra
    unlabelled subjects: appearance variety that a studio gets by filming more people."""
    import colorsys

    def colour(lightness: tuple[float, float]) -> str:
        return _hex(np.array(colorsys.hls_to_rgb(rng.uniform(), rng.uniform(*lightness),
                                                 rng.uniform(0.2, 0.9))))

    skin = _hex(np.array(colorsys.hls_to_rgb(rng.uniform(0.03, 0.09), rng.uniform(0.2, 0.85),
                                             rng.uniform(0.3, 0.6))))
    return Actor(
        name, *np.round(rng.uniform([0.92, 0.94, 0.95, 0.92, 0.88], [1.08, 1.06, 1.06, 1.10, 1.25]),
                        2).tolist(),
        skin, colour((0.05, 0.5)), colour((0.1, 0.9)), colour((0.1, 0.9)), colour((0.05, 0.9)),
        bool(rng.integers(2)), bool(rng.integers(2)),
    )


def extra_subjects(count: int, seed: int) -> dict[str, Actor]:
    """``count`` unlabelled training subjects ``X1 .. Xcount`` with random actors."""
    rng = np.random.default_rng([seed, 7919])
    return {f"X{i + 1}": random_actor(f"extra{i + 1}", rng) for i in range(count)}


def actor_by_name(name: str) -> Actor:
    for actor in ACTORS:
        if actor.name == name:
            return actor
    raise KeyError(f"unknown actor {name!r}; known: {', '.join(a.name for a in ACTORS)}")


def bone_scales(actor: Actor) -> np.ndarray:
    """Per-bone length multipliers ``(16,)`` in :data:`mcss.skeleton.BONES` order."""
    leg = {J["right_hip"], J["right_knee"], J["right_foot"], J["left_hip"], J["left_knee"],
           J["left_foot"]}
    arm = {J["right_elbow"], J["right_wrist"], J["left_elbow"], J["left_wrist"]}
    shoulder = {J["left_shoulder"], J["right_shoulder"]}
    scales = []
    for _, child in BONES:
        s = actor.height_scale
        if child in leg and child not in (J["right_hip"], J["left_hip"]):
            s *= actor.leg_scale
        elif child in arm:
            s *= actor.arm_scale
        elif child in shoulder:
            s *= actor.shoulder_scale
        scales.append(s)
    return np.array(scales)


# Capsules: (from joint, to joint, radius in m, clothing part). Extra points (toes, hands)
# are added by :func:`body_points`.
_TORSO_R, _HIP_R, _NECK_R = 0.095, 0.085, 0.05
_CAPSULES: tuple[tuple[int, int, float, str], ...] = (
    (J["pelvis"], J["thorax"], 0.115, "shirt"),
    (J["left_hip"], J["left_shoulder"], _TORSO_R, "shirt"),
    (J["right_hip"], J["right_shoulder"], _TORSO_R, "shirt"),
    (J["left_hip"], J["right_hip"], _HIP_R, "trousers"),
    (J["thorax"], J["neck_base"], _NECK_R, "skin"),
    (J["left_shoulder"], J["left_elbow"], 0.048, "sleeve_upper"),
    (J["right_shoulder"], J["right_elbow"], 0.048, "sleeve_upper"),
    (J["left_elbow"], J["left_wrist"], 0.04, "sleeve_lower"),
    (J["right_elbow"], J["right_wrist"], 0.04, "sleeve_lower"),
    (J["left_hip"], J["left_knee"], 0.075, "trousers"),
    (J["right_hip"], J["right_knee"], 0.075, "trousers"),
    (J["left_knee"], J["left_foot"], 0.055, "trouser_lower"),
    (J["right_knee"], J["right_foot"], 0.055, "trouser_lower"),
    (J["left_foot"], NUM_JOINTS + 0, 0.042, "shoes"),  # toe points follow the joints
    (J["right_foot"], NUM_JOINTS + 1, 0.042, "shoes"),
)
# Spheres: (centre point index, radius in m, part). Points beyond the joints: 17, 18 toes,
# 19 head centre, 20 hair centre, 21 nose, 22, 23 hands, 24 chest print.
_SPHERES: tuple[tuple[int, float, str], ...] = (
    (NUM_JOINTS + 2, 0.100, "skin"),
    (NUM_JOINTS + 3, 0.103, "hair"),
    (NUM_JOINTS + 4, 0.034, "nose"),
    (NUM_JOINTS + 5, 0.048, "skin"),
    (NUM_JOINTS + 6, 0.048, "skin"),
    (NUM_JOINTS + 7, 0.070, "print"),  # a print on the shirt's front: front and back differ
)
LEFT_PARTS = (1, 5, 7, 9, 11, 13)
"""Capsule indices of the body's left side (torso flank, arm, leg, foot)."""
RIGHT_PARTS = (2, 6, 8, 10, 12, 14)
MARK_SHADE = 0.5
"""How much darker :func:`marked_left_palette` paints the left side."""


def body_forward(joints: np.ndarray) -> np.ndarray:
    """Unit facing direction ``(..., 3)`` of z-up poses: up x (left hip -> right hip)."""
    right = joints[..., J["right_hip"], :] - joints[..., J["left_hip"], :]
    up = joints[..., J["thorax"], :] - joints[..., J["pelvis"], :]
    fwd = np.cross(up, right)
    return fwd / np.linalg.norm(fwd, axis=-1, keepdims=True).clip(1e-9)


def body_points(joints: np.ndarray) -> np.ndarray:
    """The 17 joints plus the extra surface points (toes, head, hair, nose, hands, print), mm.

    ``joints``: ``(..., 17, 3)`` world, z-up, mm. Returns ``(..., 25, 3)``.
    """
    fwd = body_forward(joints)
    head_axis = joints[..., J["head"], :] - joints[..., J["neck_base"], :]
    head_up = head_axis / np.linalg.norm(head_axis, axis=-1, keepdims=True).clip(1e-9)
    # The face looks along the body's forward direction made orthogonal to the head's axis.
    face = fwd - head_up * np.sum(fwd * head_up, axis=-1, keepdims=True)
    face /= np.linalg.norm(face, axis=-1, keepdims=True).clip(1e-9)
    head_c = joints[..., J["neck_base"], :] + 0.55 * head_axis
    toe = 140.0 * fwd - np.array([0.0, 0.0, 50.0])
    extra = [
        joints[..., J["left_foot"], :] + toe,
        joints[..., J["right_foot"], :] + toe,
        head_c,
        head_c - 35.0 * face + 20.0 * head_up,
        head_c + 95.0 * face - 10.0 * head_up,
        _hand(joints, "left"),
        _hand(joints, "right"),
        _chest(joints) + 75.0 * fwd,
    ]
    return np.concatenate([joints, np.stack(extra, axis=-2)], axis=-2)


def _chest(joints: np.ndarray) -> np.ndarray:
    spine, thorax = joints[..., J["spine"], :], joints[..., J["thorax"], :]
    return spine + 0.6 * (thorax - spine)


def _hand(joints: np.ndarray, side: str) -> np.ndarray:
    wrist = joints[..., J[f"{side}_wrist"], :]
    return wrist + 0.12 * (wrist - joints[..., J[f"{side}_elbow"], :])


def _joint_primitives() -> tuple[frozenset[int], ...]:
    """For every joint, the primitives (capsules, then spheres) it lies inside."""
    n_caps = len(_CAPSULES)
    owners: list[set[int]] = [set() for _ in range(NUM_JOINTS)]
    for i, (a, b, _, _) in enumerate(_CAPSULES):
        for j in (a, b):
            if j < NUM_JOINTS:
                owners[j].add(i)
    owners[J["head"]] |= {n_caps + 0, n_caps + 1, n_caps + 2}
    owners[J["neck_base"]] |= {n_caps + 0, n_caps + 1}
    owners[J["left_wrist"]].add(n_caps + 3)
    owners[J["right_wrist"]].add(n_caps + 4)
    owners[J["spine"]].add(n_caps + 5)
    owners[J["thorax"]].add(n_caps + 5)
    return tuple(frozenset(o) for o in owners)


JOINT_PRIMITIVES = _joint_primitives()


def joints_visible(prim: np.ndarray, uv_crop: np.ndarray) -> np.ndarray:
    """``(B, 17)`` bool: the surface seen at each joint's crop pixel belongs to that joint's
    own body part (not occluded by another part, and inside the crop).

    ``prim``: ``(B, S, S)`` primitive index image from the renderer; ``uv_crop``: ``(B, 17, 2)``.
    """
    size = prim.shape[1]
    cols, rows = np.floor(uv_crop[..., 0]).astype(int), np.floor(uv_crop[..., 1]).astype(int)
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    seen = prim[np.arange(len(prim))[:, None], rows.clip(0, size - 1), cols.clip(0, size - 1)]
    own = np.array([[p in JOINT_PRIMITIVES[j] for j in range(NUM_JOINTS)]
                    for p in range(len(_CAPSULES) + len(_SPHERES))])
    return inside & (seen >= 0) & own[seen.clip(0), np.arange(NUM_JOINTS)]


def part_colours(actor: Actor) -> dict[str, tuple[float, float, float]]:
    """Linear RGB of every clothing part of an actor."""
    return {
        "skin": _rgb(actor.skin),
        "hair": _rgb(actor.hair),
        "nose": tuple(0.85 * c for c in _rgb(actor.skin)),
        "shirt": _rgb(actor.shirt),
        "trousers": _rgb(actor.trousers),
        "shoes": _rgb(actor.shoes),
        "sleeve_upper": _rgb(actor.shirt),
        "sleeve_lower": _rgb(actor.shirt if actor.long_sleeves else actor.skin),
        "trouser_lower": _rgb(actor.trousers if actor.long_trousers else actor.skin),
        "print": tuple(1.0 - c for c in _rgb(actor.shirt)),  # the shirt's complement
    }


def marked_left_palette(actor: Actor) -> dict[str, tuple[float, float, float]]:
    """A palette (for :func:`primitive_arrays`) painting the body's left side a darker shade.

    A diagnostic, not a look: real clothes rarely tell left from right, so by default the
    network must combine the body's facing with the image side of each limb. With the left
    side marked, colour alone tells them apart, which measures what that combination costs.
    """
    colours = part_colours(actor)
    return {f"capsule:{i}": tuple(MARK_SHADE * c for c in colours[_CAPSULES[i][3]])
            for i in LEFT_PARTS}


def primitive_arrays(
    points_m: np.ndarray, actor: Actor, palette: dict[str, tuple[float, float, float]] | None = None
) -> dict[str, np.ndarray]:
    """Capsule and sphere arrays for poses ``(B, 24, 3)`` (any frame, metres).

    ``palette`` overrides colours by part name or by ``"capsule:<i>"`` (used by tests to paint
    the left limbs in a colour of their own).
    """
    colours = part_colours(actor) | (palette or {})
    batch = points_m.shape[0]
    cap_from = [c[0] for c in _CAPSULES]
    cap_to = [c[1] for c in _CAPSULES]
    cap_rgb = [colours.get(f"capsule:{i}", colours[c[3]]) for i, c in enumerate(_CAPSULES)]
    sph_rgb = [colours[s[2]] for s in _SPHERES]
    return {
        "cap_a": points_m[:, cap_from],
        "cap_b": points_m[:, cap_to],
        "cap_r": np.broadcast_to(
            np.array([c[2] for c in _CAPSULES]) * actor.thickness, (batch, len(_CAPSULES))
        ),
        "cap_rgb": np.broadcast_to(np.array(cap_rgb), (batch, len(_CAPSULES), 3)),
        "sph_c": points_m[:, [s[0] for s in _SPHERES]],
        "sph_r": np.broadcast_to(
            np.array([s[1] for s in _SPHERES]) * np.where(
                np.arange(len(_SPHERES)) < 3, 1.0, actor.thickness
            ), (batch, len(_SPHERES))
        ),
        "sph_rgb": np.broadcast_to(np.array(sph_rgb), (batch, len(_SPHERES), 3)),
    }
