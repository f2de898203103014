"""The benchmark tables of README.md and docs/benchmarks.md are generated from the committed
results (benchmarks/tables.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import tables  # noqa: E402


def test_readme_tables_match_the_committed_results() -> None:
    """Rerunning ``python benchmarks/tables.py`` would not change README.md: every number in
    its tables comes from ``benchmarks/results/*.json`` as committed."""
    readme = (ROOT / "README.md").read_text()
    assert f"{tables.START}\n{tables.generated_block()}\n{tables.END}" in readme


def test_docs_benchmarks_hold_every_committed_table() -> None:
    """docs/benchmarks.md holds the table of every result the script knows, README's among
    them, and is what rerunning the script writes."""
    names = tables.ALL_TABLES
    assert set(tables.README_TABLES) <= set(names)
    assert set(tables.CAPTIONS) <= set(names), "a caption for a result no page shows"
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert f"{tables.START}\n{tables.generated_block(names)}\n{tables.END}" in page


def test_every_caption_names_a_committed_result() -> None:
    missing = [name for name in tables.CAPTIONS if not (tables.RESULTS / f"{name}.json").exists()]
    assert not missing, f"captions without a result file: {missing}"


def test_references_are_given_per_label_when_runs_differ_in_them() -> None:
    def run(mean_pose: float, oracle: float) -> dict:
        return {"references": {"mean_pose_mpjpe": mean_pose, "oracle_mpjpe": oracle}}
    same = {"extra32/baseline-s0": run(134.7, 72.7), "extra32/mcss-s0": run(134.7, 72.7)}
    assert tables._references(same) == ("Mean-pose predictor 134.7 mm, nearest-labelled-pose "
                                        "oracle 72.7 mm")
    mixed = same | {"all-labelled/baseline-s0": run(134.0, 37.7), "x/b-s1": run(134.7, 72.7)}
    assert tables._references(mixed) == ("Mean-pose predictor / nearest-labelled-pose oracle: "
                                         "134.7 / 72.7 mm (extra32, x runs), "
                                         "134.0 / 37.7 mm (all-labelled runs)")
