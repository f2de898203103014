"""benchmarks/bone_lengths.py: the split of the canonical error into build and pose."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from mcss.motion.variation import bone_directions, build_from_directions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bone_lengths import HEADERS, build_summary, cells, run_bone_lengths  # noqa: E402
from subject_groups import group_table  # noqa: E402


def _poses(rng: np.random.Generator, lengths: np.ndarray, n: int = 12) -> np.ndarray:
    directions = rng.normal(size=(n, 16, 3))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    return build_from_directions(np.zeros((n, 3)), directions, lengths)


def test_a_longer_build_costs_only_its_lengths() -> None:
    rng = np.random.default_rng(2)
    lengths = rng.uniform(100, 400, 16)
    gt = _poses(rng, lengths)
    taller = build_from_directions(np.zeros((12, 3)), bone_directions(gt), 1.1 * lengths)
    out = build_summary(taller, gt, labelled_lengths=lengths)
    assert out["with_true_lengths"] == pytest.approx(0.0, abs=1e-9)
    assert out["with_true_directions"] == pytest.approx(out["canonical_mpjpe"])
    assert out["canonical_mpjpe"] > 10.0
    assert out["labelled_build"] == pytest.approx(0.0, abs=1e-9)
    assert out["length_error"] == pytest.approx(0.1 * lengths.mean())
    assert out["frames"] == 12


def test_wrong_directions_with_the_right_build_cost_only_the_directions() -> None:
    rng = np.random.default_rng(3)
    lengths = rng.uniform(100, 400, 16)
    gt, other = _poses(rng, lengths), _poses(rng, lengths)
    out = build_summary(other, gt, labelled_lengths=0.9 * lengths)
    assert out["with_true_directions"] == pytest.approx(0.0, abs=1e-9)
    assert out["with_true_lengths"] == pytest.approx(out["canonical_mpjpe"])
    assert out["length_error"] == pytest.approx(0.0, abs=1e-9)
    assert out["labelled_build"] > 0.0


def test_run_bone_lengths_reads_a_run(tiny_dataset: Path, tiny_checkpoint: Path,
                                      tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_checkpoint.parents[1], run)
    out = run_bone_lengths(run, tiny_dataset, max_frames=5)
    assert out["test"]["frames"] == 5
    assert np.isfinite([out["validation"][k] for k in ("canonical_mpjpe", "labelled_build")]).all()
    table = group_table({str(run): out}, "test", HEADERS, cells).splitlines()
    assert table[2].startswith("| run |") and table[3] == "|---" + "|---:" * 7 + "|"
    assert table[4].startswith(f"| {run} | {out['steps']} | S1 | ")
    assert table[4].count("|") == 9  # the run and 7 cells

