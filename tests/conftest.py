"""Shared fixtures: the tiny synthetic dataset (rendered once per test session) and the
real-data fixtures beside the repository (skipped with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_helpers import cached_checkpoint
from mcss.synth.generate import preset, synthesize

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(preset("tiny"), tmp_path_factory.mktemp("synth") / "tiny")


def fixture_path(relative: str) -> Path:
    """A file of the real-data fixtures; skips the test, saying why, when it is absent."""
    path = FIXTURES / relative
    if not path.exists():
        pytest.skip(f"../shared/fixtures not found: {path} is missing (real-data fixtures)")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    """A tiny checkpoint's step folder (its run folder is two levels up), built once."""
    return cached_checkpoint(tmp_path_factory, tiny_dataset)
