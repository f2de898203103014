"""benchmarks/embedding_probe.py: the pose read-outs on hand-made inputs whose answers are
known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from embedding_probe import crossed, readout_error  # noqa: E402


def _linear_poses(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    weights = np.random.default_rng(99).normal(size=(8, 17 * 3)) * 50.0
    return x, (x @ weights).reshape(n, 17, 3)


def test_a_linear_pose_is_read_by_the_ridge_and_the_mlp() -> None:
    x_fit, y_fit = _linear_poses(400, 0)
    x, y = _linear_poses(200, 1)
    mean_pose = np.linalg.norm(y - y_fit.mean(axis=0), axis=-1).mean()  # about 230 mm
    assert readout_error("linear", x_fit, y_fit, x, y, 32) < 0.02 * mean_pose
    assert readout_error("mlp", x_fit, y_fit, x, y, 32) < 0.05 * mean_pose


def test_nearest_returns_the_label_of_the_nearest_input() -> None:
    x_fit, y_fit = _linear_poses(50, 0)
    assert readout_error("nearest", x_fit, y_fit, x_fit[::-1] + 1e-3, y_fit[::-1], 8) == 0.0
    # every query nearest to fitted crop 0: the error is the distance to its label
    far = np.full((3, 8), x_fit[0]) * 10.0
    expected = np.linalg.norm(y_fit[:3] - y_fit[0], axis=-1).mean()
    assert readout_error("nearest", x_fit[:1], y_fit[:1], far, y_fit[:3], 8) == pytest.approx(
        expected)


def test_crossed_fits_on_one_group_and_scores_the_other() -> None:
    x, y = _linear_poses(6, 0)
    # two groups holding the same crops: the nearest read-out is exact both ways
    twice_x, twice_y = np.concatenate([x, x]), np.concatenate([y, y])
    groups = np.repeat([5, 9], 6)
    assert crossed("nearest", twice_x, twice_y, groups, 8) == 0.0
    # one crop per group: each is read as the other's label, weighted by frames
    pair = crossed("nearest", x[:2], y[:2], np.array([0, 1]), 8)
    assert pair == pytest.approx(np.linalg.norm(y[0] - y[1], axis=-1).mean())
