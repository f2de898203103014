"""``mcss reproduce``: synthesise, train baseline / control / MCSS, evaluate, retrieve, report.

Every stage writes its own output and is skipped when that output exists, so a long preset
can be stopped and continued (an interrupted training stage resumes from its checkpoint).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcss.config import resolve_config
from mcss.data.format import Dataset
from mcss.evaluate import evaluate_run, evaluation_markdown, retrieve_runs
from mcss.report import plot_label_curve, plot_learning_curves, plot_mpjpe_bars, write_html
from mcss.synth.generate import SynthConfig, same_config, synthesize
from mcss.synth.generate import preset as synth_preset
from mcss.train import train

VARIANTS: dict[str, list[str]] = {
    "baseline": ["lam=0"],
    "control": ["lam=0", "forward_unlabelled=true"],  # BatchNorm sees the other actors
    "mcss": [],
}


class StageError(RuntimeError):
    """A training stage run as a separate process failed (its log names the cause)."""


@dataclass(frozen=True)
class ReproPreset:
    data: str  # synthetic dataset preset
    train: str  # training preset
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    labels: tuple[str, ...] = ("S1",)
    overrides: tuple[str, ...] = ()  # training settings of every run
    extra_subjects: int = 0  # unlabelled actors X1.. added to the synthetic dataset


PRESETS: dict[str, ReproPreset] = {
    "tiny": ReproPreset("tiny", "tiny", ("baseline", "mcss"), (0,)),
    "quick": ReproPreset("quick", "quick", ("baseline", "mcss"), (0,)),
    # 32 more actors and 4 views of 2 takes per step: the best on S8 over 3 seeds (session 12)
    "full": ReproPreset("quick", "full", ("baseline", "control", "mcss"), (0, 1, 2),
                        overrides=("n_views=4", "n_sequences=2"), extra_subjects=32),
    "curve": ReproPreset("quick", "quick", ("baseline", "mcss"), (0,),
                         ("1%", "5%", "10%", "50%", "100%")),
}


def machine() -> str:
    """CPU model, core count, GPU (if any) and torch version: printed beside every timing."""
    import platform

    import torch

    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}"


def _run_name(variant: str, label: str, seed: int) -> str:
    return f"{variant}-{label.replace('%', 'pct')}-s{seed}"


def _train_stage(data: Path, run: Path, overrides: list[str], preset: str) -> None:
    if (run / "final_metrics.json").exists():
        return
    resume = (run / "checkpoints" / "latest").exists()
    train(data, run, resolve_config(preset, overrides=overrides), resume=resume, progress=True)


def _train_in_parallel(data: Path, stages: list[tuple[Path, list[str]]], preset: str,
                       parallel: int, say: Callable[[str], None]) -> None:
    """Train the unfinished stages as ``parallel`` concurrent ``mcss train`` processes (for a
    GPU or a many-core machine), each logging to ``RUN/train.log``. The same command and
    seed give the same run as the sequential path with as many threads; a stopped stage
    resumes."""
    todo = [(run, ov) for run, ov in stages if not (run / "final_metrics.json").exists()]
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // parallel))
    env = os.environ | {"OMP_NUM_THREADS": threads}  # a user's explicit setting wins
    running: list[tuple[Path, subprocess.Popen]] = []
    failed: list[str] = []

    def reap(limit: int) -> None:
        while len(running) > limit:
            run, proc = running.pop(0)
            if proc.wait() != 0:
                failed.append(f"{run.name} (exit {proc.returncode}, see {run / 'train.log'})")

    for run, overrides in todo:
        reap(parallel - 1)
        say(f"stage: train {run.name} (in parallel)")
        cmd = [sys.executable, "-m", "mcss", "train", "--data", str(data), "--out", str(run),
               "--preset", preset, "--no-progress", *[a for o in overrides for a in ("--set", o)]]
        if (run / "checkpoints" / "latest").exists():
            cmd.append("--resume")
        run.mkdir(parents=True, exist_ok=True)
        with (run / "train.log").open("a") as log:
            running.append((run, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                                  env=env)))
    reap(0)
    if failed:
        raise StageError(f"training failed: {'; '.join(failed)}")


def _eval_stage(run: Path, data: Path) -> dict[str, Any]:
    path = run / "eval-test.json"
    if not path.exists():
        result = evaluate_run(run, data, "test")
        path.write_text(json.dumps(result, indent=1) + "\n")
        (run / "eval-test.md").write_text(evaluation_markdown(result))
    return json.loads(path.read_text())


def reproduce(name: str, out: Path, say: Callable[[str], None] = print,
              parallel: int = 1) -> dict[str, Any]:
    """Run (or continue) a reproduction preset into ``out``; returns ``results.json``.
    ``parallel`` > 1 trains that many runs at once, in separate processes."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[name]
    start = time.perf_counter()
    data = out / "data"
    _synthesise_stage(data, synth_preset(p.data, extra_subjects=p.extra_subjects), say)
    stages = [(out / "runs" / _run_name(variant, label, seed),
               [*VARIANTS[variant], f"labelled={label}", f"seed={seed}", *p.overrides])
              for label in p.labels for variant in p.variants for seed in p.seeds]
    if parallel > 1:
        _train_in_parallel(data, stages, p.train, parallel, say)
    evals: dict[str, dict[str, Any]] = {}
    for run, overrides in stages:
        say(f"stage: train {run.name}")
        _train_stage(data, run, overrides, p.train)
        evals[run.name] = _eval_stage(run, data) | {"labelled_fit": _labelled_fit(run)}
    retrieval_dir = out / "retrieval"
    first = {v: out / "runs" / _run_name(v, p.labels[0], p.seeds[0]) for v in p.variants}
    if not (retrieval_dir / "results.json").exists():
        say("stage: cross-view retrieval")
        retrieve_runs(first, data, retrieval_dir)
    retrieval = json.loads((retrieval_dir / "results.json").read_text())
    results = _summarise(name, p, evals, retrieval, Dataset(data).meta["provenance"])
    command = f"mcss reproduce --preset {name}" + (f" --parallel {parallel}" * (parallel > 1))
    results |= {"command": command, "machine": machine(),
                "minutes": (time.perf_counter() - start) / 60.0}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    _report(out, p, results, first, evals)
    return results


def _synthesise_stage(data: Path, config: SynthConfig, say: Callable[[str], None]) -> None:
    """Render the preset's dataset into ``data`` unless it is there; refuse another dataset,
    whose runs would be mixed up with this preset's."""
    if (data / "meta.json").exists():
        if not same_config(Dataset(data).meta["provenance"].get("config"), config):
            raise ValueError(f"{data} holds another dataset than this preset's (an earlier "
                             "version of the preset?): choose another --out or remove it")
        return
    say(f"stage: synthesise the dataset -> {data}")
    synthesize(config, data)


def _labelled_fit(run: Path) -> float | None:
    """Canonical MPJPE on the run's own labelled frames at its last validation (None when it
    had no validation subject)."""
    return json.loads((run / "final_metrics.json").read_text()).get("fit_canonical_mpjpe")


def _summarise(name: str, p: ReproPreset, evals: dict[str, dict], retrieval: dict,
               provenance: dict) -> dict[str, Any]:
    table: dict[str, dict[str, Any]] = {}
    for label in p.labels:
        for variant in p.variants:
            runs = [evals[_run_name(variant, label, s)] for s in p.seeds]
            key = variant if len(p.labels) == 1 else f"{variant}@{label}"
            table[key] = {
                metric: {"mean": float(np.mean([r["mean_over_actions"][metric] for r in runs])),
                         "per_seed": [r["mean_over_actions"][metric] for r in runs]}
                for metric in ("mpjpe", "canonical_mpjpe", "pa_mpjpe", "n_mpjpe", "pck150")
            } | {"per_subject": _subject_means(runs),
                 "labelled_fit": _mean_or_none([r.get("labelled_fit") for r in runs]),
                 "monitors": [r["monitors"] for r in runs],
                 "references": runs[0]["references"], "label": label,
                 "lam": runs[0].get("lam"), "strategy": runs[0].get("strategy"),
                 "channel_shuffle": runs[0].get("channel_shuffle"),
                 "n_views": runs[0].get("n_views"), "n_sequences": runs[0].get("n_sequences")}
    return {"preset": name, "seeds": list(p.seeds), "dataset": provenance, "methods": table,
            "retrieval": retrieval}


def _mean_or_none(values: list[float | None]) -> dict[str, Any] | None:
    if any(v is None for v in values):
        return None
    return {"mean": float(np.mean(values)), "per_seed": values}


def _subject_means(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per test subject, the canonical MPJPE averaged over seeds, and its mean-pose error."""
    if not all("per_subject" in r for r in runs):
        return {}  # evaluated before per-subject tables existed
    return {s: {"canonical_mpjpe": float(np.mean([r["per_subject"][s]["canonical_mpjpe"]
                                                   for r in runs])),
                "mean_pose_mpjpe": m["mean_pose_mpjpe"]}
            for s, m in runs[0]["per_subject"].items()}


def subjects_markdown(results: dict[str, Any]) -> str:
    """Canonical MPJPE per test subject and method: an actor dressed unlike the labelled
    one can fail alone, which the mean over subjects hides."""
    methods = {k: m["per_subject"] for k, m in results["methods"].items() if m.get("per_subject")}
    if not methods:
        return ""
    subjects = list(next(iter(methods.values())))
    lines = ["| method | " + " | ".join(subjects) + " |", "|---|" + "---:|" * len(subjects)]
    lines += [f"| {k} | " + " | ".join(f"{m[s]['canonical_mpjpe']:.1f}" for s in subjects)
              + " |" for k, m in methods.items()]
    first = next(iter(methods.values()))
    lines.append("| mean-pose predictor | " + " | ".join(
        f"{first[s]['mean_pose_mpjpe']:.1f}" for s in subjects) + " |")
    return "\n".join(lines) + "\n"


def _method_notes(m: dict[str, Any]) -> list[str]:
    """How a method was trained, for its table label (older results lack the view count)."""
    notes = [f"lam {m['lam']:g}"] if m.get("lam") else []
    if m.get("lam") and m.get("strategy"):
        notes.append(f"{m['strategy']} triplets")
    if m.get("lam") and m.get("n_views") not in (None, 2):
        notes.append(f"{m['n_views']} views x {m['n_sequences']} takes")
    return notes + (["channel shuffle"] if m.get("channel_shuffle") else [])


def reference_groups(
    labelled: Iterable[tuple[str, dict[str, float]]],
) -> list[tuple[float, float, list[str]]]:
    """``(label, references)`` pairs -> ``(mean-pose MPJPE, oracle MPJPE, labels)`` per distinct
    pair of values, in order: both come from the labelled poses, so runs with different label
    budgets each have their own (the `curve` preset; a run with every actor labelled)."""
    groups: dict[tuple[float, float], dict[str, None]] = {}
    for label, r in labelled:
        groups.setdefault((r["mean_pose_mpjpe"], r["oracle_mpjpe"]), {})[label] = None
    return [(mean_pose, oracle, list(labels)) for (mean_pose, oracle), labels in groups.items()]


def _references_text(methods: dict[str, dict]) -> str:
    """The mean-pose predictor and the oracle, once per label budget."""
    groups = reference_groups((m.get("label"), m["references"]) for m in methods.values())
    if len(groups) == 1:
        mean_pose, oracle, _ = groups[0]
        return (f"mean-pose predictor {mean_pose:.1f} mm, nearest-labelled-pose oracle "
                f"{oracle:.1f} mm")
    return "mean-pose predictor / nearest-labelled-pose oracle " + ", ".join(
        f"{mean_pose:.1f} / {oracle:.1f} mm with {', '.join(labels)} labelled"
        for mean_pose, oracle, labels in groups)


def results_markdown(results: dict[str, Any]) -> str:
    """The headline table of a reproduction: test split, mean over actions, mm. Results made
    since session 16 also give the left-right agreement (``docs/metrics.md``)."""
    methods = results["methods"]
    left_right = all("left_right_agreement" in x for m in methods.values() for x in m["monitors"])
    extra = " left/right |" if left_right else ""
    lines = ["| method | canonical MPJPE | MPJPE | PA-MPJPE | N-MPJPE | PCK@150 | "
             f"labelled fit | embedding cosine | pose spread |{extra} seeds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * (1 + left_right)]
    for name, m in methods.items():
        cosine = np.mean([x["embedding_cosine"] for x in m["monitors"]])
        spread = np.mean([x["spread_ratio"] for x in m["monitors"]])
        agreement = (f" {np.mean([x['left_right_agreement'] for x in m['monitors']]):.2f} |"
                     if left_right else "")
        label = f"{name} ({', '.join(notes)})" if (notes := _method_notes(m)) else name
        fit = f"{m['labelled_fit']['mean']:.1f}" if m.get("labelled_fit") else "-"
        lines.append(
            f"| {label} | {m['canonical_mpjpe']['mean']:.1f} | {m['mpjpe']['mean']:.1f} | "
            f"{m['pa_mpjpe']['mean']:.1f} | {m['n_mpjpe']['mean']:.1f} | "
            f"{100 * m['pck150']['mean']:.1f}% | {fit} | {cosine:.2f} | {100 * spread:.0f}% |"
            f"{agreement} {len(m['mpjpe']['per_seed'])} |")
    lines += ["", f"Sanity references (canonical MPJPE): {_references_text(methods)}"
              ". Collapse monitors (test, mean over seeds): "
              "embedding mean pairwise cosine, and predicted-pose spread over the ground "
              "truth's; a gain with spread under 50% is regression to the mean pose. Labelled "
              "fit: canonical MPJPE on the labelled frames themselves at the last validation; "
              "test minus fit is the most that generalising better across actors can win."
              + (" Left/right: agreement of the predicted and true left-right asymmetry (1: "
                 "told apart, 0: averaged)." if left_right else "")]
    return "\n".join(lines) + "\n"


def _report(out: Path, p: ReproPreset, results: dict[str, Any], first: dict[str, Path],
            evals: dict[str, dict]) -> Path:
    from mcss.retrieval import retrieval_table

    figs = out / "report"
    refs = next(iter(results["methods"].values()))["references"]
    images = [plot_learning_curves(first, figs / "learning_curves.png")]
    bars = {k: v["canonical_mpjpe"]["per_seed"] for k, v in results["methods"].items()
            if v["label"] == p.labels[0]}
    images.append(plot_mpjpe_bars(bars, refs, figs / "mpjpe_bars.png"))
    if len(p.labels) > 1:
        from mcss.config import label_budget

        curve: dict[str, dict[float, float]] = {}
        for key, m in results["methods"].items():
            variant = key.split("@")[0]
            fraction = label_budget(m["label"])[1] or 0.0
            curve.setdefault(variant, {})[fraction] = m["canonical_mpjpe"]["mean"]
        first_refs = next(iter(results["methods"].values()))["references"]
        refs = {"mean_pose_mpjpe": first_refs["mean_pose_mpjpe"]}  # the oracle varies with labels
        images.append(plot_label_curve(curve, figs / "label_curve.png", refs))
    images += sorted((out / "retrieval").glob("grid_*.png"))
    sections = [("Pose estimation (test split, mean over actions)", results_markdown(results)),
                ("Canonical MPJPE per test subject (mean over seeds, mm)",
                 subjects_markdown(results)),
                ("Cross-view retrieval (test split)", retrieval_table(results["retrieval"]))]
    sections = [(heading, text) for heading, text in sections if text]
    return write_html(figs, f"mcss reproduction: {results['preset']}", sections, images)
