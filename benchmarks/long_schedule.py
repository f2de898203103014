"""Does the metric term pay with a longer schedule? Baseline, BatchNorm control and MCSS
variants trained side by side for many more steps than the reproduction presets.

Each variant is one ``python -m mcss train`` process; ``--parallel`` of them share the machine
(on one GPU they share it too). A run still going at ``--timeout`` is stopped with SIGTERM,
which saves a checkpoint; it is evaluated as it stands and marked unfinished. The same command
again continues it (``--resume``) and reuses a finished run; their seconds are left blank, since
they are not one run's wall clock. Then every run is evaluated on the test split and the first
seed of each variant in cross-view retrieval.
Settings are chosen on the validation subject (S8); the test numbers are reported, never tuned.

    python benchmarks/long_schedule.py --data runs/full/data --out runs/long --steps 8000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from machine import cpu_model

# Pinned to the settings results/long_schedule.json ran with: lam = 0.01 for "mcss" and
# "mcss-views4", and the channel shuffle on (both defaults until session 4); semi-hard mining
# was the default until session 7, so every variant starts from it (a later `strategy=` wins).
PINNED = ["strategy=semihard"]
# session 7's four views of two takes, the base of the later levers
VIEWS4 = ["lam=0.03", "strategy=all", "n_views=4", "n_sequences=2", "channel_shuffle=true"]
VARIANTS: dict[str, list[str]] = {
    "baseline": ["lam=0", "channel_shuffle=true"],
    "control": ["lam=0", "forward_unlabelled=true", "channel_shuffle=true"],
    "mcss": ["lam=0.01", "channel_shuffle=true"],
    "mcss-lam0.003": ["lam=0.003", "channel_shuffle=true"],
    "mcss-views4": ["lam=0.01", "n_views=4", "n_sequences=8", "channel_shuffle=true"],
    # the session-4 defaults (quick preset, S8): lam = 0.001, no channel shuffle
    "mcss-lam0.001": ["lam=0.001", "channel_shuffle=false"],
    "baseline-noshuffle": ["lam=0", "channel_shuffle=false"],
    "mcss-views4-lam0.001": ["lam=0.001", "n_views=4", "n_sequences=8", "channel_shuffle=false"],
    # the session-5 defaults: lam = 0.001 with the channel shuffle (baseline, control: above)
    "mcss-lam0.001-shuffle": ["lam=0.001", "channel_shuffle=true"],
    # session 6: the triplet term learns the views only when it dominates (quick preset, S6);
    # does a longer schedule let the pose fit recover? Measure with view_consistency.py too.
    "mcss-lam1-all": ["lam=1", "strategy=all", "channel_shuffle=true"],
    "mcss-lam0.1-all": ["lam=0.1", "strategy=all", "channel_shuffle=true"],
    "mcss-lam0.03-all": ["lam=0.03", "strategy=all", "channel_shuffle=true"],
    # session 7: the new defaults with 4 views of 2 takes (best camera frame on S6, quick)
    "mcss-lam0.03-all-views4": VIEWS4,
    # session 8: views first, then pose: lam decays from 1 to 0.03 over half the run
    "mcss-lam1to0.03-all": ["lam=0.03", "lam_initial=1", "lam_warmup_steps=3000",
                            "strategy=all", "channel_shuffle=true"],
    # session 12: levers on top of 4 views of 2 takes (CPU, S8)
    "mcss-lam0.03-all-views4-emb256": [*VIEWS4, "embedding_dim=256"],
    "mcss-lam0.03-all-views4-seq4": [*VIEWS4, "n_sequences=4"],
    # session 13: appearance mixing (MixStyle) across the actors of a batch (CPU, S8); the
    # control sees the same unlabelled actors, so it tells mixing from the multi-view term
    "mcss-lam0.03-all-views4-mix0.5": [*VIEWS4, "mixstyle=0.5"],
    "control-views4-mix0.5": ["lam=0", "forward_unlabelled=true", "n_views=4", "n_sequences=2",
                              "mixstyle=0.5", "channel_shuffle=true"],
    # session 13: a discriminator of the labelled actor, its gradient reversed (DANN)
    "mcss-lam0.03-all-views4-adv0.03": [*VIEWS4, "adversary=0.03"],
    "mcss-lam0.03-all-views4-adv0.1": [*VIEWS4, "adversary=0.1"],
    # session 13: the views of one instant must predict one canonical pose (Rhodin et al.)
    "mcss-lam0.03-all-views4-cons1": [*VIEWS4, "pose_consistency=1"],
    # session 13: does stronger weight decay stop the memorising of the labelled actor?
    "baseline-wd0.05": ["lam=0", "weight_decay=0.05", "channel_shuffle=true"],
    "mcss-lam0.03-all-views4-wd0.05": [*VIEWS4, "weight_decay=0.05"],
    # session 14: a mean teacher's multi-view-averaged poses label the unlabelled actors; the
    # second run has the pseudo-labels without the metric term
    "mcss-lam0.03-all-views4-teach1": [*VIEWS4, "teacher=1"],
    "teacher1-views4": ["lam=0", "teacher=1", "n_views=4", "n_sequences=2",
                        "channel_shuffle=true"],
    # session 16: the mirror image of every unlabelled crop as a negative (left from right)
    "mcss-lam0.03-all-views4-mirror": [*VIEWS4, "mirror_negatives=true"],
    "mcss-lam1-all-feature": ["lam=1", "strategy=all", "regress_from=feature",
                              "channel_shuffle=true"],
    # session 19: random erasing of the labelled crops against memorising the labelled actor
    "baseline-erase0.5": ["lam=0", "erase=0.5", "channel_shuffle=true"],
    "mcss-lam0.03-all-views4-erase0.5": [*VIEWS4, "erase=0.5"],
    # session 19: a random hue rotation of every crop, beside the channel shuffle
    "baseline-hue": ["lam=0", "hue=true", "channel_shuffle=true"],
    "mcss-lam0.03-all-views4-hue": [*VIEWS4, "hue=true"],
    # session 20: in-plane rotation of every crop up to 30 degrees (a new pose of the labelled
    # actor on screen; for the unlabelled views one more nuisance the embedding must ignore)
    "baseline-rot30": ["lam=0", "rotate=30", "channel_shuffle=true"],
    "mcss-lam0.03-all-views4-rot30": [*VIEWS4, "rotate=30"],
    # the views of one instant share one colour draw: matching across cameras only
    "mcss-lam0.03-all-views4-samecolour": [*VIEWS4, "shared_view_colour=true"],
    # session 21: twice the colour jitter's spread on the unlabelled crops only (each view of
    # an instant its own, stronger colouring), and on every crop
    "mcss-lam0.03-all-views4-ucol2": [*VIEWS4, "unlabelled_colour_strength=2"],
    "mcss-lam0.03-all-views4-col2": [*VIEWS4, "colour_strength=2",
                                      "unlabelled_colour_strength=2"],
    # session 22: bfloat16 autocast and channels-last memory (faster on CPUs with AMX);
    # does it train as well as float32?
    "mcss-lam0.03-all-views4-bf16": [*VIEWS4, "precision=bf16", "channels_last=true"],
}
# the current defaults (session 7), three seeds each
DEFAULT_RUNS = [f"{v}:{s}" for v in ("baseline", "control", "mcss-lam0.03-all")
                for s in (0, 1, 2)]


def _launch(data: Path, run: Path, variant: str, seed: int, steps: int,
            extra: list[str], threads: int, resume: bool) -> subprocess.Popen:
    """One ``mcss train`` process for the run; ``resume`` continues it from its checkpoint."""
    sets = [*PINNED, *VARIANTS[variant], f"seed={seed}", f"steps={steps}",
            f"val_every={max(steps // 8, 1)}", f"ckpt_every={max(steps // 4, 1)}", *extra]
    cmd = [sys.executable, "-m", "mcss", "train", "--data", str(data), "--out", str(run),
           "--preset", "full", *[a for s in sets for a in ("--set", s)]]
    run.mkdir(parents=True, exist_ok=True)
    log = (run / "train.log").open("a" if resume else "w")
    cmd += ["--resume"] * resume
    env = {"OMP_NUM_THREADS": str(threads)} | os.environ  # a user's explicit setting wins
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def train_all(data: Path, out: Path, runs: list[tuple[str, int]], steps: int, parallel: int,
              timeout: float, extra: list[str]) -> dict[str, float]:
    """Train the runs, ``parallel`` at a time; returns the wall-clock seconds of each run
    trained from scratch here (a finished run is reused, a stopped one continued)."""
    pending = [r for r in runs if not (out / f"{r[0]}-s{r[1]}" / "final_metrics.json").exists()]
    active: dict[str, tuple[subprocess.Popen, float | None]] = {}
    seconds: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    threads = max(1, (os.cpu_count() or 1) // parallel)  # as `mcss reproduce --parallel`
    while pending or active:
        if time.monotonic() > deadline:
            pending.clear()  # never started: left out of the results
        while pending and len(active) < parallel:
            variant, seed = pending.pop(0)
            name = f"{variant}-s{seed}"
            resume = (out / name / "checkpoints" / "latest").exists()
            active[name] = (_launch(data, out / name, variant, seed, steps, extra, threads,
                                    resume), None if resume else time.monotonic())
        time.sleep(2)
        for name, (proc, began) in list(active.items()):
            if time.monotonic() > deadline and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # saves a checkpoint, exits 130
                proc.wait()
            if proc.poll() is not None:
                del active[name]
                if began is not None:
                    seconds[name] = time.monotonic() - began
                took = f" after {seconds[name]:.0f} s" if name in seconds else " (continued)"
                print(f"{name}: exit {proc.returncode}{took}", flush=True)
    return seconds


def logged_rows(run: Path, kind: str) -> list[tuple[int, str, float]]:
    """``(step, name, value)`` rows of one kind ("train" or "val") of a run's ``metrics.csv``."""
    if not (run / "metrics.csv").exists():
        return []
    with (run / "metrics.csv").open() as f:
        return [(int(r["step"]), r["name"], float(r["value"])) for r in csv.DictReader(f)
                if r["kind"] == kind]


def validation_curve(run: Path) -> list[dict[str, float]]:
    """Validation rows of a run's ``metrics.csv``, one dict per evaluated step."""
    rows: dict[int, dict[str, float]] = {}
    for step, name, value in logged_rows(run, "val"):
        rows.setdefault(step, {"step": step})[name] = value
    return [rows[s] for s in sorted(rows)]


def training_tail(run: Path, fraction: float = 1 / 6) -> dict[str, float]:
    """Mean of each logged training loss, and of the triplet term's distances, over the last
    ``fraction`` of the run's steps."""
    rows = logged_rows(run, "train")
    last = max((step for step, _, _ in rows), default=0)
    values: dict[str, list[float]] = {}
    for step, name, value in rows:
        if name.startswith(("loss", "d_a")) and step > last * (1 - fraction):
            values.setdefault(name, []).append(value)
    return {name: sum(v) / len(v) for name, v in values.items()}


def _device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def summarise(out: Path, data: Path, names: list[str], seconds: dict[str, float],
              steps: int) -> dict[str, Any]:
    from mcss.checkpoint import checkpoint_step
    from mcss.evaluate import evaluate_run, retrieve_runs

    results: dict[str, Any] = {"runs": {}}
    for name in names:
        run = out / name
        curve = validation_curve(run)
        test = evaluate_run(run, data, "test")
        results["runs"][name] = {
            "steps_done": checkpoint_step(run),  # the step the test numbers are of
            "finished": (run / "final_metrics.json").exists(),
            "seconds": seconds.get(name), "val_curve": curve,
            "train_loss_tail": training_tail(run),
            "test": test["mean_over_actions"] | {"monitors": test["monitors"]},
            "references": test["references"], "per_subject": test["per_subject"],
        }
        print(f"{name}: test {json.dumps(results['runs'][name]['test'])}", flush=True)
    first = {n.rsplit("-s", 1)[0]: out / n for n in names if n.endswith("-s0")}
    results["retrieval"] = retrieve_runs(first, data, out / "retrieval")
    import torch

    results |= {"steps": steps, "device": _device_name(), "cpu": cpu_model(),
                "cpu_count": os.cpu_count(), "torch": torch.__version__,
                "command": "python benchmarks/long_schedule.py " + " ".join(sys.argv[1:])}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="quick synthetic dataset folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=float("inf"),
                    help="seconds for all training, then stopped runs are evaluated as they "
                    "stand (default: no limit)")
    ap.add_argument("--runs", nargs="*", default=DEFAULT_RUNS, help="VARIANT:SEED items")
    ap.add_argument("--extra-subjects", type=int, default=0,
                    help="when --data is synthesised here: unlabelled actors X1.. added")
    ap.add_argument("--set", dest="extra", action="append", default=[],
                    help="extra key=value for every run (e.g. precision=bf16)")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results"
                    / "long_schedule.json")
    args = ap.parse_args()
    if not (args.data / "meta.json").exists():
        from mcss.synth.generate import preset, synthesize

        synthesize(preset("quick", extra_subjects=args.extra_subjects), args.data)
    runs = [(v, int(s)) for v, s in (item.split(":") for item in args.runs)]
    seconds = train_all(args.data, args.out, runs, args.steps, args.parallel, args.timeout,
                        args.extra)
    names = [f"{v}-s{s}" for v, s in runs  # a run stopped before its first checkpoint: out
             if (args.out / f"{v}-s{s}" / "checkpoints" / "latest").exists()]
    results = summarise(args.out, args.data, names, seconds, args.steps)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
