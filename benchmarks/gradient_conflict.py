"""Which loss steers the backbone? The pose and triplet terms' gradients, measured apart.

Trains the MCSS ``quick`` configuration exactly as ``mcss train`` does (same batches, same
optimizer), once per ``--lams`` value, and every ``--every`` steps also backpropagates the pose
loss and ``lam`` times the triplet loss *separately*, recording on the backbone's parameters:
each term's gradient norm, the cosine between them, and the share of the summed gradient's
squared norm that the triplet term contributes (above 1 when the two point apart). Adam
normalises the update's size, so the term with the larger gradient sets the backbone's
direction; the loss values do not show this. The regressor's last layer starts at zero, so at
step 0 the triplet term is the only gradient the backbone gets.

    python benchmarks/gradient_conflict.py --data runs/demo/data  # 201 steps; lam 0.01, 0.001
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from machine import cpu_model
from mcss.config import resolve_config
from mcss.data.format import Dataset
from mcss.data.training import TrainBatches, make_split
from mcss.losses import TripletLoss
from mcss.train import (
    build_optimizer,
    build_triplet_loss,
    initial_model,
    lam_at,
    lr_factor,
    training_step,
)


def backbone_gradient(model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
    """The gradient of ``loss`` on the backbone's parameters, flattened."""
    params = list(model.backbone.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                      for p, g in zip(params, grads, strict=True)])


def measure(model: torch.nn.Module, batch: dict[str, torch.Tensor], triplet: TripletLoss,
            cfg: Any, lam: float) -> dict[str, float]:
    """Backbone gradients of the pose terms and of ``lam`` x triplet, on one batch. Two
    forward passes of the same crops; BatchNorm's running statistics are restored after."""
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    total, stats = training_step(model, batch, triplet, cfg, lam)
    g_all = backbone_gradient(model, total)
    pose, _ = training_step(model, batch, triplet, cfg, 0.0)
    g_pose = backbone_gradient(model, pose)
    model.load_state_dict(buffers, strict=False)
    g_trip = g_all - g_pose
    cos = torch.nn.functional.cosine_similarity(g_pose, g_trip, dim=0).item()
    share = (g_trip.square().sum() / g_all.square().sum().clamp_min(1e-30)).item()
    return {"pose_norm": g_pose.norm().item(), "triplet_norm": g_trip.norm().item(),
            "cosine": cos, "triplet_share": share, "loss_canonical": stats["loss_canonical"]}


def trace(ds: Dataset, cfg: Any, steps: int, every: int) -> list[dict[str, float]]:
    """Train ``steps`` steps as ``mcss train`` does, measuring the gradients every ``every``."""
    torch.manual_seed(cfg.seed)
    batches = TrainBatches(ds, make_split(ds, cfg), cfg, 0, 1)
    model = initial_model(cfg, batches.labels)
    optimizer = build_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
    triplet = build_triplet_loss(cfg)
    rows = []
    model.train()
    for step in range(steps):
        batch, lam = batches[step], lam_at(cfg, step)
        if step % every == 0:
            rows.append({"step": step, "lam": lam} | measure(model, batch, triplet, cfg, lam))
            r = rows[-1]
            print(f"lam {cfg.lam}  step {step:4d}  |g_pose| {r['pose_norm']:.2e}  |g_trip| "
                  f"{r['triplet_norm']:.2e}  cos {r['cosine']:+.2f}  triplet share "
                  f"{100 * r['triplet_share']:.0f}%", flush=True)
        loss, _ = training_step(model, batch, triplet, cfg, lam)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="quick synthetic dataset folder")
    ap.add_argument("--steps", type=int, default=201)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--lams", type=float, nargs="+", default=[0.01, 0.001],
                    help="one training per triplet weight")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="key=value on top of the quick preset")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results"
                    / "gradient_conflict.json")
    args = ap.parse_args()
    ds = Dataset(args.data)
    runs = {str(lam): trace(ds, resolve_config("quick", None, [*args.sets, f"lam={lam}"]),
                            args.steps, args.every) for lam in args.lams}
    results = {"config_sets": args.sets, "runs": runs, "cpu": cpu_model(),
               "cpu_count": os.cpu_count(), "torch": torch.__version__,
               "command": "python benchmarks/gradient_conflict.py " + " ".join(sys.argv[1:])}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
