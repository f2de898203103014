"""A mean teacher whose multi-view-averaged predictions label the unlabelled crops.

The teacher is an exponential moving average of the network (Tarvainen and Valpola, 2017).
Its canonical poses of the views of one instant are averaged: the canonical pose does not
depend on the camera, so the mean over views is a better estimate than any one view, and a
target the student cannot move by itself (the self-referenced version, ``pose_consistency``,
is satisfied by predicting the mean pose; docs/training.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mcss.losses import pose_loss


def build_teacher(model: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of ``model`` (parameters and BatchNorm statistics), never trained."""
    teacher = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    teacher.requires_grad_(False)
    return teacher


def instant_mean(poses: torch.Tensor, sequence: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
    """For each crop of ``poses`` ``(N, 17, 3)``, the mean pose of its instant (same
    ``sequence`` and ``time``, every camera in the batch), as ``(N, 17, 3)``."""
    _, group = torch.unique(torch.stack([sequence, time], 1), dim=0, return_inverse=True)
    sums = torch.zeros((int(group.max()) + 1, *poses.shape[1:]), dtype=poses.dtype,
                       device=poses.device).index_add_(0, group, poses)
    counts = torch.bincount(group).to(poses.dtype)
    return (sums / counts[:, None, None])[group]


@torch.no_grad()
def multiview_pseudo_labels(
    teacher: nn.Module, images: torch.Tensor, sequence: torch.Tensor, time: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """The teacher's canonical pose of each crop's instant, averaged over its views (mm), and
    the teacher's mean per-joint distance of one view from that average (its disagreement)."""
    teacher.eval()
    poses = teacher(images).pose_canonical.float()
    target = instant_mean(poses, sequence, time)
    disagreement = (poses - target).norm(dim=-1).mean().item()
    return target, disagreement


def teacher_loss(student_poses: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 from the student's canonical poses to the pseudo-labels, in metres (both in mm)."""
    return pose_loss(student_poses * 1e-3, target * 1e-3, "l1")
