"""benchmarks/subject_gap.py: subjects put in their training roles, and role means by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from subject_gap import role_means, subject_roles  # noqa: E402


def test_subject_roles_follow_the_split() -> None:
    subjects = np.array(["S1", "S1", "S5", "S5", "X1", "S8", "S9"])
    roles = subject_roles(subjects, labelled_rows=np.array([0, 1]),
                          unlabelled_rows=np.array([2, 3, 4]), val_subject="S8",
                          test_subjects=["S9"])
    assert roles == {"S1": "labelled", "S5": "unlabelled", "X1": "unlabelled",
                     "S8": "validation", "S9": "test"}
    # a label percentage: S5 has labelled and unlabelled takes; it counts as labelled
    mixed = subject_roles(subjects, np.array([0, 2]), np.array([3, 4]), None, ["S9"])
    assert mixed["S5"] == "labelled" and "S8" not in mixed


def test_role_means_weight_subjects_alike() -> None:
    per_subject = {"S1": {"canonical_mpjpe": 40.0, "frames": 1000},
                   "S5": {"canonical_mpjpe": 100.0, "frames": 10},
                   "X1": {"canonical_mpjpe": 130.0, "frames": 300},
                   "S9": {"canonical_mpjpe": 90.0, "frames": 300}}
    roles = {"S1": "labelled", "S5": "unlabelled", "X1": "unlabelled", "S9": "test",
             "S11": "test"}  # S11 not measured: left out of the mean, not counted as 0
    means = role_means(per_subject, roles)
    assert means["unlabelled"]["canonical_mpjpe"] == pytest.approx(115.0)
    assert means["unlabelled"]["subjects"] == 2
    assert means["test"] == {"canonical_mpjpe": 90.0, "frames": 300.0, "subjects": 1}
    assert "validation" not in means
