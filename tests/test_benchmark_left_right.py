"""benchmarks/left_right.py: the mirror split of the error, on hand-made predictions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mcss.skeleton import mirror

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from left_right import left_right_summary  # noqa: E402


def test_left_right_summary_of_an_average_and_a_mirror_image() -> None:
    rng = np.random.default_rng(4)
    gt = rng.normal(0, 200, (20, 17, 3))
    gt -= gt[:, :1]
    averaged = left_right_summary((gt + mirror(gt, axis=0)) / 2, gt)
    assert averaged["symmetric_mpjpe"] == pytest.approx(0.0, abs=1e-9)
    assert averaged["canonical_mpjpe"] == pytest.approx(averaged["antisymmetric_mpjpe"])
    assert averaged["error_share"] == pytest.approx(1.0)
    assert averaged["agreement"] == pytest.approx(0.0, abs=1e-9)
    assert averaged["asymmetry_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert averaged["mirror_nearer"] == 0.0 and averaged["frames"] == 20  # equidistant
    mirrored = left_right_summary(mirror(gt, axis=0), gt)
    assert mirrored["agreement"] == pytest.approx(-1.0)
    assert mirrored["asymmetry_ratio"] == pytest.approx(1.0)
    assert mirrored["mirror_nearer"] == 1.0
    # the antisymmetric error of the mirror image is twice the truth's asymmetry
    assert mirrored["antisymmetric_mpjpe"] == pytest.approx(2 * averaged["antisymmetric_mpjpe"])
