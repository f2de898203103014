"""The merge of long-schedule results from separate invocations (benchmarks/merge_long.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from merge_long import merge  # noqa: E402


def _result(command: str, cpu: str = "xeon", seed: int = 0, hit: float = 0.3) -> dict:
    return {"runs": {f"mcss-s{seed}": {"test": {"canonical_mpjpe": 1.0}}},
            "retrieval": {"mcss": {"hit@1/75mm": hit}, "random": {"hit@1/75mm": 0.02}},
            "device": "cpu", "cpu": cpu, "cpu_count": 2, "torch": "2", "steps": 6000,
            "command": command}


def test_runs_are_named_after_their_part_and_commands_kept_in_order() -> None:
    merged = merge([("quick", _result("a")), ("extra8", _result("b"))])
    assert list(merged["runs"]) == ["quick/mcss-s0", "extra8/mcss-s0"]
    assert list(merged["retrieval"]) == ["quick/mcss", "extra8/mcss", "random"]
    assert merged["command"] == "a; b" and merged["cpu"] == "xeon"


def test_results_of_another_machine_are_refused() -> None:
    with pytest.raises(ValueError, match="extra8: cpu differ"):
        merge([("quick", _result("a")), ("extra8", _result("b", cpu="epyc"))])


def test_an_earlier_merge_keeps_its_names_and_grows() -> None:
    earlier = merge([("quick", _result("a"))])
    grown = merge([(None, earlier), ("extra16", _result("c"))])
    assert list(grown["runs"]) == ["quick/mcss-s0", "extra16/mcss-s0"]
    assert list(grown["retrieval"]) == ["quick/mcss", "extra16/mcss", "random"]
    assert grown["command"] == "a; c"


def test_a_run_name_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="given twice: quick/mcss-s0"):
        merge([("quick", _result("a")), ("quick", _result("b"))])


def test_a_later_seed_of_a_variant_keeps_the_first_seeds_retrieval() -> None:
    merged = merge([("x16", _result("a")), ("x16", _result("b", seed=1, hit=0.5))])
    assert list(merged["runs"]) == ["x16/mcss-s0", "x16/mcss-s1"]
    assert merged["retrieval"]["x16/mcss"]["hit@1/75mm"] == 0.3
