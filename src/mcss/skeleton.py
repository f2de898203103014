"""The Human3.6M 17-joint skeleton: joint order, bones, left/right pairs and mirroring.

Joint order follows mmpose's H36M order (see ``shared/fixtures/README.md``).
All poses in mcss are arrays ``(..., 17, 3)``; world frames are z-up, millimetres.
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_foot",
    "left_hip",
    "left_knee",
    "left_foot",
    "spine",
    "thorax",
    "neck_base",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Kinematic tree: PARENTS[j] is the parent joint of j (-1 for the root, the pelvis).
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
BONES: tuple[tuple[int, int], ...] = tuple((p, j) for j, p in enumerate(PARENTS) if p >= 0)

LEFT_JOINTS: tuple[int, ...] = tuple(i for i, n in enumerate(JOINT_NAMES) if n.startswith("left_"))
RIGHT_JOINTS: tuple[int, ...] = tuple(
    JOINT_INDEX["right_" + JOINT_NAMES[i][len("left_") :]] for i in LEFT_JOINTS
)


def _flip_permutation() -> np.ndarray:
    perm = np.arange(NUM_JOINTS)
    perm[list(LEFT_JOINTS)] = RIGHT_JOINTS
    perm[list(RIGHT_JOINTS)] = LEFT_JOINTS
    return perm


FLIP_PERMUTATION: np.ndarray = _flip_permutation()
"""Index array that swaps every left joint with its right counterpart."""


def swap_left_right(joints: np.ndarray) -> np.ndarray:
    """Relabel joints left<->right without moving them: ``(..., 17, D) -> (..., 17, D)``."""
    return joints[..., FLIP_PERMUTATION, :]


def mirror(joints: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mirror a pose through the plane ``coordinate[axis] = 0`` and swap left/right labels.

    The result is a valid pose of a person: the mirrored left arm is labelled as the
    right arm, as a real person performing the mirrored motion would have it.
    """
    out = np.array(joints, dtype=np.float64 if joints.dtype == np.float64 else joints.dtype)
    out[..., axis] = -out[..., axis]
    return swap_left_right(out)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of every bone in :data:`BONES`: ``(..., 17, 3) -> (..., 16)``."""
    parents = np.array([p for p, _ in BONES])
    children = np.array([c for _, c in BONES])
    return np.linalg.norm(joints[..., children, :] - joints[..., parents, :], axis=-1)


def root_relative(joints: np.ndarray) -> np.ndarray:
    """Subtract the pelvis from every joint."""
    return joints - joints[..., :1, :]
