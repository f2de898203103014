"""Checkpoints: bit-exact resume, atomic writes, pruning, clear errors, no unsafe loaders."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import CosineAnnealingLR

import mcss.checkpoint as ckpt
from mcss.checkpoint import (
    CheckpointError,
    best_checkpoint,
    checkpoint_step,
    latest_checkpoint,
    load_checkpoint,
    save_best,
    save_checkpoint,
)

SRC = Path(__file__).resolve().parents[1] / "src"


# --------------------------------------------------------------------------- helpers


def _make(seed: int, hidden: int = 16) -> tuple[nn.Module, AdamW, CosineAnnealingLR]:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(4, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(hidden, 2),
    )
    opt = AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    return model, opt, CosineAnnealingLR(opt, T_max=10)


def _batches(n: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 4, generator=gen), torch.randn(8, 2, generator=gen)) for _ in range(n)]


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the global state is what a checkpoint must restore)


def _train(model: nn.Module, opt: AdamW, sched: CosineAnnealingLR, batches: list) -> None:
    """A few steps drawing on all three global RNGs (dropout, noise) so RNG restore matters."""
    model.train()
    for x, y in batches:
        scale = 0.1 * random.random() * float(np.random.random())  # noqa: NPY002
        loss = F.mse_loss(model(x + scale * torch.randn_like(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def _snapshot(model: nn.Module, opt: AdamW) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    for pid, entry in opt.state_dict()["state"].items():
        out.update({f"opt.{pid}.{k}": v.clone() for k, v in entry.items()})
    return out


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def _leftovers(run_dir: Path) -> list[str]:
    return [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".tmp")]


# --------------------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train 3, save, train 3 more; the checkpoint and the reference end state."""
    run_dir = tmp_path_factory.mktemp("run")
    batches = _batches()
    model, opt, sched = _make(0)
    _seed_all(1)
    _train(model, opt, sched, batches[:3])
    extra = {"config": {"lr": 1e-2, "arch": "mlp"}, "loss": np.float32(0.5)}
    save_checkpoint(run_dir, 3, model, opt, sched, extra=extra)
    _train(model, opt, sched, batches[3:])
    return {"run_dir": run_dir, "batches": batches, "want": _snapshot(model, opt),
            "lr": sched.get_last_lr()}  # fmt: skip


def test_resume_is_bit_identical(resumed: dict) -> None:
    model, opt, sched = _make(123)
    _seed_all(999)  # the checkpoint must bring back its own RNG states
    info = load_checkpoint(resumed["run_dir"], model, opt, sched)
    assert info["step"] == 3
    assert info["extra"] == {"config": {"lr": 1e-2, "arch": "mlp"}, "loss": 0.5}
    assert info["path"].name == "step-00000003"
    assert opt.state[model[0].weight]["step"].dtype == torch.float32
    assert isinstance(opt.param_groups[0]["betas"], tuple)
    _train(model, opt, sched, resumed["batches"][3:])
    _assert_identical(_snapshot(model, opt), resumed["want"])
    assert sched.get_last_lr() == resumed["lr"]


def test_without_rng_restore_the_run_diverges(resumed: dict) -> None:
    model, opt, sched = _make(123)
    _seed_all(999)
    load_checkpoint(resumed["run_dir"], model, opt, sched, restore_rng=False)
    _train(model, opt, sched, resumed["batches"][3:])
    got = _snapshot(model, opt)
    assert not torch.equal(got["model.0.weight"], resumed["want"]["model.0.weight"])


def test_path_may_be_run_dir_checkpoints_dir_or_step_folder(resumed: dict) -> None:
    run_dir = resumed["run_dir"]
    step_dir = run_dir / "checkpoints" / "step-00000003"
    for path in (run_dir, run_dir / "checkpoints", step_dir):
        assert load_checkpoint(path, _make(5)[0], restore_rng=False)["path"] == step_dir
    assert latest_checkpoint(run_dir) == step_dir
    assert checkpoint_step(run_dir) == 3 == checkpoint_step(step_dir)


def test_on_disk_layout(resumed: dict) -> None:
    ckpt_dir = resumed["run_dir"] / "checkpoints"
    assert (ckpt_dir / "latest").read_text().strip() == "step-00000003"
    names = {p.name for p in (ckpt_dir / "step-00000003").iterdir()}
    assert names == {"model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"}


def test_shared_and_non_contiguous_tensors(tmp_path: Path) -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 3)
            self.b.weight = self.a.weight
            self.register_buffer("t", torch.arange(12.0).reshape(3, 4).t())

    model = Tied()
    save_checkpoint(tmp_path, 0, model)
    fresh = Tied()
    nn.init.zeros_(fresh.a.weight)
    fresh.t.zero_()
    load_checkpoint(tmp_path, fresh)
    assert torch.equal(fresh.a.weight, model.a.weight) and torch.equal(fresh.t, model.t)


# --------------------------------------------------------------------------- atomicity


def test_keep_last_and_latest(tmp_path: Path) -> None:
    model = _tiny()
    for step in range(1, 6):
        save_checkpoint(tmp_path, step, model, keep_last=2)
    ckpt_dir = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == [
        "latest",
        "step-00000004",
        "step-00000005",
    ]
    assert (ckpt_dir / "latest").read_text().strip() == "step-00000005"
    assert latest_checkpoint(tmp_path) == ckpt_dir / "step-00000005"


def test_saving_the_same_step_again_replaces_it(tmp_path: Path) -> None:
    model = _tiny()
    save_checkpoint(tmp_path, 7, model, extra={"v": 1})
    save_checkpoint(tmp_path, 7, model, extra={"v": 2})
    assert load_checkpoint(tmp_path, model)["extra"] == {"v": 2}
    assert _leftovers(tmp_path) == []


def test_best_survives_pruning_and_leaves_latest_alone(tmp_path: Path) -> None:
    model = _tiny()
    assert best_checkpoint(tmp_path) is None
    save_best(tmp_path, 2, model, {"metrics": {"step": 2}})
    for step in range(1, 5):
        save_checkpoint(tmp_path, step, model, keep_last=1)
    with torch.no_grad():
        model.weight.add_(1.0)
    save_best(tmp_path, 4, model, {"metrics": {"step": 4}})
    folder, extra = best_checkpoint(tmp_path)
    assert folder == tmp_path / "checkpoints" / "best" and extra == {"metrics": {"step": 4}}
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "rng.safetensors",
                                                        "state.json"]  # no optimizer state
    assert latest_checkpoint(tmp_path).name == "step-00000004"
    fresh = _tiny()
    assert load_checkpoint(folder, fresh, restore_rng=False)["step"] == 4
    assert torch.equal(fresh.weight, model.weight)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("crash_at", ["writer", "rename", "latest"])
def test_crash_during_save_keeps_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    model = _tiny()
    save_checkpoint(tmp_path, 1, model)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)

    def failing(real, fail_on: int):
        calls = iter(range(1, 100))

        def wrapper(*args, **kwargs):
            if next(calls) == fail_on:
                raise OSError("disk full (simulated)")
            return real(*args, **kwargs)

        return wrapper

    if crash_at == "writer":  # second safetensors file of the new folder
        monkeypatch.setattr(ckpt, "save_file", failing(ckpt.save_file, 2))
    else:  # 1st replace moves the folder into place, 2nd updates `latest`
        monkeypatch.setattr(os, "replace", failing(os.replace, 1 if crash_at == "rename" else 2))
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(tmp_path, 2, model)
    monkeypatch.undo()

    assert _leftovers(tmp_path) == []
    assert (tmp_path / "checkpoints" / "step-00000002").exists() == (crash_at == "latest")
    fresh = _tiny()
    with torch.no_grad():
        fresh.weight.zero_()
    assert load_checkpoint(tmp_path, fresh)["step"] == 1
    assert torch.equal(fresh.weight, before)


def test_latest_falls_back_when_its_folder_is_gone(tmp_path: Path) -> None:
    model = _tiny()
    save_checkpoint(tmp_path, 1, model)
    save_checkpoint(tmp_path, 2, model)
    (tmp_path / "checkpoints" / "latest").write_text("step-00000009\n")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step-00000002"


# --------------------------------------------------------------------------- errors


def test_other_architecture_names_mismatched_keys(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 1, nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))
    model = _make(0)[0]
    before = model[0].weight.detach().clone()
    with pytest.raises(CheckpointError, match="another architecture") as err:
        load_checkpoint(tmp_path, model)
    msg = str(err.value)
    assert (
        "model.safetensors" in msg
        and "0.weight" in msg
        and "1.running_mean not in checkpoint" in msg
    )
    assert torch.equal(model[0].weight, before)  # nothing was half-loaded


def test_nothing_to_resume(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match="nothing to resume"):
        load_checkpoint(tmp_path, _tiny())
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope", _tiny())


def test_missing_file_is_named(tmp_path: Path) -> None:
    model, opt, sched = _make(0)
    _train(model, opt, sched, _batches(1))
    folder = save_checkpoint(tmp_path, 1, model, opt, sched)
    (folder / "optimizer.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"optimizer\.safetensors is missing"):
        load_checkpoint(tmp_path, model, opt)


def test_asking_for_state_that_was_not_saved(tmp_path: Path) -> None:
    model, opt, _ = _make(0)
    save_checkpoint(tmp_path, 1, model)
    with pytest.raises(CheckpointError, match="pass optimizer=None"):
        load_checkpoint(tmp_path, model, opt)


def test_extra_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="JSON-able"):
        save_checkpoint(tmp_path, 1, _tiny(), extra={"bad": object()})
    assert _leftovers(tmp_path) == []
    assert latest_checkpoint(tmp_path) is None


# --------------------------------------------------------------------------- reliability rule

_PICKLE_RE = re.compile(
    r"\bpickle\.(load|Unpickler)|\bfrom\s+pickle\s+import|\bcPickle\b|allow_pickle\s*=\s*True"
)


def _unsafe_uses(text: str, allow_pickle: bool = False) -> list[str]:
    """``torch.load(`` calls lacking ``weights_only=True``; pickle loading unless allowed."""
    found = []
    for match in re.finditer(r"\btorch\.load\(", text):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        call = text[match.start() : end + 1]
        if not re.search(r"weights_only\s*=\s*True", call):
            found.append(call)
    if not allow_pickle:
        found += [m.group(0) for m in _PICKLE_RE.finditer(text)]
    return found


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("x = torch.load(f)", True),
        ("x = torch.load(\n    f, map_location='cpu', weights_only=True\n)", False),
        ("x = torch.load(f, weights_only=False)", True),
        ("obj = pickle.load(fh)", True),
        ("np.load(p, allow_pickle=True)", True),
    ],
)
def test_scanner_detects_unsafe_loaders(text: str, bad: bool) -> None:
    assert bool(_unsafe_uses(text)) == bad


def test_src_has_no_unsafe_deserialisation() -> None:
    offenders = {
        str(path.relative_to(SRC)): uses
        for path in sorted(SRC.rglob("*.py"))
        if (uses := _unsafe_uses(path.read_text(encoding="utf-8"), path.name == "safe_pickle.py"))
    }
    assert not offenders, (
        f"unsafe deserialisation in {offenders}: use safetensors, torch.load(..., "
        "weights_only=True), or mcss.safe_pickle.restricted_load"
    )
