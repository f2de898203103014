"""Training augmentation of crop batches: scale/shift jitter, horizontal flip (which swaps
left and right joints), in-plane rotation (which turns the camera-frame label about the
optical axis), colour jitter, (optionally) channel permutation, hue rotation and random
erasing.

Parameters are drawn from a NumPy generator (so a step's augmentation is a pure function of
its seed); the image work is one batched ``grid_sample``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    channel_shuffle: bool = True  # with colour: a random channel order per crop
    erase: float = 0.0  # probability per crop of one rectangle filled with a random colour
    hue: bool = False  # every crop's colours rotated about the grey axis by a random angle
    rotate: float = 0.0  # largest in-plane rotation of a crop about its centre, degrees
    colour_strength: float = 1.0  # the jitter factors' spread about 1, times COLOUR_SPREAD


# colour jitter at strength 1: brightness, contrast, saturation factors uniform in 1 +- these
COLOUR_SPREAD = (0.3, 0.3, 0.4)

# random erasing: the rectangle's share of the crop and its aspect ratio (Zhong et al. 2020)
ERASE_AREA = (0.02, 0.25)
ERASE_ASPECT = (0.3, 3.3)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def flip_pose(joints_camera: np.ndarray) -> np.ndarray:
    """The camera-frame pose of a horizontally flipped image: x negated, left/right swapped."""
    flipped = np.array(joints_camera, dtype=np.float64, copy=True)
    flipped[..., 0] *= -1.0
    return swap_left_right(flipped)


def rotate_pose(joints_camera: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """The camera-frame poses ``(N, J, 3)`` of crops rotated in-plane by ``angles`` ``(N,)``
    (radians, counter-clockwise on screen, as :func:`apply_augment` rotates them): the joints
    turn about the optical axis, so their projections turn about the crop centre. (Exact for
    a crop centred on the optical axis; an off-axis crop turns about its own ray, so its label
    is off by a rotation that grows with the angle and with the ray's angle to the axis.) The
    canonical pose, built from the joints alone, is unchanged."""
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    x, y = joints_camera[..., 0], joints_camera[..., 1]
    # y points down the image: counter-clockwise on screen is clockwise in (x, y)
    return np.stack([c * x + s * y, -s * x + c * y, joints_camera[..., 2]], axis=-1)


@dataclass(frozen=True)
class AugmentParams:
    """The random draws of one batch, per image; slicing keeps the draws of a sub-batch, so
    a rank augments its share exactly as the whole batch would be augmented."""

    flipped: np.ndarray  # (N,) bool
    scale: np.ndarray  # (N,)
    shift: np.ndarray  # (N, 2), in normalised [-1, 1] image coordinates
    colour: np.ndarray | None  # (N, 3) brightness, contrast, saturation factors
    channels: np.ndarray | None  # (N, 3) channel order
    # (N, 8): erased (0 or 1), top, left, height, width (fractions of the crop), fill RGB
    erase: np.ndarray | None = None
    hue: np.ndarray | None = None  # (N,) rotation about the grey axis, radians
    rotation: np.ndarray | None = None  # (N,) in-plane rotation, radians, counter-clockwise

    def __getitem__(self, part: slice) -> AugmentParams:
        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[part]

        return AugmentParams(self.flipped[part], self.scale[part], self.shift[part],
                             cut(self.colour), cut(self.channels), cut(self.erase),
                             cut(self.hue), cut(self.rotation))


def draw_augment(n: int, rng: np.random.Generator, cfg: AugmentConfig) -> AugmentParams:
    """Draw the augmentation of ``n`` images (a pure function of the generator's state)."""
    flipped = rng.random(n) < 0.5 if cfg.flip else np.zeros(n, dtype=bool)
    scale = 1.0 + rng.uniform(-cfg.scale_jitter, cfg.scale_jitter, n)
    shift = rng.uniform(-cfg.shift_jitter, cfg.shift_jitter, (n, 2)) * 2.0
    colour = channels = None
    if cfg.colour:
        spread = [cfg.colour_strength * s for s in COLOUR_SPREAD]
        colour = np.stack([rng.uniform(1.0 - s, 1.0 + s, n) for s in spread], axis=1)
        channels = (np.stack([rng.permutation(3) for _ in range(n)]).reshape(n, 3)
                    if cfg.channel_shuffle else np.tile(np.arange(3), (n, 1)))
    # drawn last: turning them on leaves a seed's other draws as they were
    erase = _draw_erase(n, rng, cfg.erase) if cfg.erase > 0 else None
    hue = rng.uniform(0.0, 2.0 * np.pi, n) if cfg.hue else None
    rotation = np.deg2rad(rng.uniform(-cfg.rotate, cfg.rotate, n)) if cfg.rotate > 0 else None
    return AugmentParams(flipped, scale, shift, colour, channels, erase, hue, rotation)


def same_colour_per_group(params: AugmentParams, group: int) -> AugmentParams:
    """The draws with each run of ``group`` consecutive crops (the views of one instant)
    sharing the colour jitter, channel order and hue of the run's first crop; the geometry
    stays each crop's own. ``group = 1`` returns the draws as they are."""
    if group == 1:
        return params

    def first_of_group(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        if len(a) % group:
            raise ValueError(f"{len(a)} crops do not split into groups of {group}")
        return np.repeat(a[::group], group, axis=0)

    return replace(params, colour=first_of_group(params.colour),
                   channels=first_of_group(params.channels), hue=first_of_group(params.hue))


def _draw_erase(n: int, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Per crop: whether to erase, the rectangle (top, left, height, width) and its colour."""
    on = rng.random(n) < probability
    area = rng.uniform(*ERASE_AREA, n)
    aspect = np.exp(rng.uniform(*np.log(ERASE_ASPECT), n))
    height = np.minimum(np.sqrt(area * aspect), 1.0)
    width = np.minimum(np.sqrt(area / aspect), 1.0)
    top = rng.uniform(0.0, 1.0, n) * (1.0 - height)
    left = rng.uniform(0.0, 1.0, n) * (1.0 - width)
    fill = rng.uniform(0.0, 1.0, (n, 3))
    return np.column_stack([on, top, left, height, width, fill])


def apply_augment(images: np.ndarray, params: AugmentParams) -> torch.Tensor:
    """Augment uint8 crops ``(N, H, W, 3)`` with drawn ``params``: float ``(N, 3, H, W)``."""
    x = to_tensor(images)
    if (params.flipped.any() or np.any(params.scale != 1.0) or np.any(params.shift != 0.0)
            or params.rotation is not None):
        grid = F.affine_grid(torch.from_numpy(_sampling_matrix(params)).float(), list(x.shape),
                             align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if params.colour is not None:
        x = _colour(x, params.colour, params.channels)
    if params.hue is not None:
        x = _rotate_hue(x, params.hue)
    x = x.clamp(0.0, 1.0)
    return x if params.erase is None else _erase(x, params.erase)


def _sampling_matrix(params: AugmentParams) -> np.ndarray:
    """``(N, 2, 3)``: where each output pixel samples its input (normalised coordinates, y
    down). The content is flipped first, then rotated counter-clockwise on screen by the
    angle, scaled by ``scale`` and shifted by ``-shift``."""
    n = len(params.flipped)
    angle = np.zeros(n) if params.rotation is None else params.rotation
    c, s = np.cos(angle), np.sin(angle)
    flip = np.where(params.flipped, -1.0, 1.0)
    theta = np.zeros((n, 2, 3))
    # diag(flip, 1) @ R / scale, R the rotation turning the sample point clockwise on screen
    theta[:, 0, 0], theta[:, 0, 1] = flip * c, -flip * s
    theta[:, 1, 0], theta[:, 1, 1] = s, c
    theta[:, :, :2] /= params.scale[:, None, None]
    theta[:, :, 2] = params.shift
    return theta


def augment(
    images: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[torch.Tensor, np.ndarray]:
    """Augment uint8 crops ``(N, H, W, 3)``; returns float images ``(N, 3, H, W)`` and which
    were flipped ``(N,)`` (apply :func:`flip_pose` to their labels)."""
    params = draw_augment(len(images), rng, cfg)
    return apply_augment(images, params), params.flipped


def _colour(x: torch.Tensor, factors: np.ndarray, channels: np.ndarray) -> torch.Tensor:
    """Brightness, contrast and saturation jitter, and a channel order per image."""
    n = len(x)
    f = torch.from_numpy(factors).float().view(n, 3, 1, 1, 1)
    x = x * f[:, 0]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * f[:, 1] + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * f[:, 2] + grey
    order = torch.from_numpy(channels)
    return torch.gather(x, 1, order.view(n, 3, 1, 1).expand_as(x))


def _erase(x: torch.Tensor, erase: np.ndarray) -> torch.Tensor:
    """Fill each erased crop's rectangle (pixel centres inside it) with its colour."""
    n, _, h, w = x.shape
    e = torch.from_numpy(erase).float()
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    top, left, height, width = (e[:, i].view(n, 1) for i in range(1, 5))
    rows = (ys >= top) & (ys < top + height)  # (N, H)
    cols = (xs >= left) & (xs < left + width)  # (N, W)
    inside = rows[:, :, None] & cols[:, None, :] & (e[:, 0] > 0).view(n, 1, 1)
    return torch.where(inside[:, None], e[:, 5:8].view(n, 3, 1, 1), x)


def _rotate_hue(x: torch.Tensor, angles: np.ndarray) -> torch.Tensor:
    """Rotate each crop's RGB vectors about the grey axis (1, 1, 1) by its angle (Rodrigues):
    grey stays grey, brightness is kept, and 120 degrees turns red into green."""
    u = np.full(3, 1.0 / np.sqrt(3.0))
    cross = np.array([[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]])
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    rotation = cos * np.eye(3) + sin * cross + (1.0 - cos) * np.outer(u, u)
    return torch.einsum("nij,njhw->nihw", torch.from_numpy(rotation).float(), x)
