"""Training throughput with 1 vs 2 processes (torchrun, gloo, CPU), side by side in one run.

Both settings train the same global batch (the quick preset's 32 labelled + 4x4x2 unlabelled
crops) with `mcss train` launched by torchrun; 2 processes each compute half of it and
synchronise gradients, BatchNorm statistics and embeddings every step. Steps/s is read from
the run's own log (windows after the first, so start-up and warm-up are excluded); settings
are interleaved and repeated, and medians are reported.

On a CPU box the cores are the limit: 1 process uses every core through intra-op threads,
2 processes one core each (torchrun's OMP_NUM_THREADS=1), so this measures the overhead of
the distributed step rather than a speed-up. GPU figures belong here only when measured.

    python benchmarks/distributed.py --data DIR [--steps 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch

from machine import cpu_model
from mcss.config import resolve_config
from mcss.synth.generate import preset, synthesize


def steps_per_second(data: Path, processes: int, steps: int, log_every: int) -> float:
    """Median logged steps/s of one run, its first logging window left out."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", str(processes), "-m", "mcss", "train",
                   "--data", str(data), "--out", str(run), "--preset", "quick",
                   "--set", f"steps={steps}", "--set", f"log_every={log_every}",
                   "--set", f"val_every={10 * steps}", "--set", "val_frames=8",
                   "--set", f"ckpt_every={10 * steps}", "--device", "cpu", "--no-progress"]
        subprocess.run(command, check=True, capture_output=True, text=True)
        with (run / "metrics.csv").open() as f:
            rates = [float(r["value"]) for r in csv.DictReader(f) if r["name"] == "steps_per_s"]
    return statistics.median(rates[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/bench/quick"))
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/distributed.json"))
    args = ap.parse_args()
    if not (args.data / "meta.json").exists():
        synthesize(preset("quick"), args.data)
    cfg = resolve_config("quick")
    batch = cfg.batch_labelled + cfg.n_sequences * cfg.n_instants * cfg.n_views
    rates: dict[int, list[float]] = {1: [], 2: []}
    for r in range(args.repeats):
        for processes in rates:
            rates[processes].append(steps_per_second(args.data, processes, args.steps,
                                                     args.log_every))
        print(f"repeat {r}: " + ", ".join(f"{p} process(es) {v[-1]:.2f} steps/s"
                                          for p, v in rates.items()))
    medians = {p: statistics.median(v) for p, v in rates.items()}
    result = {
        "benchmark": "distributed",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": date.today().isoformat(),
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "gpu": None, "backend": "gloo"},
        "config": {"preset": "quick", "arch": cfg.arch, "global_batch": batch,
                   "steps_per_run": args.steps},
        "steps_per_s": {str(p): v for p, v in rates.items()},
        "median_steps_per_s": {str(p): m for p, m in medians.items()},
        "median_samples_per_s": {str(p): m * batch for p, m in medians.items()},
        "ratio_2_over_1": medians[2] / medians[1],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("| processes | steps/s | crops/s |\n|---|---|---|")
    for p, m in medians.items():
        print(f"| {p} | {m:.2f} | {m * batch:.0f} |")
    print(f"2 / 1 processes: {result['ratio_2_over_1']:.2f}")


if __name__ == "__main__":
    main()
