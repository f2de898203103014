"""The README's benchmark tables are generated from the committed results (benchmarks/tables.py)."""

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


def test_every_caption_names_a_committed_result() -> None:
    missing = [name for name in tables.CAPTIONS if not (tables.RESULTS / f"{name}.json").exists()]
    assert not missing, f"captions without a result file: {missing}"
