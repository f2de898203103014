"""Metrics against independent implementations and hand-made cases (docs/metrics.md)."""

from __future__ import annotations

import numpy as np
import pytest

from mcss.metrics import auc, mpjpe, n_mpjpe, pa_mpjpe, pck


def _brute_force_pa(pred: np.ndarray, gt: np.ndarray) -> float:
    """Umeyama's similarity alignment, one pose at a time, written from the paper."""
    mu_p, mu_g = pred.mean(0), gt.mean(0)
    p, g = pred - mu_p, gt - mu_g
    cov = g.T @ p / len(p)
    u, d, vt = np.linalg.svd(cov)
    s_mat = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s_mat[2, 2] = -1
    rot = u @ s_mat @ vt
    var_p = (p**2).sum() / len(p)
    scale = np.trace(np.diag(d) @ s_mat) / var_p
    aligned = scale * p @ rot.T + mu_g
    return float(np.linalg.norm(aligned - gt, axis=1).mean())


def test_pa_mpjpe_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    pred, gt = rng.normal(0, 300, (50, 17, 3)), rng.normal(0, 300, (50, 17, 3))
    pred[:10] = gt[:10] * np.array([-1.0, 1.0, 1.0]) + rng.normal(0, 5, (10, 17, 3))  # mirrored
    expected = np.array([_brute_force_pa(p, g) for p, g in zip(pred, gt, strict=True)])
    assert np.allclose(pa_mpjpe(pred, gt), expected, atol=1e-9)


def test_alignment_invariances() -> None:
    rng = np.random.default_rng(1)
    gt = rng.normal(0, 300, (8, 17, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = q * np.sign(np.linalg.det(q))
    assert np.allclose(pa_mpjpe(gt, gt), 0, atol=1e-9)
    assert np.allclose(pa_mpjpe(gt @ rot.T, gt), 0, atol=1e-9)
    assert np.allclose(pa_mpjpe(2.5 * gt + 40.0, gt), 0, atol=1e-9)
    pred = gt + rng.normal(0, 30, gt.shape)
    assert np.allclose(n_mpjpe(3.0 * pred, gt), n_mpjpe(pred, gt))
    assert (n_mpjpe(pred, gt) <= mpjpe(pred, gt) + 1e-9).all()
    assert (pa_mpjpe(pred, gt) <= n_mpjpe(pred, gt) + 1e-9).all()


def test_pck_and_auc_by_hand() -> None:
    gt = np.zeros((1, 17, 3))
    pred = gt.copy()
    pred[0, 1:, 0] = np.linspace(10, 170, 16)  # joint errors 10, 20.67, ..., 170 mm
    errors = np.r_[0.0, np.linspace(10, 170, 16)]
    assert pck(pred, gt, 150.0)[0] == pytest.approx((errors <= 150).mean())
    thresholds = np.linspace(0, 150, 31)
    by_hand = np.mean([(errors <= t).mean() for t in thresholds])
    assert auc(pred, gt)[0] == pytest.approx(by_hand)
    assert mpjpe(pred, gt)[0] == pytest.approx(errors.mean())
