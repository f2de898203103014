"""3D pose metrics, batched, in the units of the input (mcss uses mm).

Inputs are ``(..., 17, 3)`` arrays; every function returns one value per pose ``(...)``, so
callers choose how to average (over frames, or over actions first, as Human3.6M does).
All are root-relative: both poses are centred on their pelvis (joint 0) before comparing.
See ``docs/metrics.md`` for how each one aligns the prediction.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from mcss.geometry import procrustes_align
from mcss.skeleton import mirror


def _centred(pose: ArrayLike) -> np.ndarray:
    p = np.asarray(pose, dtype=np.float64)
    return p - p[..., :1, :]


def joint_errors(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Per-joint Euclidean error after root centring: ``(..., 17)``."""
    return np.linalg.norm(_centred(pred) - _centred(target), axis=-1)


def mpjpe(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Mean per-joint position error after root centring: ``(...)``."""
    return joint_errors(pred, target).mean(axis=-1)


def n_mpjpe(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """MPJPE after the optimal global scale of the centred prediction:
    ``s = <p, t> / <p, p>`` (least squares over all joints)."""
    p, t = _centred(pred), _centred(target)
    s = np.sum(p * t, axis=(-2, -1)) / np.maximum(np.sum(p * p, axis=(-2, -1)), 1e-12)
    return mpjpe(s[..., None, None] * p, t)


def pa_mpjpe(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """MPJPE after Procrustes similarity alignment (rotation without reflection, scale,
    translation) of the prediction onto the target."""
    t = np.asarray(target, dtype=np.float64)
    return np.linalg.norm(procrustes_align(pred, t) - t, axis=-1).mean(axis=-1)


def pck(pred: ArrayLike, target: ArrayLike, threshold: float = 150.0) -> np.ndarray:
    """Fraction of joints within ``threshold`` after root centring (3D-PCK): ``(...)``."""
    return (joint_errors(pred, target) <= threshold).mean(axis=-1)


def auc(pred: ArrayLike, target: ArrayLike, max_threshold: float = 150.0, steps: int = 31):
    """Mean 3D-PCK over ``steps`` thresholds evenly spaced in [0, max_threshold]: ``(...)``."""
    errors = joint_errors(pred, target)
    thresholds = np.linspace(0.0, max_threshold, steps)
    return (errors[..., None] <= thresholds).mean(axis=(-2, -1))


def left_right_parts(pose_canonical: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Split root-centred poses in the canonical body frame (``x``: the body's right; see
    :func:`mcss.geometry.to_canonical`) into the part a mirror image shares and the part it
    negates: ``pose = symmetric + antisymmetric``. The mirror goes through the body's sagittal
    plane with left and right swapped (:func:`mcss.skeleton.mirror`); it is an orthogonal
    involution, so the two parts are orthogonal and their squared norms add up."""
    p = _centred(pose_canonical)
    m = mirror(p, axis=0)
    return (p + m) / 2, (p - m) / 2


def left_right_agreement(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Cosine between the antisymmetric parts (:func:`left_right_parts`) of prediction and
    target, canonical frame, per pose: 1 when the prediction tells the body's left from its
    right as the truth does, -1 for the mirror image, 0 for a left-right average."""
    a_p = left_right_parts(pred)[1].reshape(*np.shape(pred)[:-2], -1)
    a_t = left_right_parts(target)[1].reshape(*np.shape(target)[:-2], -1)
    norms = np.linalg.norm(a_p, axis=-1) * np.linalg.norm(a_t, axis=-1)
    return np.sum(a_p * a_t, axis=-1) / np.maximum(norms, 1e-12)


def left_right_error_share(pred: ArrayLike, target: ArrayLike) -> float:
    """Fraction of the squared canonical-frame error (summed over every pose and joint) that
    lies in the antisymmetric part: how much of the error is telling left from right. NaN for
    a perfect prediction."""
    s_p, a_p = left_right_parts(pred)
    s_t, a_t = left_right_parts(target)
    anti = np.sum((a_p - a_t) ** 2)
    total = anti + np.sum((s_p - s_t) ** 2)
    return float(anti / total) if total > 0 else float("nan")
