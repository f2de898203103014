"""Training augmentation of crop batches: scale/shift jitter, horizontal flip (which swaps
left and right joints), colour jitter and channel permutation.

Parameters are drawn from a NumPy generator (so a step's augmentation is a pure function of
its seed); the image work is one batched ``grid_sample``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from mcss.skeleton import swap_left_right


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True
    colour: bool = True
    scale_jitter: float = 0.1
    shift_jitter: float = 0.05


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def flip_pose(joints_camera: np.ndarray) -> np.ndarray:
    """The camera-frame pose of a horizontally flipped image: x negated, left/right swapped."""
    flipped = np.array(joints_camera, dtype=np.float64, copy=True)
    flipped[..., 0] *= -1.0
    return swap_left_right(flipped)


def augment(
    images: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[torch.Tensor, np.ndarray]:
    """Augment uint8 crops ``(N, H, W, 3)``; returns float images ``(N, 3, H, W)`` and which
    were flipped ``(N,)`` (apply :func:`flip_pose` to their labels)."""
    n = len(images)
    x = to_tensor(images)
    flipped = rng.random(n) < 0.5 if cfg.flip else np.zeros(n, dtype=bool)
    scale = 1.0 + rng.uniform(-cfg.scale_jitter, cfg.scale_jitter, n)
    shift = rng.uniform(-cfg.shift_jitter, cfg.shift_jitter, (n, 2)) * 2.0
    if cfg.flip or cfg.scale_jitter or cfg.shift_jitter:
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0] = np.where(flipped, -1.0, 1.0) / scale
        theta[:, 1, 1] = 1.0 / scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(torch.from_numpy(theta).float(), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if cfg.colour:
        x = _colour(x, rng)
    return x.clamp(0.0, 1.0), flipped


def _colour(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation jitter, and a random channel order per image."""
    n = len(x)

    def factors(lo: float, hi: float) -> torch.Tensor:
        return torch.from_numpy(rng.uniform(lo, hi, n)).float().view(n, 1, 1, 1)

    x = x * factors(0.7, 1.3)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factors(0.7, 1.3) + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * factors(0.6, 1.4) + grey
    order = torch.from_numpy(np.stack([rng.permutation(3) for _ in range(n)]))
    return torch.gather(x, 1, order.view(n, 3, 1, 1).expand_as(x))
