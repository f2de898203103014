"""Motion sources for the synthetic dataset: 3D joint trajectories in the H36M-17 layout.

A :class:`Motion` is a clip of world-frame joint positions, ``(T, 17, 3)`` float64, z-up,
millimetres, joint order from :mod:`mcss.skeleton`. Sources: DeepMimic clips shipped in
pybullet (:mod:`.deepmimic`), BVH files (:mod:`.bvh`) and a procedural generator
(:mod:`.procedural`); :mod:`.variation` turns one clip into many different takes.
See ``docs/motion.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcss.skeleton import NUM_JOINTS


@dataclass(frozen=True)
class Motion:
    """World-frame joint positions ``(T, 17, 3)`` (z-up, mm, H36M-17 order) sampled at ``fps``."""

    joints: np.ndarray
    fps: float
    name: str

    def __post_init__(self) -> None:
        joints = np.array(self.joints, dtype=np.float64)  # own copy: frozen and read-only
        if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or joints.shape[0] < 1:
            raise ValueError(f"Motion.joints must be (T, {NUM_JOINTS}, 3), got {joints.shape}")
        if not np.isfinite(joints).all():
            raise ValueError(f"Motion {self.name!r} has non-finite joint positions")
        if not self.fps > 0:
            raise ValueError(f"Motion.fps must be positive, got {self.fps}")
        joints.setflags(write=False)
        object.__setattr__(self, "joints", joints)
        object.__setattr__(self, "fps", float(self.fps))

    @property
    def num_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.joints.shape[0])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame: ``(T - 1) / fps``."""
        return (self.num_frames - 1) / self.fps


# Submodules import Motion from here, so these imports must follow its definition.
from mcss.motion.bvh import CMU_NAME_MAP, load_bvh  # noqa: E402
from mcss.motion.deepmimic import (  # noqa: E402
    ACROBATIC_CLIPS,
    DEFAULT_CLIPS,
    clip_paths,
    load_deepmimic,
    load_deepmimic_clips,
)
from mcss.motion.procedural import PROCEDURAL_KINDS, procedural_motion  # noqa: E402
from mcss.motion.variation import (  # noqa: E402
    blend,
    mirror_motion,
    place,
    retime,
    rotation_noise,
    set_bone_lengths,
    vary,
)

__all__ = [
    "ACROBATIC_CLIPS",
    "CMU_NAME_MAP",
    "DEFAULT_CLIPS",
    "PROCEDURAL_KINDS",
    "Motion",
    "blend",
    "clip_paths",
    "load_bvh",
    "load_deepmimic",
    "load_deepmimic_clips",
    "mirror_motion",
    "place",
    "procedural_motion",
    "retime",
    "rotation_noise",
    "set_bone_lengths",
    "vary",
]
