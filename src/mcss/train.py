"""The MCSS training loop, readable top to bottom.

Each step: one labelled batch (pose loss on the canonical pose, plus the camera-frame pose
that trains the view head) and, when ``lam > 0`` or ``forward_unlabelled`` is set, one
multi-view unlabelled batch (triplet loss with temporal hard negatives, weight ``lam``).
``lam = 0`` is the baseline: the same code path, schedule, batches and augmentation.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from mcss import distributed
from mcss.checkpoint import best_checkpoint, load_checkpoint, save_best, save_checkpoint
from mcss.config import TrainConfig, save_config
from mcss.data.format import Dataset
from mcss.data.training import TrainBatches, make_split
from mcss.evaluate import Validator
from mcss.geometry import canonical_body_frame, to_canonical
from mcss.losses import TripletLoss, pose_loss
from mcss.mining import TemporalHardNegativeMiner
from mcss.model import PoseNet, PoseOutput, build_model, load_backbone_init
from mcss.runlog import RunLog, StopRequest, progress_bar, val_line
from mcss.teacher import build_teacher, instant_mean, multiview_pseudo_labels, teacher_loss


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                               weight_decay=cfg.weight_decay, foreach=True)
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                             foreach=True)


def initial_model(cfg: TrainConfig, labels_camera: np.ndarray) -> PoseNet:
    """The untrained network: outputs normalised by the labelled poses ``(N, 17, 3)``, the
    view head started at their mean rotation, the backbone from ``cfg.init`` if given."""
    model = build_model(cfg)
    stats_poses = labels_camera if cfg.pose_frame == "camera" else to_canonical(labels_camera)
    model.set_pose_statistics(torch.from_numpy(stats_poses).float())
    frames = canonical_body_frame(labels_camera)  # rows: body axes in camera coordinates
    model.set_view_statistics(torch.from_numpy(np.swapaxes(frames, 1, 2)).float())
    if cfg.init:
        load_backbone_init(model, Path(cfg.init))
    return model


def build_triplet_loss(cfg: TrainConfig) -> TripletLoss:
    return TripletLoss(TemporalHardNegativeMiner(
        min_gap=cfg.min_gap, max_gap=cfg.max_gap, strategy=cfg.strategy, margin=cfg.margin,
        other_sequences=cfg.other_sequences, negative_camera=cfg.negative_camera),
        margin=cfg.margin)


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
    """Weight of the triplet loss at ``step``: ``lam``, reached linearly from ``lam_initial``
    over the first ``lam_warmup_steps`` when configured (a ramp up from 0 by default; from
    above, the multi-view term leads before the pose fit takes over)."""
    if cfg.lam_warmup_steps and step < cfg.lam_warmup_steps:
        done = (step + 1) / cfg.lam_warmup_steps
        return cfg.lam_initial + (cfg.lam - cfg.lam_initial) * done
    return cfg.lam


def training_step(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], triplet: TripletLoss,
    cfg: TrainConfig, lam: float, teacher: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one step. Labelled and unlabelled crops go through the network together, so
    BatchNorm sees the same mixture in MCSS and in the ``forward_unlabelled`` control.
    In a multi-process run ``batch`` is this rank's share; the triplet term sees the
    global batch. ``adversary`` and ``pose_consistency`` add their terms when set, a
    ``teacher`` (from ``cfg.teacher_start`` on) its pseudo-labels."""
    n_lab = len(batch["images"])
    images = batch["images"]
    if cfg.uses_unlabelled:
        images = torch.cat([images, batch["unlabelled_images"]])
    if cfg.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with _autocast(cfg, images.device):
        out = model(images)
    if cfg.precision != "fp32":  # losses in float32
        out = PoseOutput(**{k: None if v is None else v.float() for k, v in vars(out).items()})
    loss, stats = _pose_terms(out, batch, cfg, n_lab)
    loss, stats = _with_triplet(loss, stats, out, batch, triplet, lam, n_lab)
    if cfg.adversary > 0:
        loss, stats = _with_adversary(loss, stats, out, n_lab, cfg.adversary)
    if cfg.pose_consistency > 0:
        term = pose_consistency_loss(out.pose_canonical[n_lab:] * 1e-3, batch["sequence"],
                                     batch["time"])
        loss = loss + cfg.pose_consistency * term
        stats["loss_consistency"] = term.item()
    if teacher is not None:
        loss, stats = _with_teacher(loss, stats, out.pose_canonical[n_lab:], images[n_lab:],
                                    batch, teacher, cfg)
    stats["loss"] = loss.item()
    return loss, stats


def _pose_terms(
    out: PoseOutput, batch: dict[str, torch.Tensor], cfg: TrainConfig, n_lab: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """Pose loss of the labelled part of the batch (in metres, the triplet loss's scale)."""
    metres = 1e-3
    target_camera = batch["pose_camera"] * metres
    if out.rotation is None:  # the camera-frame ablation: the regressor predicts it directly
        loss = pose_loss(out.pose_camera[:n_lab] * metres, target_camera, cfg.pose_loss)
        return loss, {"loss_camera": loss.item()}
    # The regressor learns the canonical pose; the view head learns the rotation that takes
    # the true canonical pose to the true camera-frame pose. Kept apart, an early, wrong
    # rotation cannot drag the canonical prediction towards the mean pose.
    target_canonical = batch["pose_canonical"] * metres
    loss_canonical = pose_loss(out.pose_canonical[:n_lab] * metres, target_canonical,
                               cfg.pose_loss)
    rotated = target_canonical @ out.rotation[:n_lab].transpose(1, 2)
    loss_view = pose_loss(rotated, target_camera, cfg.pose_loss)
    stats = {"loss_canonical": loss_canonical.item(), "loss_view": loss_view.item()}
    return loss_canonical + cfg.view_weight * loss_view, stats


def pose_consistency_loss(poses: torch.Tensor, sequence: torch.Tensor,
                          time: torch.Tensor) -> torch.Tensor:
    """L1 between each crop's canonical pose ``(N, 17, 3)`` and the detached mean of the poses
    of its instant (same ``sequence`` and ``time``, other cameras): the canonical pose does
    not depend on the view, so the views of one instant must agree (Rhodin et al., 2018)."""
    return pose_loss(poses, instant_mean(poses.detach(), sequence, time), "l1")


def _with_teacher(
    loss: torch.Tensor, stats: dict[str, float], poses: torch.Tensor, unlabelled: torch.Tensor,
    batch: dict[str, torch.Tensor], teacher: torch.nn.Module, cfg: TrainConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Add the distance of the unlabelled crops' canonical ``poses`` to the teacher's
    multi-view-averaged ones; log how far the teacher's views are from their average."""
    with _autocast(cfg, unlabelled.device):
        target, disagreement = multiview_pseudo_labels(teacher, unlabelled, batch["sequence"],
                                                       batch["time"])
    term = teacher_loss(poses, target)
    return (loss + cfg.teacher * term,
            stats | {"loss_teacher": term.item(), "teacher_disagreement": disagreement})


def _with_adversary(
    loss: torch.Tensor, stats: dict[str, float], out: PoseOutput, n_lab: int, weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Add the labelled-vs-unlabelled discriminator's loss; its gradient reaches the network
    reversed, so the embedding learns to hide which actor is the labelled one."""
    target = torch.zeros_like(out.actor_logit)
    target[:n_lab] = 1.0
    bce = F.binary_cross_entropy_with_logits(out.actor_logit, target)
    with torch.no_grad():
        accuracy = ((out.actor_logit > 0).float() == target).float().mean().item()
    return loss + weight * bce, stats | {"loss_adversary": bce.item(), "adv_acc": accuracy}


def _with_triplet(
    loss: torch.Tensor, stats: dict[str, float], out: PoseOutput, batch: dict[str, torch.Tensor],
    triplet: TripletLoss, lam: float, n_lab: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Add ``lam`` times the triplet loss of the unlabelled part of the batch."""
    # A zero term keeps the embedding head in every step's graph, as DDP requires, also when
    # it feeds only the triplet loss (regress_from=feature) and that loss is absent.
    loss = loss + 0.0 * out.embedding.sum()
    if lam > 0:
        g = distributed.gather
        loss_triplet, tstats = triplet(distributed.gather_with_grad(out.embedding[n_lab:]),
                                       g(batch["sequence"]), g(batch["time"]), g(batch["camera"]))
        loss = loss + lam * loss_triplet
        stats |= {"lam": lam, "loss_triplet": loss_triplet.item(),
                  "active": tstats["active_fraction"],
                  "triplets": tstats["num_triplets"], "d_ap": tstats["mean_pos_dist"],
                  "d_an": tstats["mean_neg_dist"]}
    return loss, stats


def _autocast(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def train(
    data: Path, run: Path, cfg: TrainConfig, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train on the dataset folder ``data`` into the run folder ``run``; returns the last
    validation metrics. With ``resume``, continue from the run's latest checkpoint (written
    by any number of processes). Under ``torchrun`` every process calls this; rank 0 writes."""
    rt = distributed.start(cfg.device)
    try:
        return _train(data, run, cfg, resume, progress, rt)
    finally:
        distributed.stop(rt)


def _train(
    data: Path, run: Path, cfg: TrainConfig, resume: bool, progress: bool,
    rt: distributed.Runtime,
) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    ds = Dataset(data)
    split = make_split(ds, cfg)
    batches = TrainBatches(ds, split, cfg, rt.rank, rt.world_size)
    model = initial_model(cfg, batches.labels)
    net = _placed(model, cfg, rt)  # before the optimizer: global BatchNorm swaps modules
    optimizer = build_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
    triplet = build_triplet_loss(cfg)
    teacher = build_teacher(model, cfg.teacher_decay) if cfg.teacher > 0 else None
    validate = (Validator(ds, split.validation, batches.labels, split.labelled) if rt.is_main
                else None)
    start = (load_checkpoint(run, model, optimizer, scheduler, teacher=teacher)["step"]
             if resume else 0)
    if rt.is_main:  # only now: a bad config or checkpoint leaves the run folder untouched
        run.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run / "config.yaml")
    scaler = torch.amp.GradScaler(rt.device.type, enabled=cfg.precision == "fp16")
    loader = DataLoader(batches, sampler=range(start, cfg.steps), batch_size=None,
                        num_workers=cfg.num_workers, pin_memory=rt.device.type == "cuda")
    log = RunLog(run) if rt.is_main else None
    if log:
        log.truncate_after(start)
    bar = progress_bar(cfg.steps, start, progress and rt.is_main)
    metrics: dict[str, Any] = {}
    best = _best_so_far(run, start) if rt.is_main else math.inf
    tic, window = time.perf_counter(), 0
    with StopRequest() as stop:
        for step, batch in enumerate(loader, start=start):
            net.train()
            batch = {k: v.to(rt.device, non_blocking=True) for k, v in batch.items()}
            teaching = teacher if teacher is not None and step >= cfg.teacher_start else None
            loss, stats = training_step(net, batch, triplet, cfg, lam_at(cfg, step), teaching)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"step {step}: loss is {float(loss)}; lower lr or "
                                         "check the labels for NaN")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if teacher is not None:
                teacher.update_parameters(model)
            done, window = step + 1, window + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                stats = distributed.mean_over_ranks(stats)
                rate = window / (time.perf_counter() - tic)
                if log:
                    log.write(done, "train", stats | {"lr": scheduler.get_last_lr()[0],
                                                      "steps_per_s": rate})
                bar.set_postfix(loss=f"{stats['loss']:.4f}", steps_s=f"{rate:.2f}")
                tic, window = time.perf_counter(), 0
            if validate and (done % cfg.val_every == 0 or done == cfg.steps):
                metrics = validate(model) | {"step": done}
                log.write(done, "val", metrics)
                bar.write(val_line(done, metrics))
                if cfg.keep_best and metrics[BEST_METRIC] < best:
                    best = metrics[BEST_METRIC]
                    save_best(run, done, model, _checkpoint_extra(cfg, ds, metrics))
            stopping = distributed.any_rank(stop.signal is not None)
            if rt.is_main and (done % cfg.ckpt_every == 0 or done == cfg.steps or stopping):
                save_checkpoint(run, done, model, optimizer, scheduler,
                                _checkpoint_extra(cfg, ds, metrics), cfg.keep_last, teacher)
            bar.update(1)
            if stopping:
                bar.close()
                raise KeyboardInterrupt(f"stopped by signal {stop.signal} after step {done}; "
                                        f"checkpoint saved, continue with --resume")
    bar.close()
    if rt.is_main:
        (run / "final_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


BEST_METRIC = "canonical_mpjpe"  # on the validation subjects, never the test split


def _checkpoint_extra(cfg: TrainConfig, ds: Dataset, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"config": cfg.to_dict(), "metrics": metrics, "image_size": int(ds.meta["image_size"])}


def _best_so_far(run: Path, start: int) -> float:
    """The validation score a new ``best`` must beat: the saved one when resuming at or after
    its step; otherwise none (a fresh run's first validation replaces any old ``best``)."""
    found = best_checkpoint(run) if start > 0 and run.exists() else None
    if found is None or found[1].get("metrics", {}).get("step", math.inf) > start:
        return math.inf
    return float(found[1]["metrics"][BEST_METRIC])


def _placed(model: PoseNet, cfg: TrainConfig, rt: distributed.Runtime) -> torch.nn.Module:
    """The model on its device, in its memory format, wrapped for data parallelism."""
    model.to(rt.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if not rt.distributed:
        return model
    distributed.global_batchnorm(model, rt.device)
    ids = [rt.device.index] if rt.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
