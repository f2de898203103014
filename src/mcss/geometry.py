"""Cameras, projection, square crops, Procrustes alignment and the canonical body frame.

Conventions (see DESIGN.md section 5):

- World frames are z-up, millimetres. Camera frames follow OpenCV: the camera looks along
  +z, x points to the right of the image, y points down the image.
- A camera maps world to camera coordinates as ``X_cam = R @ X_world + t`` (``t`` in mm).
- Pixel coordinates are continuous with pixel ``i`` covering ``[i, i + 1)``.
- Every function works on arrays with arbitrary leading (batch) dimensions, in float64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mcss.skeleton import JOINT_INDEX

__all__ = [
    "Camera",
    "camera_from_h36m",
    "look_at",
    "camera_looking_at",
    "square_box",
    "image_to_crop",
    "crop_to_image",
    "procrustes_align",
    "rotation_about_z",
    "canonical_body_frame",
    "to_canonical",
]


def _vector(value: ArrayLike, size: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != size:
        raise ValueError(f"camera {what} must have {size} values, got shape {arr.shape}")
    return arr.reshape(size)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@dataclass(eq=False)
class Camera:
    """A pinhole camera with Human3.6M's radial/tangential distortion.

    ``X_cam = R @ X_world + t``; ``R`` is world->camera, ``t`` in mm. ``k`` holds the three
    radial and ``p`` the two tangential coefficients in Human3.6M's own order (as stored in its
    calibration files). ``width`` / ``height`` are the image size in px (0 if unknown).
    ``viewpoint`` names the physical camera when one position has several calibrations
    (Human3.6M calibrates each camera per subject); empty: the camera is its own viewpoint.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    R: np.ndarray
    t: np.ndarray
    k: np.ndarray = field(default_factory=lambda: np.zeros(3))
    p: np.ndarray = field(default_factory=lambda: np.zeros(2))
    width: int = 0
    height: int = 0
    name: str = "camera"
    viewpoint: str = ""

    def __post_init__(self) -> None:
        self.fx, self.fy, self.cx, self.cy = (
            float(v) for v in (self.fx, self.fy, self.cx, self.cy)
        )
        self.R = _vector(self.R, 9, "R").reshape(3, 3)
        self.t = _vector(self.t, 3, "t")
        self.k = _vector(self.k, 3, "k (radial distortion)")
        self.p = _vector(self.p, 2, "p (tangential distortion)")
        self.width, self.height, self.name = int(self.width), int(self.height), str(self.name)
        if not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-5) or np.linalg.det(self.R) < 0:
            raise ValueError(f"camera {self.name!r}: R is not a rotation matrix:\n{self.R}")

    @property
    def K(self) -> np.ndarray:
        """The 3x3 intrinsic matrix (no skew)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates (mm): ``-R.T @ t``."""
        return -self.R.T @ self.t

    def world_to_camera(self, X: ArrayLike) -> np.ndarray:
        """World points ``(..., 3)`` (mm) to camera coordinates ``(..., 3)``."""
        return np.asarray(X, dtype=np.float64) @ self.R.T + self.t

    def camera_to_world(self, X: ArrayLike) -> np.ndarray:
        """Camera points ``(..., 3)`` to world coordinates ``(..., 3)`` (mm)."""
        return (np.asarray(X, dtype=np.float64) - self.t) @ self.R

    def project(self, X_cam: ArrayLike, distort: bool = True) -> np.ndarray:
        """Project camera-frame points ``(..., 3)`` to pixels ``(..., 2)``.

        With ``distort`` this is Human3.6M's model, as in its MATLAB code and in VideoPose3D's
        ``project_to_2d`` (which stores ``p`` swapped): with ``xy = X[:2] / Z`` and
        ``r2 = |xy|^2``, ``xy' = xy * (1 + k1 r2 + k2 r2^2 + k3 r2^3 + p1 y + p2 x)
        + (p2, p1) * r2`` and ``uv = f * xy' + c``. Unlike VideoPose3D, ``xy`` is not clamped
        to [-1, 1]; points far outside the field of view get the raw polynomial.
        """
        X = np.asarray(X_cam, dtype=np.float64)
        xy = X[..., :2] / X[..., 2:3]
        if distort:
            r2 = np.sum(xy**2, axis=-1, keepdims=True)
            k1, k2, k3 = self.k
            p1, p2 = self.p
            radial = 1.0 + k1 * r2 + k2 * r2**2 + k3 * r2**3
            tangential = p1 * xy[..., 1:2] + p2 * xy[..., 0:1]
            xy = xy * (radial + tangential) + np.array([p2, p1]) * r2
        return xy * np.array([self.fx, self.fy]) + np.array([self.cx, self.cy])

    def pixel_rays(self, uv: ArrayLike) -> np.ndarray:
        """Unit ray directions ``(..., 3)`` in the camera frame through pixels ``(..., 2)``.

        Distortion is ignored (the inverse of :meth:`project` with ``distort=False``).
        """
        uv = np.asarray(uv, dtype=np.float64)
        x = (uv[..., 0] - self.cx) / self.fx
        y = (uv[..., 1] - self.cy) / self.fy
        return _unit(np.stack([x, y, np.ones_like(x)], axis=-1))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (plain floats and lists) that :meth:`from_dict` reads back."""
        return {
            "name": self.name,
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "R": self.R.tolist(),
            "t": self.t.tolist(),
            "k": self.k.tolist(),
            "p": self.p.tolist(),
            "width": self.width,
            "height": self.height,
            "viewpoint": self.viewpoint,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Camera:
        """Inverse of :meth:`to_dict`."""
        keys = ("fx", "fy", "cx", "cy", "R", "t", "k", "p", "width", "height", "name",
                "viewpoint")
        missing = [key for key in keys[:6] if key not in d]
        if missing:
            raise ValueError(f"camera dict lacks {missing}; expected keys {list(keys)}")
        return cls(**{key: d[key] for key in keys if key in d})


def camera_from_h36m(calib: Mapping[str, Any], name: str | None = None) -> Camera:
    """Build a :class:`Camera` from one entry of Human3.6M's ``cameras.pkl`` (mmpose layout).

    The entry has ``R`` (3x3), ``T`` (3x1, camera centre in world, **metres**), ``f``, ``c``
    (2x1, px), ``k`` (3x1), ``p`` (2x1), ``w``, ``h``, ``name``, ``id``.

    ``R`` is stored **camera-to-world** (mmpose's ``SimpleCamera`` convention): a camera point
    is ``R.T @ (X_world - T)``, so here ``R_w2c = R.T`` and ``t = -R_w2c @ T * 1000`` mm.
    (Read as world-to-camera, the real fixtures put two of the four cameras facing away from
    the capture volume and S7/S8 upside down; read as camera-to-world, every camera faces
    the room centre and every fixture pose stands upright with its feet on z = 0.)
    The camera is named ``name`` if given, else by the entry's ``id`` (the id in frame
    names), else by its ``name``.
    """
    R_c2w = _vector(calib["R"], 9, "R").reshape(3, 3)
    T = _vector(calib["T"], 3, "T")
    if np.linalg.norm(T) > 100.0:
        raise ValueError(
            f"H36M camera T = {T} is over 100 m from the origin: it looks like millimetres, "
            "but cameras.pkl stores metres; pass T / 1000 or build Camera(...) directly"
        )
    R = R_c2w.T
    f = _vector(calib["f"], 2, "f")
    c = _vector(calib["c"], 2, "c")
    if name is None:
        name = str(calib.get("id", calib.get("name", "camera")))
    return Camera(
        fx=f[0],
        fy=f[1],
        cx=c[0],
        cy=c[1],
        R=R,
        t=-R @ T * 1000.0,
        k=calib.get("k", np.zeros(3)),
        p=calib.get("p", np.zeros(2)),
        width=int(calib.get("w", 0)),
        height=int(calib.get("h", 0)),
        name=name,
    )


def look_at(
    eye: ArrayLike, target: ArrayLike, up: Sequence[float] | np.ndarray = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """World->camera rotation (OpenCV axes) of a camera at ``eye`` looking at ``target``.

    Rows are the camera axes in world coordinates: x = right (forward x up), y = down,
    z = forward. Raises if the view direction is parallel to ``up``.
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(forward) < 1e-12 or np.linalg.norm(right) < 1e-9 * np.linalg.norm(forward):
        raise ValueError(f"look_at: view direction {forward} is zero or parallel to up {up}")
    z = _unit(forward)
    x = _unit(right)
    return np.stack([x, np.cross(z, x), z])


def camera_looking_at(
    eye_mm: ArrayLike,
    target_mm: ArrayLike,
    focal_px: float,
    width: int,
    height: int,
    name: str = "camera",
) -> Camera:
    """An undistorted camera at ``eye_mm`` aimed at ``target_mm`` (world z-up), principal point
    at the image centre ``(width / 2, height / 2)``."""
    R = look_at(eye_mm, target_mm)
    t = -R @ np.asarray(eye_mm, dtype=np.float64)
    return Camera(
        fx=focal_px,
        fy=focal_px,
        cx=width / 2.0,
        cy=height / 2.0,
        R=R,
        t=t,
        width=width,
        height=height,
        name=name,
    )


def square_box(joints2d: ArrayLike, margin: float = 1.2) -> np.ndarray:
    """Square box ``(..., 3) = (x0, y0, size)`` around 2D joints ``(..., J, 2)`` (px).

    Centred on the joints' bounding box, side ``margin`` times its longer side (at least
    1 px, so crop mappings stay finite). Extra columns (e.g. visibility) are ignored.
    """
    uv = np.asarray(joints2d, dtype=np.float64)[..., :2]
    lo, hi = uv.min(axis=-2), uv.max(axis=-2)
    centre = (lo + hi) / 2.0
    size = np.maximum(margin * np.max(hi - lo, axis=-1), 1.0)
    return np.concatenate([centre - size[..., None] / 2.0, size[..., None]], axis=-1)


def _box_for(uv: np.ndarray, box: ArrayLike) -> np.ndarray:
    """Align ``box``'s batch dims with the leading dims of ``uv`` (so ``(B, 3)`` boxes
    apply to ``(B, J, 2)`` points)."""
    box = np.asarray(box, dtype=np.float64)
    extra = uv.ndim - box.ndim
    if extra < 0:
        raise ValueError(f"box of shape {box.shape} has more dims than points {uv.shape}")
    return box.reshape(box.shape[:-1] + (1,) * extra + (3,))


def image_to_crop(uv: ArrayLike, box: ArrayLike, crop_size: int) -> np.ndarray:
    """Full-image px ``(..., 2)`` to px of the square ``box`` resized to ``crop_size``.

    ``box`` is ``(..., 3) = (x0, y0, size)`` with batch dims matching ``uv``'s leading dims.
    """
    uv = np.asarray(uv, dtype=np.float64)
    b = _box_for(uv, box)
    return (uv - b[..., :2]) * (crop_size / b[..., 2:3])


def crop_to_image(uv: ArrayLike, box: ArrayLike, crop_size: int) -> np.ndarray:
    """Inverse of :func:`image_to_crop`."""
    uv = np.asarray(uv, dtype=np.float64)
    b = _box_for(uv, box)
    return uv * (b[..., 2:3] / crop_size) + b[..., :2]


def procrustes_align(pred: ArrayLike, target: ArrayLike, scale: bool = True) -> np.ndarray:
    """Align ``pred`` ``(..., J, 3)`` onto ``target`` by the best similarity transform.

    Minimises ``sum_j |s R pred_j + T - target_j|^2`` over a proper rotation ``R`` (no
    reflection: the SVD's last axis is flipped when needed), translation ``T`` and, if
    ``scale``, a scale ``s`` (else ``s = 1``, a rigid alignment). Returns the aligned
    prediction in float64; this is the alignment behind PA-MPJPE.
    """
    P = np.asarray(pred, dtype=np.float64)
    Q = np.asarray(target, dtype=np.float64)
    mu_p, mu_q = P.mean(axis=-2, keepdims=True), Q.mean(axis=-2, keepdims=True)
    P0, Q0 = P - mu_p, Q - mu_q
    U, S, Vt = np.linalg.svd(np.swapaxes(P0, -1, -2) @ Q0)  # H = P0^T Q0 = U S Vt
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    d = np.where(d == 0, 1.0, d)
    signs = np.stack([np.ones_like(d), np.ones_like(d), d], axis=-1)
    rot_t = (U * signs[..., None, :]) @ Vt  # R^T, so that aligned rows are p @ R^T
    if scale:
        norm_p = np.sum(P0**2, axis=(-2, -1))
        s = np.sum(S * signs, axis=-1) / np.where(norm_p > 0, norm_p, 1.0)
    else:
        s = np.ones(P0.shape[:-2])
    return s[..., None, None] * (P0 @ rot_t) + mu_q


def rotation_about_z(angle_rad: ArrayLike) -> np.ndarray:
    """Right-handed rotation by ``angle_rad`` about the world z (up) axis: ``(..., 3, 3)``."""
    a = np.asarray(angle_rad, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    zero, one = np.zeros_like(a), np.ones_like(a)
    rows = [
        np.stack([c, -s, zero], -1),
        np.stack([s, c, zero], -1),
        np.stack([zero, zero, one], -1),
    ]
    return np.stack(rows, axis=-2)


def canonical_body_frame(joints: ArrayLike) -> np.ndarray:
    """The canonical body frame of H36M-17 poses ``(..., 17, 3)``: ``(..., 3, 3)``.

    Rows are the frame's axes in the input's coordinates (so the matrix maps input
    directions to canonical ones; a rotation, right-handed):

    - origin: the pelvis;
    - row 1, ``x``: left hip -> right hip, made orthogonal to ``up`` (the body's right);
    - row 2, ``y = up``: unit(thorax - pelvis);
    - row 3, ``z = x cross up``: points out of the body's back (the body faces ``-z``).

    A camera-frame pose is ``F.T @ canonical`` (``F.T`` is the body-to-camera rotation).
    Degenerate poses (thorax at the pelvis, hips along the spine) give NaN.
    """
    J = np.asarray(joints, dtype=np.float64)
    pelvis = J[..., JOINT_INDEX["pelvis"], :]
    up = _unit(J[..., JOINT_INDEX["thorax"], :] - pelvis)
    hips = J[..., JOINT_INDEX["right_hip"], :] - J[..., JOINT_INDEX["left_hip"], :]
    x = _unit(hips - np.sum(hips * up, axis=-1, keepdims=True) * up)
    z = np.cross(x, up)
    return np.stack([x, up, z], axis=-2)


def to_canonical(joints: ArrayLike) -> np.ndarray:
    """Root-relative joints ``(..., 17, 3)`` expressed in :func:`canonical_body_frame`.

    Invariant to any rotation and translation of the input pose.
    """
    J = np.asarray(joints, dtype=np.float64)
    frame = canonical_body_frame(J)
    return (J - J[..., :1, :]) @ np.swapaxes(frame, -1, -2)
