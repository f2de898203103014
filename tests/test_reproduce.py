"""`mcss reproduce` on the tiny preset: every stage runs, and a second call reuses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from mcss.config import TrainConfig, resolve_config
from mcss.report import image_title, markdown_to_html, write_html
from mcss.reproduce import PRESETS, ReproPreset, StageError, reproduce, results_markdown
from mcss.synth.generate import preset as synth_preset


def test_tiny_reproduction_writes_results_and_report(tmp_path: Path) -> None:
    out = tmp_path / "repro"
    stages: list[str] = []
    results = reproduce("tiny", out, say=stages.append)
    assert any("synthesise" in s for s in stages) and any("retrieval" in s for s in stages)
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["methods"]) == {"baseline", "mcss"} == set(results["methods"])
    refs = saved["methods"]["mcss"]["references"]
    assert refs["oracle_mpjpe"] < refs["mean_pose_mpjpe"]
    assert set(saved["retrieval"]) == {"baseline", "mcss", "random"}
    # Each method says how it was trained: the baseline is lam = 0, MCSS the default.
    assert saved["methods"]["baseline"]["lam"] == 0.0
    assert saved["methods"]["mcss"]["lam"] == TrainConfig().lam > 0
    assert saved["methods"]["mcss"]["channel_shuffle"] is TrainConfig().channel_shuffle
    assert saved["methods"]["mcss"]["strategy"] == TrainConfig().strategy
    page = (out / "report" / "index.html").read_text()
    assert "embedding cosine" in page and "pose spread" in page  # the collapse monitors
    run = json.loads((out / "runs" / "mcss-S1-s0" / "eval-test.json").read_text())
    per_subject = saved["methods"]["mcss"]["per_subject"]  # one seed: the run's own numbers
    assert set(per_subject) == {"S9", "S11"}
    final = json.loads((out / "runs" / "mcss-S1-s0" / "final_metrics.json").read_text())
    fit = saved["methods"]["mcss"]["labelled_fit"]
    assert fit["per_seed"] == [final["fit_canonical_mpjpe"]] and fit["mean"] > 0
    assert f"<td>{fit['mean']:.1f}</td>" in page
    assert per_subject["S9"]["canonical_mpjpe"] == run["per_subject"]["S9"]["canonical_mpjpe"]
    assert "per test subject" in page and f"{per_subject['S11']['canonical_mpjpe']:.1f}" in page
    shuffle = ", channel shuffle" if TrainConfig().channel_shuffle else ""
    assert f"mcss (lam {TrainConfig().lam:g}, {TrainConfig().strategy} triplets{shuffle})" in page
    for png in ("learning_curves.png", "mpjpe_bars.png", "grid_mcss.png"):
        assert png in page
        assert Image.open(out / "report" / png).width > 100
    # A second call reuses every finished stage: no training, no synthesis.
    csv = out / "runs" / "mcss-S1-s0" / "metrics.csv"
    before = csv.stat().st_mtime_ns
    stages.clear()
    again = reproduce("tiny", out, say=stages.append)
    assert csv.stat().st_mtime_ns == before
    assert not any("synthesise" in s or "retrieval" in s for s in stages)
    assert again["methods"] == results["methods"]


def test_label_curve_preset_trains_each_budget_and_plots_the_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The curve preset's path, on tiny data: one run per (method, label budget), keys
    ``method@budget``, and the label-efficiency plot in the report."""
    monkeypatch.setitem(PRESETS, "tiny-curve", ReproPreset(
        "tiny", "tiny", ("baseline", "mcss"), (0,), ("50%", "100%")))
    out = tmp_path / "curve"
    results = reproduce("tiny-curve", out, say=lambda _: None)
    assert set(results["methods"]) == {"baseline@50%", "mcss@50%", "baseline@100%",
                                       "mcss@100%"}
    assert (out / "runs" / "mcss-50pct-s0" / "final_metrics.json").exists()
    config = yaml.safe_load((out / "runs" / "baseline-100pct-s0" / "config.yaml").read_text())
    assert config["labelled"] == "100%" and config["lam"] == 0
    assert "label_curve.png" in (out / "report" / "index.html").read_text()
    assert Image.open(out / "report" / "label_curve.png").width > 100


def test_parallel_trainings_give_the_sequential_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--parallel 2 trains the runs as concurrent `mcss train` processes; on the CPU the same
    seeds and thread count give the same weights, so the same table."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the children's thread count
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sequential = reproduce("tiny", tmp_path / "seq", say=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    stages: list[str] = []
    parallel = reproduce("tiny", tmp_path / "par", say=stages.append, parallel=2)
    assert sum("in parallel" in s for s in stages) == 2
    assert (tmp_path / "par" / "runs" / "mcss-S1-s0" / "train.log").exists()
    assert parallel["methods"] == sequential["methods"]
    assert parallel["command"] == "mcss reproduce --preset tiny --parallel 2"


def test_report_tables_become_html_tables() -> None:
    text = "| method | MPJPE <mm> |\n|---|---:|\n| mcss | 1.5 |\n\nMean pose & oracle."
    assert markdown_to_html(text) == (
        "<table><tr><th>method</th><th>MPJPE &lt;mm&gt;</th></tr>"
        "<tr><td>mcss</td><td>1.5</td></tr></table>\n<p>Mean pose &amp; oracle.</p>")


def test_report_images_get_readable_headings(tmp_path: Path) -> None:
    grid = tmp_path / "grid_mcss.png"
    Image.new("RGB", (4, 4)).save(grid)
    page = write_html(tmp_path / "report", "t", [], [grid]).read_text()
    assert "<h3>Cross-view retrieval: mcss</h3><p>Each row: a query crop" in page
    assert (tmp_path / "report" / "grid_mcss.png").is_file()
    assert image_title("learning_curves")[0] == "Learning curves"
    assert image_title("seed_spread") == ("Seed spread", "")


def test_a_failed_parallel_stage_is_one_error_naming_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PRESETS, "tiny-bad", ReproPreset(
        "tiny", "tiny", ("baseline", "mcss"), (0,), overrides=("margin=-1",)))
    with pytest.raises(StageError, match=r"mcss-S1-s0 \(exit 2, see .*train\.log\)"):
        reproduce("tiny-bad", tmp_path / "bad", say=lambda _: None, parallel=2)
    log = (tmp_path / "bad" / "runs" / "mcss-S1-s0" / "train.log").read_text()
    assert "margin" in log


def test_a_preset_with_extra_actors_renders_them_and_refuses_another_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full preset's shape (more unlabelled actors) on tiny data; a later preset of another
    dataset must not mix its runs into that folder."""
    monkeypatch.setitem(PRESETS, "tiny-extra", ReproPreset(
        "tiny", "tiny", ("baseline", "mcss"), (0,), extra_subjects=1))
    out = tmp_path / "extra"
    results = reproduce("tiny-extra", out, say=lambda _: None)
    assert results["dataset"]["config"]["extra_subjects"] == 1
    meta = json.loads((out / "data" / "meta.json").read_text())
    assert meta["subjects"][-1] == "X1" and "X1" in meta["splits"]["train"]
    with pytest.raises(ValueError, match="holds another dataset than this preset's"):
        reproduce("tiny", out, say=lambda _: None)


def test_every_preset_asks_only_for_views_its_dataset_has() -> None:
    """A preset's training settings must fit its own synthetic data: no more views per
    instant than the rig has cameras."""
    for name, p in PRESETS.items():
        cfg = resolve_config(p.train, overrides=list(p.overrides))
        data = synth_preset(p.data, extra_subjects=p.extra_subjects)
        assert 2 <= cfg.n_views <= data.cameras, name
    full = PRESETS["full"]  # the setting chosen on S8 (docs/training.md, session 12)
    assert full.extra_subjects == 32 and resolve_config(
        full.train, overrides=list(full.overrides)).n_views == 4


def test_the_table_label_names_the_views_when_not_two() -> None:
    def method(lam: float, n_views: int | None) -> dict:
        metric = {"mean": 100.0, "per_seed": [100.0]}
        views = {} if n_views is None else {"n_views": n_views, "n_sequences": 2}
        return {k: metric for k in ("canonical_mpjpe", "mpjpe", "pa_mpjpe", "n_mpjpe")} | {
            "pck150": {"mean": 0.5, "per_seed": [0.5]}, "labelled_fit": None,
            "monitors": [{"embedding_cosine": 0.4, "spread_ratio": 0.7}],
            "references": {"mean_pose_mpjpe": 134.7, "oracle_mpjpe": 72.7},
            "lam": lam, "strategy": "all", "channel_shuffle": True} | views
    resumed = method(0.03, None) | {"n_views": None}  # from an evaluation that lacked them
    table = results_markdown({"methods": {"baseline": method(0.0, 4), "mcss": method(0.03, 4),
                                          "old": method(0.03, None), "resumed": resumed}})
    assert "| baseline (channel shuffle) |" in table  # no triplet term: no views to name
    assert "| mcss (lam 0.03, all triplets, 4 views x 2 takes, channel shuffle) |" in table
    assert "| old (lam 0.03, all triplets, channel shuffle) |" in table  # results before it
    assert "| resumed (lam 0.03, all triplets, channel shuffle) |" in table


def test_the_sanity_references_are_given_per_label_budget() -> None:
    def method(label: str, mean_pose: float, oracle: float) -> dict:
        metric = {"mean": 100.0, "per_seed": [100.0]}
        return {k: metric for k in ("canonical_mpjpe", "mpjpe", "pa_mpjpe", "n_mpjpe")} | {
            "pck150": {"mean": 0.5, "per_seed": [0.5]}, "labelled_fit": None,
            "monitors": [{"embedding_cosine": 0.4, "spread_ratio": 0.7}], "label": label,
            "references": {"mean_pose_mpjpe": mean_pose, "oracle_mpjpe": oracle}, "lam": 0.0}
    one = results_markdown({"methods": {"baseline": method("S1", 134.7, 72.7),
                                        "mcss": method("S1", 134.7, 72.7)}})
    assert "mean-pose predictor 134.7 mm, nearest-labelled-pose oracle 72.7 mm." in one
    curve = results_markdown({"methods": {"baseline@1%": method("1%", 134.3, 87.4),
                                          "mcss@1%": method("1%", 134.3, 87.4),
                                          "baseline@100%": method("100%", 134.2, 53.5)}})
    assert ("oracle 134.3 / 87.4 mm with 1% labelled, 134.2 / 53.5 mm with 100% labelled."
            in curve)


def test_the_table_gives_the_left_right_agreement_when_every_run_has_it() -> None:
    def method(monitors: list[dict]) -> dict:
        metric = {"mean": 100.0, "per_seed": [100.0] * len(monitors)}
        return {k: metric for k in ("canonical_mpjpe", "mpjpe", "pa_mpjpe", "n_mpjpe")} | {
            "pck150": {"mean": 0.5, "per_seed": [0.5]}, "labelled_fit": None,
            "monitors": monitors, "lam": 0.0,
            "references": {"mean_pose_mpjpe": 134.7, "oracle_mpjpe": 72.7}}
    seeds = [{"embedding_cosine": 0.4, "spread_ratio": 0.7, "left_right_agreement": a}
             for a in (0.1, 0.3)]
    table = results_markdown({"methods": {"baseline": method(seeds)}})
    assert "| pose spread | left/right | seeds |" in table
    assert "| 70% | 0.20 | 2 |" in table  # the mean over seeds
    old = results_markdown({"methods": {"baseline": method(seeds),  # an older result lacks it
                                        "mcss": method([{"embedding_cosine": 0.5,
                                                         "spread_ratio": 0.6}])}})
    assert "left/right" not in old and "| 70% | 2 |" in old
