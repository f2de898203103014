"""Metrics against independent implementations and hand-made cases (docs/metrics.md)."""

from __future__ import annotations

import numpy as np
import pytest

from mcss.metrics import (
    auc,
    left_right_agreement,
    left_right_error_share,
    left_right_parts,
    mpjpe,
    n_mpjpe,
    pa_mpjpe,
    pck,
)
from mcss.skeleton import JOINT_INDEX, mirror


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


def _symmetric_pose(rng: np.random.Generator) -> np.ndarray:
    """A root-centred canonical pose equal to its own mirror image."""
    p = rng.normal(0, 200, (17, 3))
    p = (p + mirror(p, axis=0)) / 2
    return p - p[:1]


def test_left_right_parts_by_hand() -> None:
    rng = np.random.default_rng(2)
    sym = _symmetric_pose(rng)
    lw, rw = JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]
    d = np.array([30.0, -60.0, 90.0])
    pose = sym.copy()
    pose[lw] += d  # the left wrist alone moves: half of it is asymmetric
    s, a = left_right_parts(pose)
    expected = np.zeros((17, 3))
    expected[lw], expected[rw] = d / 2, np.array([d[0], -d[1], -d[2]]) / 2
    assert np.allclose(a, expected, atol=1e-9)
    assert np.allclose(s + a, pose, atol=1e-9)
    assert np.allclose(left_right_parts(sym)[1], 0, atol=1e-9)
    poses = rng.normal(0, 200, (6, 17, 3))
    poses -= poses[:, :1]
    s, a = left_right_parts(poses)  # orthogonal parts: squared norms add up
    assert np.allclose((s**2).sum((1, 2)) + (a**2).sum((1, 2)), (poses**2).sum((1, 2)))


def test_left_right_agreement_and_error_share() -> None:
    rng = np.random.default_rng(3)
    gt = rng.normal(0, 200, (5, 17, 3))
    gt -= gt[:, :1]
    mirrored = mirror(gt, axis=0)
    averaged = (gt + mirrored) / 2
    assert np.allclose(left_right_agreement(gt, gt), 1)
    assert np.allclose(left_right_agreement(2.0 * gt, gt), 1)
    assert np.allclose(left_right_agreement(mirrored, gt), -1)
    assert np.allclose(left_right_agreement(averaged, gt), 0)
    # the mirror image is wrong only in its asymmetry; a symmetric offset only outside it
    assert left_right_error_share(mirrored, gt) == pytest.approx(1.0)
    assert left_right_error_share(averaged, gt) == pytest.approx(1.0)
    offset = np.stack([_symmetric_pose(rng) for _ in range(5)]) / 10
    assert left_right_error_share(gt + offset, gt) == pytest.approx(0.0, abs=1e-12)
    both = averaged + offset  # each error in its own part: the squared norms add up
    anti = ((gt - averaged) ** 2).sum()
    assert left_right_error_share(both, gt) == pytest.approx(anti / (anti + (offset**2).sum()))
    assert np.isnan(left_right_error_share(gt, gt))
