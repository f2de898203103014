"""benchmarks/left_right.py: the mirror split of the error, on hand-made predictions."""

from __future__ import annotations

import shutil
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


def test_run_left_right_reads_a_run_and_its_validation_curve(
        tiny_dataset: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    from left_right import run_left_right

    run = tmp_path / "run"
    shutil.copytree(tiny_checkpoint.parents[1], run)
    (run / "metrics.csv").write_text(
        "step,kind,name,value\n10,train,loss,0.5\n100,val,canonical_mpjpe,120.5\n"
        "100,val,left_right_agreement,0.25\n100,val,pa_mpjpe,110.0\n")
    out = run_left_right(run, tiny_dataset, max_frames=5)
    assert out["curve"] == [{"step": 100, "canonical_mpjpe": 120.5,
                             "left_right_agreement": 0.25}]
    assert (out["flip"], out["facing_gate"], out["marked_left"]) == (True, False, False)
    assert out["test"]["frames"] == 5 and 0 <= out["test"]["error_share"] <= 1
