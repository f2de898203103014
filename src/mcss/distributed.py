"""Multi-process training on PyTorch's own engine (``torchrun`` + ``torch.distributed``).

One process per device. ``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without
them the run is a world of size 1 and every collective here is the identity, so single-process
training is the same code path.

The method must not change with the number of processes: each rank embeds its share of the
global multi-view batch, :func:`gather_with_grad` assembles the global batch (in rank order,
which is the single-process order) for mining and the triplet loss, and BatchNorm normalises
with global batch statistics. Every collective with a backward *sums* the gradients that the
ranks' (identical) losses send back; DDP then averages parameter gradients over ranks, so the
result is the gradient of the single-process loss.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from mcss.config import ConfigError


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, validation results and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this rank's GPU when CUDA is available, else the CPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda; got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for but no CUDA GPU is available; "
                         "use --device cpu or auto")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def start(device: str = "auto") -> Runtime:
    """Join the process group ``torchrun`` describes in the environment (if any).

    NCCL on GPUs, gloo on CPUs; rendezvous (single or multi-node) is torchrun's, through
    ``MASTER_ADDR``/``MASTER_PORT`` or its ``--rdzv-*`` flags.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = pick_device(device, local_rank)
    if world_size == 1:
        return Runtime(device=target)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
    return Runtime(dist.get_rank(), dist.get_world_size(), target)


def stop(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0; backward sums the gradients of every rank and returns this
    rank's slice (every rank's loss reads every rank's items)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.rank, ctx.world = dist.get_rank(), dist.get_world_size()
        parts = [torch.empty_like(x) for _ in range(ctx.world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad.chunk(ctx.world)[ctx.rank]


class _SumWithGrad(torch.autograd.Function):
    """All-reduce (sum) whose backward is again a sum over ranks."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001, ARG004
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001, ARG004
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """The global batch from every rank's equal-sized share, gradients flowing back to the
    local share; the identity in a single process."""
    return _GatherWithGrad.apply(x) if _active() else x


def gather(x: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 without gradients (keys, labels)."""
    if not _active():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average logged numbers over ranks, so logs read as the single-process run's."""
    if not _active() or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(values, (t / dist.get_world_size()).tolist(), strict=True))


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on one (e.g. a stop signal reached one process)."""
    if not _active():
        return flag
    t = torch.tensor([float(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the global batch on any backend (``nn.SyncBatchNorm`` is GPU-only).

    In training the per-channel sums over every rank's share give the mean and the biased
    variance used to normalise and the unbiased one for the running estimate, as
    ``nn.BatchNorm2d`` would compute on the concatenated batch. Its state dict is
    BatchNorm2d's, so checkpoints move freely between world sizes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _active()):
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        sums = _SumWithGrad.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        c = x.shape[1]
        n = sums[-1]
        mean = sums[:c] / n
        var = (sums[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1 / float(
                    self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp_min(1), m)
        shape = (1, c, 1, 1)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def global_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm2d normalise over the global batch (SyncBatchNorm on GPUs)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            replacement = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum,
                                            child.affine, child.track_running_stats)
            replacement.load_state_dict(child.state_dict())
            setattr(model, name, replacement)
        else:
            global_batchnorm(child, device)
    return model
