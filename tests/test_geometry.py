"""Cameras (checked against real Human3.6M / MPI-INF-3DHP data), crops, Procrustes, body frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import fixture_path as _fixture
from mcss.geometry import (
    Camera,
    camera_from_h36m,
    camera_looking_at,
    canonical_body_frame,
    crop_to_image,
    image_to_crop,
    look_at,
    procrustes_align,
    rotation_about_z,
    square_box,
    to_canonical,
)
from mcss.safe_pickle import restricted_load
from mcss.skeleton import JOINT_INDEX


def _random_rotation(rng: np.random.Generator, size: tuple[int, ...] = ()) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(*size, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]
    return q * np.sign(np.linalg.det(q))[..., None, None]


def _standing_pose(rng: np.random.Generator | None = None) -> np.ndarray:
    """An H36M-17 pose (mm, world z-up) facing +y, its right side towards +x."""
    pose = np.array(
        [
            [0, 0, 1000],  # pelvis
            [130, 0, 1000],  # right hip
            [130, 20, 550],
            [130, 0, 100],
            [-130, 0, 1000],  # left hip
            [-130, 20, 550],
            [-130, 0, 100],
            [0, 0, 1230],  # spine
            [0, 10, 1480],  # thorax
            [0, 30, 1560],  # neck base
            [0, 60, 1680],  # head
            [-180, 0, 1460],  # left shoulder
            [-430, 0, 1460],
            [-660, 0, 1460],
            [180, 0, 1460],  # right shoulder
            [430, 0, 1460],
            [660, 0, 1460],
        ],
        dtype=np.float64,
    )
    if rng is not None:
        pose = pose + rng.normal(scale=30.0, size=pose.shape)
    return pose


# --------------------------------------------------------------------------- real data


def _h36m_frames() -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(subject, camera id, S in mm camera frame (17, 3), part (17, 2)) per fixture frame."""
    data = np.load(_fixture("h36m/test_h36m_body3d.npz"))
    frames = []
    for name, S, part in zip(data["imgname"], data["S"], data["part"], strict=True):
        stem = Path(str(name)).stem  # S1_Directions_1.54138969_000001
        subject, camera_id = stem.split("_")[0], stem.split(".")[1].split("_")[0]
        frames.append((subject, camera_id, S[:, :3] * 1000.0, part[:, :2]))
    return frames


@pytest.fixture(scope="module")
def h36m_cameras() -> dict[tuple[str, str], dict]:
    return restricted_load(_fixture("h36m/cameras.pkl"))


def test_h36m_projection_matches_2d_labels(h36m_cameras: dict) -> None:
    errors, errors_plain = [], []
    for subject, camera_id, X, part in _h36m_frames():
        cam = camera_from_h36m(h36m_cameras[(subject, camera_id)])
        assert cam.name == camera_id
        errors.append(np.linalg.norm(cam.project(X) - part, axis=-1).mean())
        errors_plain.append(np.linalg.norm(cam.project(X, distort=False) - part, axis=-1).mean())
    assert np.mean(errors) < 1.0
    assert np.mean(errors) < np.mean(errors_plain)
    # The labels were made with exactly this distortion model (tangential order included).
    assert max(errors) < 0.01


def test_h36m_camera_fields(h36m_cameras: dict) -> None:
    cam = camera_from_h36m(h36m_cameras[("S1", "54138969")])
    assert (cam.width, cam.height) == (1000, 1002)
    np.testing.assert_allclose(cam.center, h36m_cameras[("S1", "54138969")]["T"][:, 0] * 1000)
    np.testing.assert_allclose(cam.K[:2, 2], [cam.cx, cam.cy])
    with pytest.raises(ValueError, match="millimetres"):
        camera_from_h36m({**h36m_cameras[("S1", "54138969")], "T": np.array([1841.0, 4955, 1563])})


def test_h36m_extrinsics_put_people_upright_in_the_room(h36m_cameras: dict) -> None:
    """World z is up with the floor at 0: feet near it, head above the pelvis."""
    for subject, camera_id, X, _ in _h36m_frames():
        cam = camera_from_h36m(h36m_cameras[(subject, camera_id)])
        world = cam.camera_to_world(X)
        np.testing.assert_allclose(cam.world_to_camera(world), X, atol=1e-9)
        feet_z = world[[JOINT_INDEX["right_foot"], JOINT_INDEX["left_foot"]], 2]
        assert feet_z.min() > -100 and feet_z.min() < 250, (subject, feet_z)
        assert world[JOINT_INDEX["head"], 2] > world[0, 2] + 300
        assert np.linalg.norm(world[0, :2]) < 3000  # inside the capture area


def test_h36m_cameras_face_the_capture_volume(h36m_cameras: dict) -> None:
    for key, calib in h36m_cameras.items():
        cam = camera_from_h36m(calib)
        to_room = -cam.center / np.linalg.norm(cam.center)
        assert cam.R[2] @ to_room > 0.8, key  # optical axis points at the room centre
        assert cam.R[1, 2] < -0.5, key  # image down is world down: cameras stand upright


def test_mpi_inf_3dhp_intrinsics_match_2d_labels() -> None:
    for split in ("train", "test"):
        cams = restricted_load(_fixture(f"mpi_inf_3dhp/cameras_{split}.pkl"))
        data = np.load(_fixture(f"mpi_inf_3dhp/test_3dhp_{split}.npz"))
        for name, S, part in zip(data["imgname"], data["S"], data["part"], strict=True):
            calib = cams[Path(str(name)).stem.rsplit("_", 1)[0]]
            (fx, fy), (cx, cy) = calib["f"][:, 0], calib["c"][:, 0]
            cam = Camera(fx, fy, cx, cy, R=np.eye(3), t=np.zeros(3))
            uv = cam.project(S[:, :3] * 1000.0)
            assert np.linalg.norm(uv - part[:, :2], axis=-1).mean() < 1.0


# --------------------------------------------------------------------------- cameras


def test_world_camera_round_trip_and_center() -> None:
    rng = np.random.default_rng(0)
    cam = Camera(1000, 1010, 500, 490, R=_random_rotation(rng), t=rng.normal(size=3) * 1000)
    X = rng.normal(size=(4, 17, 3)) * 1000
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(X)), X, atol=1e-9)
    np.testing.assert_allclose(cam.world_to_camera(cam.center), 0, atol=1e-9)


def test_pinhole_projection_pixel_rays_and_K() -> None:
    rng = np.random.default_rng(1)
    cam = Camera(1100, 1090, 512, 500, R=np.eye(3), t=np.zeros(3), k=[0.1, 0, 0], p=[0.01, 0])
    X = rng.normal(size=(5, 3)) * 300 + [0, 0, 4000]
    uv = cam.project(X, distort=False)
    homog = X @ cam.K.T
    np.testing.assert_allclose(uv, homog[:, :2] / homog[:, 2:], atol=1e-9)
    np.testing.assert_allclose(cam.pixel_rays(uv), X / np.linalg.norm(X, axis=-1, keepdims=True))
    assert not np.allclose(cam.project(X), uv)  # distortion does something
    np.testing.assert_allclose(cam.project([0, 0, 1000.0]), [512, 500])  # centre undistorted


def test_camera_dict_round_trip() -> None:
    rng = np.random.default_rng(2)
    args = (1145.0, 1143.8, 512.5, 515.4, _random_rotation(rng), [1, 2, 3], [0.1, 0.2, 0.3])
    cam = Camera(*args, [0.01, 0.02], 1000, 1002, "54138969")
    back = Camera.from_dict(json.loads(json.dumps(cam.to_dict())))
    assert back.to_dict() == cam.to_dict()
    X = rng.normal(size=(3, 3)) * 100 + [0, 0, 3000]
    np.testing.assert_array_equal(back.project(X), cam.project(X))
    with pytest.raises(ValueError, match="rotation"):
        Camera(1, 1, 0, 0, R=np.diag([1.0, 1, -1]), t=np.zeros(3))


def test_look_at_conventions() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        eye = np.append(rng.uniform(-6000, 6000, 2), rng.uniform(500, 2500))
        target = np.append(rng.uniform(-500, 500, 2), 1000.0)
        cam = camera_looking_at(eye, target, focal_px=1000, width=640, height=480, name="c")
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(cam.R) == pytest.approx(1.0)
        np.testing.assert_allclose(cam.center, eye, atol=1e-9)
        np.testing.assert_allclose(cam.project(cam.world_to_camera(target)), [320, 240])
        forward = (target - eye) / np.linalg.norm(target - eye)
        right = np.cross(forward, [0, 0, 1])
        u_right, _ = cam.project(cam.world_to_camera(target + 300 * right))
        _, v_up = cam.project(cam.world_to_camera(target + [0, 0, 300]))
        assert u_right > cam.cx
        assert v_up < cam.cy
    # Looking along +y with z up: world +x is image right, world +z is image up.
    np.testing.assert_allclose(
        look_at([0, -5000, 1000], [0, 0, 1000]), [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12
    )
    with pytest.raises(ValueError, match="parallel"):
        look_at([0, 0, 5000], [0, 0, 0])


# --------------------------------------------------------------------------- crops


def test_square_box_contains_joints() -> None:
    rng = np.random.default_rng(4)
    joints = rng.uniform(0, 1000, size=(3, 4, 17, 2)) * [1.0, 0.4]
    box = square_box(joints, margin=1.2)
    assert box.shape == (3, 4, 3)
    x0, y0, size = (box[..., i, None] for i in range(3))
    assert np.all(joints[..., 0] >= x0) and np.all(joints[..., 0] <= x0 + size)
    assert np.all(joints[..., 1] >= y0) and np.all(joints[..., 1] <= y0 + size)
    extent = joints.max(axis=-2) - joints.min(axis=-2)
    np.testing.assert_allclose(box[..., 2], 1.2 * extent.max(axis=-1))
    centre = (joints.max(axis=-2) + joints.min(axis=-2)) / 2
    np.testing.assert_allclose(box[..., :2] + box[..., 2:] / 2, centre)
    np.testing.assert_array_equal(
        square_box(np.concatenate([joints[0, 0], np.ones((17, 1))], -1)), box[0, 0]
    )


def test_crop_mapping() -> None:
    rng = np.random.default_rng(5)
    uv = rng.uniform(0, 1000, size=(6, 17, 2))
    box = square_box(uv)
    crop = image_to_crop(uv, box, 256)
    assert crop.min() >= 0 and crop.max() <= 256
    np.testing.assert_allclose(crop_to_image(crop, box, 256), uv, atol=1e-9)
    # Box corners map to the crop's corners; pixel i covers [i, i + 1).
    np.testing.assert_allclose(image_to_crop([10.0, 20.0], [10, 20, 100], 50), [0, 0])
    np.testing.assert_allclose(image_to_crop([[110.0, 120.0]], [10, 20, 100], 50), [[50, 50]])
    np.testing.assert_allclose(image_to_crop([12.0, 21.0], [10, 20, 100], 50), [1, 0.5])


# --------------------------------------------------------------------------- Procrustes


def _umeyama_reference(pred: np.ndarray, target: np.ndarray, scale: bool) -> np.ndarray:
    """Per-item similarity alignment written from Umeyama (1991), eqs. 38-42."""
    mu_x, mu_y = pred.mean(0), target.mean(0)
    x, y = pred - mu_x, target - mu_y
    sigma = y.T @ x / len(pred)
    U, D, Vt = np.linalg.svd(sigma)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1
    R = U @ S @ Vt
    c = np.trace(np.diag(D) @ S) / (x**2).sum(1).mean() if scale else 1.0
    return c * x @ R.T + mu_y


def _mpjpe(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=-1).mean())


def test_procrustes_exact_cases() -> None:
    rng = np.random.default_rng(6)
    pose = _standing_pose(rng)
    R = _random_rotation(rng)
    assert _mpjpe(procrustes_align(pose, pose), pose) < 1e-9
    assert _mpjpe(procrustes_align(pose, pose @ R.T), pose @ R.T) < 1e-9
    assert _mpjpe(procrustes_align(pose, pose @ R.T, scale=False), pose @ R.T) < 1e-9
    target = 0.7 * pose + [100.0, -50.0, 20.0]
    assert _mpjpe(procrustes_align(pose, target), target) < 1e-9
    assert _mpjpe(procrustes_align(pose, target, scale=False), target) > 1.0


def test_procrustes_reflected_target_matches_reference() -> None:
    rng = np.random.default_rng(7)
    pose = _standing_pose(rng)
    mirrored = pose * [-1.0, 1.0, 1.0] @ _random_rotation(rng).T + rng.normal(scale=5, size=(17, 3))
    for scale in (True, False):
        aligned = procrustes_align(pose, mirrored, scale=scale)
        reference = _umeyama_reference(pose, mirrored, scale)
        assert abs(_mpjpe(aligned, mirrored) - _mpjpe(reference, mirrored)) < 1e-9
        np.testing.assert_allclose(aligned, reference, atol=1e-9)
        # A proper rotation cannot undo a mirror: the residual stays large.
        assert _mpjpe(aligned, mirrored) > 20.0
        # The aligned pose is a rotated (not mirrored) copy of the prediction.
        a0, p0 = aligned - aligned.mean(0), pose - pose.mean(0)
        assert np.linalg.det(np.linalg.lstsq(p0, a0, rcond=None)[0]) > 0


def test_procrustes_batched_equals_per_item() -> None:
    rng = np.random.default_rng(8)
    pred = rng.normal(size=(2, 3, 17, 3)).astype(np.float32) * 200
    target = rng.normal(size=(2, 3, 17, 3)) * 200
    for scale in (True, False):
        batched = procrustes_align(pred, target, scale=scale)
        assert batched.dtype == np.float64
        for i in np.ndindex(2, 3):
            np.testing.assert_allclose(
                batched[i],
                _umeyama_reference(pred[i].astype(np.float64), target[i], scale),
                atol=1e-9,
            )


# --------------------------------------------------------------------------- rotations, frames


def test_rotation_about_z() -> None:
    np.testing.assert_allclose(rotation_about_z(np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    batch = rotation_about_z(np.linspace(0, 3, 4))
    assert batch.shape == (4, 3, 3)
    np.testing.assert_allclose(
        batch @ np.swapaxes(batch, -1, -2), np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-12
    )


def test_canonical_frame_axes() -> None:
    frame = canonical_body_frame(_standing_pose())
    # Body faces +y with its right at +x: x = right, y = up, z = x cross up = backwards (-y).
    np.testing.assert_allclose(frame, [[1, 0, 0], [0, 0.02, 1], [0, -1, 0.02]], atol=0.005)
    canon = to_canonical(_standing_pose())
    np.testing.assert_allclose(canon[0], 0, atol=1e-12)
    assert canon[JOINT_INDEX["thorax"], 1] > 0
    np.testing.assert_allclose(canon[JOINT_INDEX["thorax"], [0, 2]], 0, atol=1e-9)
    assert canon[JOINT_INDEX["right_hip"], 0] > 0 > canon[JOINT_INDEX["left_hip"], 0]


def test_canonical_frame_is_orthonormal_right_handed_and_invariant() -> None:
    rng = np.random.default_rng(9)
    poses = np.stack([_standing_pose(rng) for _ in range(6)])
    poses = poses @ _random_rotation(rng, (6,)).swapaxes(-1, -2)
    frames = canonical_body_frame(poses)
    assert frames.shape == (6, 3, 3)
    np.testing.assert_allclose(
        frames @ frames.swapaxes(-1, -2), np.broadcast_to(np.eye(3), (6, 3, 3)), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(frames), 1.0)
    np.testing.assert_allclose(np.cross(frames[:, 0], frames[:, 1]), frames[:, 2], atol=1e-12)
    R = _random_rotation(rng, (6,))
    moved = poses @ R.swapaxes(-1, -2) + rng.normal(size=(6, 1, 3)) * 1000
    np.testing.assert_allclose(to_canonical(moved), to_canonical(poses), atol=1e-9)
    # Camera-frame pose = F.T @ canonical (F.T is the body-to-camera rotation).
    back = to_canonical(poses) @ frames + poses[:, :1]
    np.testing.assert_allclose(back, poses, atol=1e-9)
