"""The long-schedule benchmark's runner (benchmarks/long_schedule.py): a stopped run continues
from its checkpoint and a finished one is reused when the same command runs again."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from long_schedule import PINNED, VARIANTS, train_all  # noqa: E402
from mcss.config import resolve_config  # noqa: E402

TINY = ["batch_labelled=8", "n_sequences=2", "n_instants=2", "warmup_steps=2", "val_frames=64",
        "min_gap=2", "embedding_dim=32", "hidden_dim=64"]


def _steps_logged(run: Path) -> list[str]:
    return [line.split(",")[0] for line in (run / "metrics.csv").read_text().splitlines()[1:]
            if ",val,canonical_mpjpe," in line]


def test_a_stopped_run_continues_and_a_finished_one_is_reused(tmp_path: Path,
                                                              tiny_dataset: Path) -> None:
    run = tmp_path / "baseline-s0"
    train_all(tiny_dataset, tmp_path, [("baseline", 0)], 8, 1, 3600, [*TINY, "steps=4"])
    assert (run / "checkpoints" / "latest").exists() and (run / "final_metrics.json").exists()
    (run / "final_metrics.json").unlink()  # as a run stopped at step 4 of 8 leaves it

    seconds = train_all(tiny_dataset, tmp_path, [("baseline", 0)], 8, 1, 3600, TINY)
    assert seconds == {}  # continued, not one run's wall clock
    assert (run / "train.log").read_text().count("run written to") == 2  # one log, appended
    assert _steps_logged(run) == ["1", "2", "3", "4", "5", "6", "7", "8"]

    stamp = (run / "metrics.csv").stat().st_mtime_ns
    assert train_all(tiny_dataset, tmp_path, [("baseline", 0)], 8, 1, 3600, TINY) == {}
    assert (run / "metrics.csv").stat().st_mtime_ns == stamp  # reused: not trained again


def test_every_variant_resolves_to_a_valid_config() -> None:
    """A variant naming a renamed key or an invalid value would fail only hours into a run."""
    for name, sets in VARIANTS.items():
        cfg = resolve_config("full", overrides=[*PINNED, *sets])
        assert (cfg.lam == 0) == name.startswith(("baseline", "control", "teacher1")), name
