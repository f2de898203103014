"""The MCSS training loop, readable top to bottom.

Each step: one labelled batch (pose loss on the canonical pose, plus the camera-frame pose
that trains the view head) and, when ``lam > 0`` or ``forward_unlabelled`` is set, one
multi-view unlabelled batch (triplet loss with temporal hard negatives, weight ``lam``).
``lam = 0`` is the baseline: the same code path, schedule, batches and augmentation.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from mcss.checkpoint import load_checkpoint, save_checkpoint
from mcss.config import TrainConfig, save_config
from mcss.data.format import Dataset
from mcss.data.training import TrainBatches, make_split
from mcss.evaluate import (
    collapse_warnings,
    labelled_poses,
    pose_metrics,
    predict,
    sanity_references,
)
from mcss.geometry import canonical_body_frame, to_canonical
from mcss.losses import TripletLoss, pose_loss
from mcss.mining import TemporalHardNegativeMiner
from mcss.model import PoseNet, PoseOutput, load_backbone_init


def build_model(cfg: TrainConfig) -> PoseNet:
    return PoseNet(cfg.arch, cfg.embedding_dim, cfg.hidden_dim, cfg.pose_frame)


def lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to 0 or steps of /10 at 60% and 85%."""

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        if cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return 0.1 ** ((progress >= 0.6) + (progress >= 0.85))

    return factor


def lam_at(cfg: TrainConfig, step: int) -> float:
    """Weight of the triplet loss at ``step`` (linear warm-up when configured)."""
    if cfg.lam_warmup_steps and step < cfg.lam_warmup_steps:
        return cfg.lam * (step + 1) / cfg.lam_warmup_steps
    return cfg.lam


def training_step(
    model: PoseNet, batch: dict[str, torch.Tensor], triplet: TripletLoss, cfg: TrainConfig,
    lam: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one step. Labelled and unlabelled crops go through the network together, so
    BatchNorm sees the same mixture in MCSS and in the ``forward_unlabelled`` control."""
    n_lab = len(batch["images"])
    images = batch["images"]
    if cfg.uses_unlabelled:
        images = torch.cat([images, batch["unlabelled_images"]])
    out = model(images)
    metres = 1e-3  # pose losses in metres keep them on the triplet loss's scale
    target_camera = batch["pose_camera"] * metres
    if out.rotation is None:  # the camera-frame ablation: the regressor predicts it directly
        loss = pose_loss(out.pose_camera[:n_lab] * metres, target_camera, cfg.pose_loss)
        return _with_triplet(loss, {"loss_camera": loss.item()}, out, batch, triplet, lam, n_lab)
    # The regressor learns the canonical pose; the view head learns the rotation that takes
    # the true canonical pose to the true camera-frame pose. Kept apart, an early, wrong
    # rotation cannot drag the canonical prediction towards the mean pose.
    target_canonical = batch["pose_canonical"] * metres
    loss_canonical = pose_loss(out.pose_canonical[:n_lab] * metres, target_canonical,
                               cfg.pose_loss)
    rotated = target_canonical @ out.rotation[:n_lab].transpose(1, 2)
    loss_view = pose_loss(rotated, target_camera, cfg.pose_loss)
    stats = {"loss_canonical": loss_canonical.item(), "loss_view": loss_view.item()}
    loss = loss_canonical + cfg.view_weight * loss_view
    return _with_triplet(loss, stats, out, batch, triplet, lam, n_lab)


def _with_triplet(
    loss: torch.Tensor, stats: dict[str, float], out: PoseOutput, batch: dict[str, torch.Tensor],
    triplet: TripletLoss, lam: float, n_lab: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Add ``lam`` times the triplet loss of the unlabelled part of the batch."""
    if lam > 0:
        loss_triplet, tstats = triplet(out.embedding[n_lab:], batch["sequence"], batch["time"],
                                       batch["camera"])
        loss = loss + lam * loss_triplet
        stats |= {"loss_triplet": loss_triplet.item(), "active": tstats["active_fraction"]}
    stats["loss"] = loss.item()
    return loss, stats


class RunLog:
    """Metrics to ``metrics.csv`` (one row per event) and TensorBoard (``tb/``)."""

    def __init__(self, run: Path) -> None:
        self.path = run / "metrics.csv"
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run / "tb"))
        except ImportError:  # TensorBoard is optional; the CSV is always written
            self.tb = None

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (a resumed run logs those steps again)."""
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
        with self.path.open("w", newline="") as f:
            csv.writer(f).writerows(kept)

    def write(self, step: int, kind: str, values: dict[str, float]) -> None:
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", "kind", "name", "value"])
            writer.writerows([step, kind, k, f"{v:.6g}"] for k, v in values.items())
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"{kind}/{k}", v, step)
            self.tb.flush()


class Validator:
    """Validation on the held-out training subject, with the sanity references.

    Frames whose 3D label is not finite are left out (and counted); with none left every
    metric is NaN rather than a number computed from nothing.
    """

    def __init__(self, ds: Dataset, rows: np.ndarray, labelled_camera: np.ndarray) -> None:
        kept, self.gt = labelled_poses(ds, rows)
        self.images = np.asarray(ds.images[kept])
        self.skipped = len(rows) - len(kept)
        self.references = sanity_references(labelled_camera, self.gt) if len(kept) else {}

    def __call__(self, model: PoseNet) -> dict[str, float]:
        if len(self.gt) == 0:
            keys = ("mpjpe", "canonical_mpjpe", "pa_mpjpe", "mean_pose_mpjpe",
                    "mean_pose_pa_mpjpe", "oracle_mpjpe", "embedding_cosine", "spread_ratio")
            return dict.fromkeys(keys, float("nan")) | {"skipped": self.skipped}
        metrics = pose_metrics(predict(model, self.images), self.gt)
        return metrics | self.references | {"skipped": self.skipped}


class StopRequest:
    """Turns SIGINT/SIGTERM into a request honoured between steps, so the run saves a
    consistent checkpoint (never one taken in the middle of an optimizer step) and exits."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._request)
        return self

    def _request(self, signum: int, _frame: object) -> None:
        self.signal = signum

    def __exit__(self, *_: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(
    data: Path, run: Path, cfg: TrainConfig, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train on the dataset folder ``data`` into the run folder ``run``; returns the last
    validation metrics. With ``resume``, continue from the run's latest checkpoint."""
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    ds = Dataset(data)
    split = make_split(ds, cfg)
    batches = TrainBatches(ds, split, cfg)
    model = build_model(cfg)
    stats_poses = batches.labels if cfg.pose_frame == "camera" else to_canonical(batches.labels)
    model.set_pose_statistics(torch.from_numpy(stats_poses).float())
    frames = canonical_body_frame(batches.labels)  # rows: body axes in camera coordinates
    model.set_view_statistics(torch.from_numpy(np.swapaxes(frames, 1, 2)).float())
    if cfg.init:
        load_backbone_init(model, Path(cfg.init))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  foreach=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
    triplet = TripletLoss(TemporalHardNegativeMiner(
        min_gap=cfg.min_gap, max_gap=cfg.max_gap, strategy=cfg.strategy, margin=cfg.margin,
        other_sequences=cfg.other_sequences), margin=cfg.margin)
    validate = Validator(ds, split.validation, batches.labels)
    start = 0
    if resume:
        start = load_checkpoint(run, model, optimizer, scheduler)["step"]
    loader = DataLoader(batches, sampler=range(start, cfg.steps), batch_size=None,
                        num_workers=cfg.num_workers)
    log = RunLog(run)
    log.truncate_after(start)
    bar = _progress_bar(cfg.steps, start, progress)
    metrics: dict[str, Any] = {}
    tic, window = time.perf_counter(), 0
    with StopRequest() as stop:
        for step, batch in enumerate(loader, start=start):
            model.train()
            loss, stats = training_step(model, batch, triplet, cfg, lam_at(cfg, step))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"step {step}: loss is {float(loss)}; lower lr or "
                                         "check the labels for NaN")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            done, window = step + 1, window + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                rate = window / (time.perf_counter() - tic)
                log.write(done, "train", stats | {"lr": scheduler.get_last_lr()[0],
                                                  "steps_per_s": rate})
                bar.set_postfix(loss=f"{stats['loss']:.4f}", steps_s=f"{rate:.2f}")
                tic, window = time.perf_counter(), 0
            if done % cfg.val_every == 0 or done == cfg.steps:
                metrics = validate(model) | {"step": done}
                log.write(done, "val", metrics)
                bar.write(_val_line(done, metrics))
            if done % cfg.ckpt_every == 0 or done == cfg.steps or stop.signal is not None:
                save_checkpoint(run, done, model, optimizer, scheduler,
                                {"config": cfg.to_dict(), "metrics": metrics}, cfg.keep_last)
            bar.update(1)
            if stop.signal is not None:
                bar.close()
                raise KeyboardInterrupt(f"stopped by signal {stop.signal} after step {done}; "
                                        f"checkpoint saved, continue with --resume")
    bar.close()
    (run / "final_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def _val_line(step: int, m: dict[str, float]) -> str:
    if not np.isfinite(m["mpjpe"]):
        return f"val step {step}: no finite validation labels ({m['skipped']} skipped)"
    warnings = "".join(f" | WARNING {w}" for w in collapse_warnings(m))
    return _val_numbers(step, m) + warnings


def _val_numbers(step: int, m: dict[str, float]) -> str:
    return (
        f"val step {step}: MPJPE {m['mpjpe']:.1f} mm (canonical {m['canonical_mpjpe']:.1f}, "
        f"PA {m['pa_mpjpe']:.1f}) | mean pose {m['mean_pose_mpjpe']:.1f}, oracle "
        f"{m['oracle_mpjpe']:.1f} | cosine {m['embedding_cosine']:.3f}, spread "
        f"{100 * m['spread_ratio']:.0f}% of GT"
    )


def _progress_bar(total: int, start: int, enabled: bool):  # noqa: ANN202
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, disable=not enabled, unit="step",
                dynamic_ncols=True, desc="train")
