"""MCSS training throughput against the compute limit, measured side by side in one run.

ours:      mcss's full training step (batch building from the dataset, augmentation,
           forward of labelled + unlabelled crops, pose losses, mining, triplet loss,
           backward, AdamW) as `mcss train` runs it.
reference: a plain loop doing only forward + backward + AdamW of the same network on random
           tensors of the same shapes: what the hardware allows.
Also: the time spent in mining at batch 256, as a fraction of a step at that batch size.

    python benchmarks/train_throughput.py --data DIR [--steps 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

from machine import cpu_model
from mcss.config import resolve_config
from mcss.data.format import Dataset
from mcss.data.training import TrainBatches, make_split
from mcss.losses import TripletLoss
from mcss.mining import TemporalHardNegativeMiner
from mcss.synth.generate import preset, synthesize
from mcss.train import build_model, training_step


def time_ours(batches: TrainBatches, cfg, steps: int, offset: int) -> float:
    model = build_model(cfg)
    if cfg.channels_last:  # as mcss.train places it
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, foreach=True)
    triplet = TripletLoss(TemporalHardNegativeMiner(min_gap=cfg.min_gap, strategy=cfg.strategy,
                                                    margin=cfg.margin))
    start = time.perf_counter()
    for step in range(offset, offset + steps):
        loss, _ = training_step(model, batches[step], triplet, cfg, cfg.lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def time_reference(cfg, batch_size: int, size: int, steps: int) -> float:
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, foreach=True)
    x = torch.rand(batch_size, 3, size, size)
    start = time.perf_counter()
    for _ in range(steps):
        out = model(x)
        loss = out.pose_camera.square().mean() + out.embedding.square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def mining_fraction(cfg, batch: int, size: int, repeats: int) -> dict[str, float]:
    """Seconds of mining vs a whole forward/backward step at ``batch`` crops."""
    miner = TemporalHardNegativeMiner(min_gap=cfg.min_gap, strategy=cfg.strategy,
                                      margin=cfg.margin)
    emb = torch.randn(batch, cfg.embedding_dim)
    seq = torch.arange(batch) // 32
    t = (torch.arange(batch) // 2 % 16) * cfg.min_gap
    cam = torch.arange(batch) % 2
    mine = []
    for _ in range(repeats):
        tic = time.perf_counter()
        miner(emb, seq, t, cam)
        mine.append(time.perf_counter() - tic)
    step = 1.0 / time_reference(cfg, batch, size, 2)
    return {"batch": batch, "mining_s": statistics.median(mine), "step_s": step,
            "fraction": statistics.median(mine) / step}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/bench/quick"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    args = ap.parse_args()
    torch.manual_seed(0)
    if not (args.data / "meta.json").exists():
        synthesize(preset("quick"), args.data)
    ds = Dataset(args.data)
    cfg = resolve_config("quick")
    batches = TrainBatches(ds, make_split(ds, cfg), cfg)
    size = ds.meta["image_size"]
    batch_size = cfg.batch_labelled + cfg.n_sequences * cfg.n_instants * cfg.n_views
    time_ours(batches, cfg, 3, 10_000)  # warm-up
    time_reference(cfg, batch_size, size, 3)
    ours, ref = [], []
    for r in range(args.repeats):  # interleaved, so both see the same machine state
        ours.append(time_ours(batches, cfg, args.steps, r * args.steps))
        ref.append(time_reference(cfg, batch_size, size, args.steps))
        print(f"repeat {r}: ours {ours[-1]:.3f} steps/s, reference {ref[-1]:.3f} steps/s")
    mining = mining_fraction(cfg, 256, size, args.repeats)
    result = {
        "benchmark": "train_throughput",
        "command": " ".join([sys.executable.split("/")[-1], *sys.argv]),
        "date": date.today().isoformat(),
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "config": {"preset": "quick", "arch": cfg.arch, "image_size": size,
                   "batch": {"labelled": cfg.batch_labelled,
                             "unlabelled": batch_size - cfg.batch_labelled},
                   "strategy": cfg.strategy, "steps_per_repeat": args.steps},
        "ours_steps_per_s": ours, "reference_steps_per_s": ref,
        "median_ours": statistics.median(ours), "median_reference": statistics.median(ref),
        "ratio": statistics.median(ours) / statistics.median(ref),
        "samples_per_s": statistics.median(ours) * batch_size,
        "mining_at_256": mining,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("| | steps/s | crops/s |\n|---|---|---|")
    print(f"| mcss training step | {result['median_ours']:.2f} | {result['samples_per_s']:.0f} |")
    print(f"| plain fwd+bwd (compute limit) | {result['median_reference']:.2f} | "
          f"{result['median_reference'] * batch_size:.0f} |")
    print(f"ratio {result['ratio']:.2f}; mining at batch 256: "
          f"{1000 * mining['mining_s']:.1f} ms = {100 * mining['fraction']:.2f}% of a step")


if __name__ == "__main__":
    main()
