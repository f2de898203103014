"""Config resolution: presets, YAML, --set overrides and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcss.config import (
    ConfigError,
    TrainConfig,
    label_budget,
    load_config,
    resolve_config,
    save_config,
)


def test_preset_then_file_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("lam: 0.5\nsteps: 7\n")
    cfg = resolve_config("tiny", tmp_path / "c.yaml", ["steps=9", "max_gap=none", "flip=false"])
    assert (cfg.lam, cfg.steps, cfg.max_gap, cfg.flip) == (0.5, 9, None, False)
    assert cfg.batch_labelled == 8  # from the preset
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["nope=1"], "key among"),
        (["steps"], "key=value"),
        (["steps=abc"], "cannot read 'abc' as int"),
        (["steps=0"], "steps must be >= 1"),
        (["n_views=1"], "n_views must be >= 2"),
        (["strategy=random"], "strategy must be one of"),
        (["labelled=150%"], "percentage"),
        (["max_gap=2", "min_gap=4"], "max_gap"),
        (["flip=maybe"], "cannot read"),
        (["facing_gate=true", "pose_frame=camera"], "facing_gate"),
    ],
)
def test_bad_overrides_name_the_problem(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config(None, None, overrides)


def test_unknown_yaml_key_and_preset(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("lamda: 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        resolve_config(None, tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_config("huge")


def test_label_budget_parsing() -> None:
    assert label_budget("S1") == (["S1"], None)
    assert label_budget("S1, S5") == (["S1", "S5"], None)
    assert label_budget("5%") == ([], 0.05)
    assert TrainConfig().labelled == "S1"
