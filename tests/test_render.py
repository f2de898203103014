"""The ray caster against analytic cases, and rendered crops against their labels."""

from __future__ import annotations

import numpy as np
import pytest

from mcss.geometry import camera_looking_at
from mcss.motion.deepmimic import clip_paths, load_deepmimic
from mcss.skeleton import JOINT_INDEX
from mcss.synth import body, render, rig
from mcss.synth.generate import render_view

SIZE = 64


def _render_spheres(centres: np.ndarray, radii: np.ndarray, box_side: float = 200.0):
    """Spheres (metres, camera frame) seen through a crop centred on the principal point."""
    f, c = 1000.0, 500.0
    no_caps = np.zeros((1, 0, 3))
    prims = render.Primitives(
        cap_a=no_caps, cap_b=no_caps, cap_r=np.zeros((1, 0)), cap_rgb=no_caps,
        sph_c=centres[None], sph_r=radii[None], sph_rgb=np.eye(3)[np.arange(len(radii)) % 3][None],
    )
    box = np.array([[c - box_side / 2, c - box_side / 2, box_side]])
    return render.render(
        prims, box, np.array([[f, f, c, c]]), centres[:1], np.zeros((1, SIZE, SIZE, 3), np.uint8),
        light_dir=np.array([[0.0, 0.0, -1.0]]), ambient=1.0,
    ), f * SIZE / box_side


def test_sphere_covers_its_analytic_disc() -> None:
    res, focal_crop = _render_spheres(np.array([[0.0, 0.0, 5.0]]), np.array([0.3]))
    # A sphere of radius r at distance z projects to a disc of radius f r / sqrt(z^2 - r^2).
    radius_px = focal_crop * 0.3 / np.sqrt(5.0**2 - 0.3**2)
    covered = (res.prim[0] == 0).sum()
    assert covered == pytest.approx(np.pi * radius_px**2, rel=0.03)
    assert res.depth[0, SIZE // 2, SIZE // 2] == pytest.approx(4.7, abs=2e-3)
    assert np.isinf(res.depth[0, 0, 0]) and res.prim[0, 0, 0] == -1


def test_nearer_primitive_occludes_farther() -> None:
    res, _ = _render_spheres(np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 4.0]]), np.array([0.3, 0.1]))
    centre = res.prim[0, SIZE // 2, SIZE // 2]
    assert centre == 1  # the small near sphere hides the big far one at the centre
    assert res.rgb[0, SIZE // 2, SIZE // 2].tolist() == [0, 255, 0]
    assert res.prim[0, SIZE // 2, 3 * SIZE // 4] == 0  # the big one still shows around it


def test_capsule_matches_brute_force_sampling() -> None:
    """Hit depth of a tilted capsule equals the nearest of densely sampled spheres on it."""
    a, b, r = np.array([-0.2, -0.3, 4.0]), np.array([0.3, 0.2, 4.6]), 0.12
    prims = render.Primitives(
        cap_a=a[None, None], cap_b=b[None, None], cap_r=np.array([[r]]),
        cap_rgb=np.ones((1, 1, 3)), sph_c=np.zeros((1, 0, 3)), sph_r=np.zeros((1, 0)),
        sph_rgb=np.zeros((1, 0, 3)),
    )
    box = np.array([[350.0, 350.0, 300.0]])
    res = render.render(prims, box, np.array([[1000.0, 1000.0, 500.0, 500.0]]), a[None],
                        np.zeros((1, SIZE, SIZE, 3), np.uint8), np.array([[0.0, 0.0, -1.0]]))
    centres = a + np.linspace(0, 1, 2001)[:, None] * (b - a)
    sphere_hits, _ = _render_spheres(centres, np.full(len(centres), r), box_side=300.0)
    hit = np.isfinite(res.depth[0])
    assert (hit == np.isfinite(sphere_hits.depth[0])).mean() > 0.995
    both = hit & np.isfinite(sphere_hits.depth[0])
    assert np.abs(res.depth[0][both] - sphere_hits.depth[0][both]).max() < 2e-3


def test_culling_changes_nothing() -> None:
    """Tile culling is exact: one tile covering the crop gives the same image."""
    joints = load_deepmimic(clip_paths()["dance_a"]).joints[::10]
    camera = camera_looking_at([4000.0, 3000.0, 1500.0], [0, 0, 900.0], 1145.0, 1000, 1000)
    actor = body.ACTORS[1]
    points = camera.world_to_camera(body.body_points(joints)) / 1000.0
    prims = render.Primitives(**body.primitive_arrays(points, actor))
    boxes = np.tile([300.0, 150.0, 600.0], (len(joints), 1))
    k = np.tile([camera.fx, camera.fy, camera.cx, camera.cy], (len(joints), 1))
    bg = np.zeros((len(joints), SIZE, SIZE, 3), np.uint8)
    light = np.tile([0.0, 0.0, -1.0], (len(joints), 1))
    tiled = render.render(prims, boxes, k, points[:, 0], bg, light, tile=8)
    whole = render.render(prims, boxes, k, points[:, 0], bg, light, tile=SIZE)
    assert np.array_equal(tiled.prim, whole.prim)
    assert np.array_equal(tiled.rgb, whole.rgb)


@pytest.fixture(scope="module")
def labelled_views():
    """Every default clip, one actor per clip, seen by the 4 default cameras, with the
    left limbs painted green and the right limbs red."""
    rng = np.random.default_rng(0)
    cameras = rig.make_rig(4, rng)
    backgrounds = [rig.render_background(camera, rng) for camera in cameras]
    palette = {f"capsule:{i}": (0.0, 1.0, 0.0) for i in body.LEFT_PARTS}
    palette |= {f"capsule:{i}": (1.0, 0.0, 0.0) for i in body.RIGHT_PARTS}
    views = []
    for k, path in enumerate(clip_paths().values()):
        joints = load_deepmimic(path).joints[::6]
        actor = body.ACTORS[k % len(body.ACTORS)]
        for camera, bg in zip(cameras, backgrounds, strict=True):
            view = render_view(joints, actor, camera, bg, np.array([0.3, 0.2, 0.9]), SIZE,
                               palette)
            views.append((view, rig.sample_crops(bg, view.boxes, SIZE)))
    return views


def test_visible_joints_are_on_the_body(labelled_views) -> None:
    on_body, total = 0, 0
    for view, background in labelled_views:
        uv = np.floor(view.joints_2d_crop).astype(int).clip(0, SIZE - 1)
        visible = view.joints_2d[..., 2] > 0
        frames = np.arange(len(uv))[:, None]
        differs = (view.images[frames, uv[..., 1], uv[..., 0]] != background[
            frames, uv[..., 1], uv[..., 0]]).any(-1)
        on_body += (differs & visible).sum()
        total += visible.sum()
    assert total > 1000
    assert on_body / total >= 0.95


def test_left_limb_joints_land_on_left_limbs(labelled_views) -> None:
    limbs = ["elbow", "wrist", "knee", "foot"]
    votes = {"left": [0, 0], "right": [0, 0]}
    for view, _ in labelled_views:
        for side in votes:
            idx = [JOINT_INDEX[f"{side}_{name}"] for name in limbs]
            uv = np.floor(view.joints_2d_crop[:, idx]).astype(int).clip(0, SIZE - 1)
            rgb = view.images[np.arange(len(uv))[:, None], uv[..., 1], uv[..., 0]].astype(int)
            seen = view.joints_2d[:, idx, 2] > 0
            green = rgb[..., 1] > rgb[..., 0] + 30
            red = rgb[..., 0] > rgb[..., 1] + 30
            on_own = green if side == "left" else red
            votes[side][0] += (on_own & seen).sum()
            votes[side][1] += ((green | red) & seen).sum()
    for side, (own, coloured) in votes.items():
        assert coloured > 300
        assert own / coloured > 0.95, f"{side} joints on their own limbs: {own}/{coloured}"
