"""benchmarks/cross_take_matches.py: mutual nearest pairs and their scores on hand-made
distances whose answers are known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from cross_take_matches import (  # noqa: E402
    match_quality,
    mutual_nearest,
    pair_distances,
    run_matches,
)


def _line(points: list[float]) -> np.ndarray:
    x = np.array(points, dtype=float)
    return np.abs(x[:, None] - x[None])


def test_mutual_nearest_keeps_only_pairs_that_choose_each_other() -> None:
    # 0 and 1 choose each other; 2 chooses 1 (not mutual); 3 and 4 choose each other
    dist = _line([0.0, 1.0, 2.5, 10.0, 10.5])
    everything = ~np.eye(5, dtype=bool)
    i, j = mutual_nearest(dist, everything)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (3, 4)]


def test_mutual_nearest_respects_what_is_allowed() -> None:
    dist = _line([0.0, 1.0, 2.5, 10.0])
    take = np.array([0, 0, 1, 1])  # 0 and 1 are one take: never paired
    i, j = mutual_nearest(dist, take[:, None] != take[None])
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(1, 2)]
    assert mutual_nearest(dist, np.zeros((4, 4), dtype=bool))[0].size == 0


def test_pair_distances_is_the_mpjpe_in_any_chunk_size() -> None:
    poses = np.random.default_rng(0).normal(size=(5, 17, 3)) * 100.0
    expected = np.linalg.norm(poses[1] - poses[3], axis=-1).mean()
    for chunk in (1, 2, 128):
        d = pair_distances(poses, chunk)
        assert d.shape == (5, 5)
        assert d[1, 3] == pytest.approx(expected) and d[3, 1] == pytest.approx(expected)
        np.testing.assert_allclose(np.diag(d), 0.0)


def test_a_key_equal_to_the_truth_finds_the_oracle_pairs() -> None:
    truth = _line([0.0, 30.0, 120.0, 190.0])
    allowed = ~np.eye(4, dtype=bool)
    m = match_quality(truth, truth, allowed, close=50.0)
    assert m["pairs_per_instant"] == 1.0  # (0, 1) and (2, 3)
    assert m["true_median"] == 50.0  # pairs at 30 and 70 mm
    assert m["close_share"] == 0.5
    assert m["oracle_median"] == pytest.approx(50.0)  # nearest: 30, 30, 70, 70
    assert m["random_median"] == pytest.approx(np.median(truth[allowed]))


def test_a_wrong_key_is_scored_by_the_truth() -> None:
    truth = _line([0.0, 30.0, 120.0, 190.0])
    key = _line([0.0, 100.0, 1.0, 101.0])  # pairs (0, 2) and (1, 3): 120 and 160 mm apart
    m = match_quality(key, truth, ~np.eye(4, dtype=bool), close=50.0)
    assert m["true_median"] == pytest.approx(140.0) and m["close_share"] == 0.0


def test_run_matches_pairs_only_other_takes_and_within_a_batch() -> None:
    # four instants in two batches; the truth pose of 0 equals that of 2 (another batch)
    truth = np.zeros((4, 17, 3))
    truth[1] += 40.0
    truth[3] += 80.0
    pooled = {"truth": truth, "pose": truth.copy(),
              "embedding": np.eye(4, 8) + 0.1, "take": np.array([0, 1, 2, 3]),
              "batch": np.array([0, 0, 1, 1]), "action": np.array(["a", "b", "b", "a"])}
    r = run_matches(pooled, close=60.0)
    d = 40.0 * np.sqrt(3)  # MPJPE of a 40 mm shift of every coordinate
    assert r["batch/pose"]["true_median"] == pytest.approx((d + 2 * d) / 2)
    assert r["pool/pose"]["true_median"] == pytest.approx(0.0)  # 0 and 2 across batches
    assert r["pool/pose"]["oracle_median"] == pytest.approx(d / 2)  # nearest: 0, d, 0, d
    assert r["instants"] == 4 and r["close_mm"] == 60.0
    # one action each: (0, 3) and (1, 2), 2d and d apart
    assert r["action/pose"]["true_median"] == pytest.approx(1.5 * d)
    assert r["action/pose"]["pairs_per_instant"] == 1.0


def test_the_strictest_quarter_keeps_the_pairs_closest_by_key() -> None:
    # four mutual pairs whose key distances are 1, 2, 3, 4 and true distances 10, 20, 30, 40
    key = np.full((8, 8), 100.0)
    truth = np.full((8, 8), 500.0)
    for n, (a, b) in enumerate([(0, 1), (2, 3), (4, 5), (6, 7)]):
        key[a, b] = key[b, a] = n + 1.0
        truth[a, b] = truth[b, a] = 10.0 * (n + 1)
    m = match_quality(key, truth, ~np.eye(8, dtype=bool), close=15.0)
    assert m["true_median"] == 25.0 and m["close_share"] == 0.25
    assert m["strict_true_median"] == 10.0 and m["strict_close_share"] == 1.0
    nothing = match_quality(key, truth, np.zeros((8, 8), dtype=bool), close=15.0)
    assert nothing["pairs_per_instant"] == 0.0
    assert np.isnan(nothing["true_median"]) and np.isnan(nothing["strict_true_median"])
