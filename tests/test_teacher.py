"""The mean teacher: EMA by hand, multi-view averaging by hand, exact resume, config checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mcss.checkpoint import CheckpointError
from mcss.config import ConfigError, resolve_config
from mcss.model import PoseOutput
from mcss.teacher import build_teacher, instant_mean, multiview_pseudo_labels, teacher_loss
from mcss.train import train


def _cfg(**overrides):
    values = {"steps": 4, "val_every": 2, "ckpt_every": 2, "lam": 0.5, "teacher": 1.0,
              "teacher_start": 1, "teacher_decay": 0.5, **overrides}
    return resolve_config("tiny", overrides=[f"{k}={v}" for k, v in values.items()])


def _latest(run: Path, name: str) -> dict[str, torch.Tensor]:
    step = (run / "checkpoints" / "latest").read_text().strip()
    return load_file(run / "checkpoints" / step / name)


def test_teacher_is_an_exponential_moving_average() -> None:
    student = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        student.weight.fill_(1.0)
    teacher = build_teacher(student, decay=0.9)
    teacher.update_parameters(student)  # the first update copies
    with torch.no_grad():
        student.weight.fill_(3.0)
    teacher.update_parameters(student)
    assert torch.allclose(teacher.module.weight, torch.full((1, 2), 0.9 * 1 + 0.1 * 3))
    assert not any(p.requires_grad for p in teacher.parameters())


def test_instant_mean_averages_the_views_of_each_instant() -> None:
    poses = torch.zeros(5, 17, 3)
    poses[1] += 2.0  # (seq 0, t 5): views 0 and 2 -> 1
    poses[3] += 4.0  # (seq 1, t 5): views 0 and 4 -> 2; (seq 1, t 6) alone stays itself
    poses[4] += 9.0
    mean = instant_mean(poses, torch.tensor([0, 0, 1, 1, 1]), torch.tensor([5, 5, 5, 5, 6]))
    assert mean[:, 0, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 9.0]


class _Fixed(torch.nn.Module):
    """A 'network' whose canonical pose of crop i is the crop's first pixel, in every joint."""

    def forward(self, images: torch.Tensor) -> PoseOutput:
        pose = images[:, :1, :1, :1].reshape(-1, 1, 1).expand(-1, 17, 3)
        return PoseOutput(feature=pose[:, 0], embedding=pose[:, 0], pose_camera=pose,
                          pose_canonical=pose, rotation=None)


def test_pseudo_labels_and_loss_by_hand() -> None:
    images = torch.zeros(4, 3, 2, 2)
    images[:, 0, 0, 0] = torch.tensor([100.0, 300.0, 50.0, 50.0])  # mm
    target, disagreement = multiview_pseudo_labels(
        _Fixed(), images, torch.tensor([0, 0, 1, 1]), torch.tensor([3, 3, 3, 3]))
    assert target[:, 0, 0].tolist() == [200.0, 200.0, 50.0, 50.0]
    assert disagreement == pytest.approx((100 * 3**0.5) * 2 / 4)  # all three axes off by 100
    student = torch.full((4, 17, 3), 200.0)
    assert teacher_loss(student, target).item() == pytest.approx((0 + 0 + 0.15 + 0.15) / 4)


def test_teacher_run_logs_saves_and_resumes_exactly(tiny_dataset, tmp_path) -> None:
    whole = tmp_path / "whole"
    train(tiny_dataset, whole, _cfg(), progress=False)
    log = (whole / "metrics.csv").read_text()
    assert "loss_teacher" in log and "teacher_disagreement" in log
    teacher = _latest(whole, "teacher.safetensors")
    student = _latest(whole, "model.safetensors")
    assert int(teacher["n_averaged"]) == 4
    assert not torch.equal(teacher["module.embed.weight"], student["embed.weight"])  # it lags

    stopped = tmp_path / "stopped"
    train(tiny_dataset, stopped, _cfg(steps=2), progress=False)
    train(tiny_dataset, stopped, _cfg(), resume=True, progress=False)
    for name in ("model.safetensors", "teacher.safetensors"):
        a, b = _latest(whole, name), _latest(stopped, name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_teacher_changes_the_training_only_from_its_start(tiny_dataset, tmp_path) -> None:
    train(tiny_dataset, tmp_path / "late", _cfg(teacher_start=4), progress=False)
    train(tiny_dataset, tmp_path / "none", _cfg(teacher=0), progress=False)
    train(tiny_dataset, tmp_path / "early", _cfg(), progress=False)
    late, none = _latest(tmp_path / "late", "model.safetensors"), _latest(tmp_path / "none",
                                                                            "model.safetensors")
    early = _latest(tmp_path / "early", "model.safetensors")
    assert all(torch.equal(late[k], none[k]) for k in none)  # never active in 4 steps
    assert not all(torch.equal(early[k], none[k]) for k in none)


def test_teacher_config_is_checked() -> None:
    assert _cfg(lam=0).uses_unlabelled  # pseudo-labels need the unlabelled actors
    with pytest.raises(ConfigError, match="teacher_decay"):
        _cfg(teacher_decay=1)
    with pytest.raises(ConfigError, match="pose_frame=canonical"):
        _cfg(pose_frame="camera")
    with pytest.raises(ConfigError, match="teacher"):
        _cfg(teacher=-1)


def test_resuming_a_run_without_teacher_as_a_teacher_run_says_why(tiny_dataset, tmp_path) -> None:
    run = tmp_path / "plain"
    train(tiny_dataset, run, _cfg(teacher=0, steps=2), progress=False)
    with pytest.raises(CheckpointError, match="holds no mean teacher"):
        train(tiny_dataset, run, _cfg(), resume=True, progress=False)
