"""Camera rigs and their backgrounds for the synthetic dataset.

The default rig imitates Human3.6M: four cameras on a ring of 4.5-5.5 m radius, 1.2-1.8 m
high, near the corners of the capture area, with focal lengths around 1145 px on
1000 x 1000 images. ``n_cameras`` other than 4 gives a random ring with evenly spread azimuths.

Each camera sees its own room: a tiled floor and a textured wall, rendered once per camera at
full resolution; person crops then sample it, so the background moves consistently with the
crop box, as it does in real footage.
"""

from __future__ import annotations

import numpy as np

from mcss.geometry import Camera, camera_looking_at

IMAGE_SIZE = 1000
LOOK_AT_MM = np.array([0.0, 0.0, 1000.0])
_WALL_RADIUS_MM = 8000.0


def make_rig(n_cameras: int, rng: np.random.Generator) -> list[Camera]:
    """Cameras on a ring around the capture area, all looking at its centre."""
    if n_cameras < 2:
        raise ValueError(f"a multi-view rig needs at least 2 cameras, got {n_cameras}")
    if n_cameras == 4:  # Human3.6M's cameras sit near the corners of the room.
        azimuths = np.deg2rad([45.0, 135.0, 225.0, 315.0]) + rng.uniform(-0.25, 0.25, 4)
    else:
        azimuths = rng.uniform(0, 2 * np.pi) + np.arange(n_cameras) * 2 * np.pi / n_cameras
        azimuths = azimuths + rng.uniform(-0.2, 0.2, n_cameras) * np.pi / n_cameras
    cameras = []
    for i, az in enumerate(azimuths):
        radius = rng.uniform(4500.0, 5500.0)
        height = rng.uniform(1200.0, 1800.0)
        eye = np.array([radius * np.cos(az), radius * np.sin(az), height])
        target = LOOK_AT_MM + np.array([*rng.uniform(-150.0, 150.0, 2), 0.0])
        focal = rng.uniform(1140.0, 1150.0)
        cameras.append(camera_looking_at(eye, target, focal, IMAGE_SIZE, IMAGE_SIZE, f"cam{i}"))
    return cameras


def _value_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse random grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    ys = np.linspace(0, cells, shape[0])
    xs = np.linspace(0, cells, shape[1])
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A studio-like colour: mid grey with a slight tint (rooms rarely look like candy)."""
    return rng.uniform(0.3, 0.7) + rng.uniform(-0.08, 0.08, 3)


def render_background(camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """A full-resolution ``(H, W, 3)`` uint8 view of a room: tiled floor, textured wall."""
    h, w = camera.height, camera.width
    v, u = np.mgrid[0:h, 0:w] + 0.5
    rays_cam = camera.pixel_rays(np.stack([u, v], axis=-1))
    rays = rays_cam @ camera.R  # camera -> world directions (R is orthonormal)
    eye = camera.center
    floor_t = np.where(rays[..., 2] < -1e-6, -eye[2] / np.minimum(rays[..., 2], -1e-6), np.inf)
    # Wall: the vertical cylinder |xy| = radius, seen from inside.
    a = (rays[..., :2] ** 2).sum(-1)
    b = 2 * (rays[..., :2] * eye[:2]).sum(-1)
    c = (eye[:2] ** 2).sum() - _WALL_RADIUS_MM**2
    wall_t = (-b + np.sqrt(np.maximum(b * b - 4 * a * c, 0))) / (2 * a + 1e-12)
    on_floor = floor_t < wall_t
    hit = eye + rays * np.where(on_floor, floor_t, wall_t)[..., None]

    floor_a, floor_b, wall_a, wall_b = (_muted(rng) for _ in range(4))
    tile = rng.uniform(400.0, 900.0)
    checker = ((np.floor(hit[..., 0] / tile) + np.floor(hit[..., 1] / tile)) % 2)[..., None]
    floor_rgb = floor_a * checker + floor_b * (1 - checker)
    angle = np.arctan2(hit[..., 1], hit[..., 0])
    stripes = (0.5 + 0.5 * np.sin(angle * rng.integers(6, 20) + hit[..., 2] / 700.0))[..., None]
    wall_rgb = wall_a * stripes + wall_b * (1 - stripes)
    rgb = np.where(on_floor[..., None], floor_rgb, wall_rgb)
    rgb *= 0.85 + 0.3 * _value_noise(rng, (h, w), 12)[..., None]
    rgb += rng.normal(0.0, 0.02, rgb.shape)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def sample_crops(background: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Crops ``(B, size, size, 3)`` of a full image at square ``boxes`` ``(B, 3)`` (x0, y0,
    side), nearest-neighbour; outside the image the edge pixels repeat."""
    centres = (np.arange(size) + 0.5) / size
    u = boxes[:, None, 0] + centres[None, :] * boxes[:, None, 2]
    v = boxes[:, None, 1] + centres[None, :] * boxes[:, None, 2]
    cols = np.clip(u.astype(int), 0, background.shape[1] - 1)
    rows = np.clip(v.astype(int), 0, background.shape[0] - 1)
    return background[rows[:, :, None], cols[:, None, :]]
