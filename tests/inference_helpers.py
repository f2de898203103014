"""A tiny trained-looking checkpoint for the inference, search and export tests.

Built directly with :func:`mcss.checkpoint.save_checkpoint` (faster than training): the tiny
preset's network with the pose statistics of the tiny dataset, random output layers (so
poses vary from crop to crop) and BatchNorm statistics of real crops. Built once per test
session (``tests/conftest.py`` serves it as the ``tiny_checkpoint`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mcss.augment import to_tensor
from mcss.checkpoint import save_checkpoint
from mcss.config import resolve_config
from mcss.data.format import Dataset
from mcss.geometry import canonical_body_frame, to_canonical
from mcss.model import build_model

_BUILT: dict[tuple[Path, int], Path] = {}


def build_checkpoint(run: Path, data: Path, seed: int = 0, record_size: bool = True) -> Path:
    """Write ``run/checkpoints/step-00000001`` for the tiny preset on ``data``."""
    ds = Dataset(data)
    cfg = resolve_config("tiny", None, [f"seed={seed}"])
    torch.manual_seed(seed)
    model = build_model(cfg)
    poses = np.asarray(ds.joints_3d_camera[:], dtype=np.float64)
    poses -= poses[:, :1]
    model.set_pose_statistics(torch.from_numpy(to_canonical(poses)).float())
    model.set_view_statistics(torch.from_numpy(np.swapaxes(canonical_body_frame(poses), 1, 2))
                              .float())
    torch.nn.init.normal_(model.regressor[-1].weight, std=0.05)
    torch.nn.init.normal_(model.view_head[-1].weight, std=0.05)
    with torch.no_grad():
        model.train()(to_tensor(np.array(ds.images[::7])))
    extra = {"config": cfg.to_dict()}
    if record_size:
        extra["image_size"] = int(ds.meta["image_size"])
    return save_checkpoint(run, 1, model, extra=extra)


def cached_checkpoint(factory: pytest.TempPathFactory, data: Path, seed: int = 0) -> Path:
    """:func:`build_checkpoint` once per session and seed."""
    key = (data, seed)
    if key not in _BUILT:
        _BUILT[key] = build_checkpoint(factory.mktemp(f"ckpt{seed}") / "run", data, seed)
    return _BUILT[key]
