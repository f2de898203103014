"""benchmarks/labelled_neighbours.py: the embedding lookup of labelled poses, on hand-made
embeddings whose answers are known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from labelled_neighbours import lookup_errors, nearest_labelled  # noqa: E402


def test_nearest_labelled_ranks_by_cosine_not_length() -> None:
    labelled = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    queries = np.array([[10.0, 0.5], [0.1, 3.0]])  # long vectors: only the direction counts
    assert nearest_labelled(labelled, queries, 2).tolist() == [[0, 2], [1, 2]]


def test_lookup_errors_against_hand_computed_values() -> None:
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(6, 17, 3)) * 100
    poses -= poses[:, :1]  # root-relative, as the dataset's labels
    emb = np.eye(6)
    # Queries: the labelled poses with every joint but the root 10 mm further along x,
    # embedded like labelled crop 5 - i.
    shifted = poses.copy()
    shifted[:, 1:, 0] += 10.0
    got = lookup_errors(poses, emb, shifted, emb[::-1], regressed=shifted)
    assert got["regression"] == 0.0
    # the nearest labelled pose is the unshifted one (labels deduplicated at 0.1 mm)
    assert got["oracle"] == pytest.approx(10.0 * 16 / 17, abs=0.05)
    expected = np.linalg.norm(poses[::-1] - shifted, axis=-1).mean()
    assert got["lookup_1nn"] == pytest.approx(expected)
    assert got["mean_pose"] == pytest.approx(
        np.linalg.norm(poses.mean(axis=0) - shifted, axis=-1).mean())
    assert got["frames"] == 6
