"""Training steps per second in float32 and in bfloat16 autocast, side by side in one run.

mcss's whole training step (batches built from the dataset, augmentation, forward of the
labelled and unlabelled crops, losses, mining, backward, AdamW) with the long runs' MCSS recipe
(``--preset full`` and the ``mcss-lam0.03-all-views4`` settings of long_schedule.py), timed for
each arm in turn, repeat after repeat, so that every arm sees the same machine state. CPUs with
AMX or AVX-512 BF16 run bfloat16 convolutions natively; elsewhere autocast may slow training.
Whether bfloat16 also trains as well is a separate, long measurement (docs/training.md).

    python benchmarks/precision_throughput.py --data runs/extra32/data [--steps 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from long_schedule import PINNED, VARIANTS
from machine import cpu_flags, write_runs_result
from train_throughput import time_ours

ARMS: dict[str, list[str]] = {
    "fp32": ["precision=fp32"],
    "bf16": ["precision=bf16"],
    "bf16, channels_last": ["precision=bf16", "channels_last=true"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=10, help="steps per arm and repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results"
                    / "precision_throughput.json")
    args = ap.parse_args()
    from mcss.config import resolve_config
    from mcss.data.format import Dataset
    from mcss.data.training import TrainBatches, make_split

    torch.manual_seed(0)
    ds = Dataset(args.data)
    recipe = [*PINNED, *VARIANTS["mcss-lam0.03-all-views4"]]
    configs = {arm: resolve_config("full", overrides=[*recipe, *extra])
               for arm, extra in ARMS.items()}
    first = next(iter(configs.values()))
    batches = TrainBatches(ds, make_split(ds, first), first)
    for cfg in configs.values():
        time_ours(batches, cfg, 2, 10_000)  # warm-up
    rates: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for r in range(args.repeats):
        for arm, cfg in configs.items():
            rates[arm].append(time_ours(batches, cfg, args.steps, r * args.steps))
        print(f"repeat {r}: " + ", ".join(f"{a} {v[-1]:.2f}" for a, v in rates.items()))
    base = statistics.median(rates["fp32"])
    runs = {arm: {"steps_per_s": v, "median": statistics.median(v),
                  "speed_up": statistics.median(v) / base} for arm, v in rates.items()}
    print("| arm | steps/s (median) | speed-up |\n|---|---:|---:|")
    for arm, r in runs.items():
        print(f"| {arm} | {r['median']:.2f} | {r['speed_up']:.2f}x |")
    write_runs_result(args.results, runs, threads=torch.get_num_threads(),
                      cpu_flags=cpu_flags(), image_size=int(ds.meta["image_size"]),
                      batch=first.batch_labelled + first.n_sequences * first.n_instants
                      * first.n_views, steps=args.steps)


if __name__ == "__main__":
    main()
