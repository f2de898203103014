"""Shared fixtures: the tiny synthetic dataset (rendered once per test session) and the
real-data fixtures beside the repository (skipped with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcss.synth.generate import preset, synthesize

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(preset("tiny"), tmp_path_factory.mktemp("synth") / "tiny")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"real-data fixtures not found at {FIXTURES} (they live in ../shared/fixtures)")
    return FIXTURES
