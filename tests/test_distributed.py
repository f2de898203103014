"""Multi-process training: 2 gloo processes on the CPU give the single-process step, the
triplet term mines over the global batch, and runs resume across world sizes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mcss.config import ConfigError, resolve_config
from mcss.data.batches import shard
from mcss.data.format import Dataset
from mcss.data.training import TrainBatches, make_split
from mcss.train import train

TINY = ["--preset", "tiny", "--set", "lam=0.5", "--set", "log_every=1", "--set", "ckpt_every=1",
        "--device", "cpu", "--no-progress"]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _cfg(**overrides):
    values = {"lam": 0.5, "log_every": 1, "ckpt_every": 1, "device": "cpu", **overrides}
    return resolve_config("tiny", overrides=[f"{k}={v}" for k, v in values.items()])


def _weights(run: Path) -> dict[str, torch.Tensor]:
    latest = (run / "checkpoints" / "latest").read_text().strip()
    return load_file(run / "checkpoints" / latest / "model.safetensors")


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _logged(run: Path, name: str) -> list[float]:
    with (run / "metrics.csv").open() as f:
        return [float(r["value"]) for r in csv.DictReader(f)
                if r["kind"] == "train" and r["name"] == name]


def test_shares_are_whole_groups_and_cover_the_batch() -> None:
    parts = [shard(6, 3, rank, 3) for rank in range(3)]
    assert parts == [slice(0, 6), slice(6, 12), slice(12, 18)]
    with pytest.raises(ValueError, match="cannot be shared equally"):
        shard(5, 2, 0, 2)


def test_union_of_rank_batches_is_the_single_process_batch(tiny_dataset: Path) -> None:
    ds, cfg = Dataset(tiny_dataset), _cfg()
    split = make_split(ds, cfg)
    whole = TrainBatches(ds, split, cfg)[3]
    shares = [TrainBatches(ds, split, cfg, rank, 2)[3] for rank in range(2)]
    for key, value in whole.items():
        assert torch.equal(torch.cat([s[key] for s in shares]), value), key
    v = cfg.n_views  # each share holds whole (sequence, instant) groups of V views
    for s in shares:
        keys = torch.stack([s["sequence"], s["time"]], 1).view(-1, v, 2)
        assert (keys == keys[:, :1]).all()


def test_uneven_share_is_a_clear_config_error(tiny_dataset: Path) -> None:
    ds, cfg = Dataset(tiny_dataset), _cfg(batch_labelled=7)
    with pytest.raises(ConfigError, match="batch_labelled = 7 must be divisible"):
        TrainBatches(ds, make_split(ds, cfg), cfg, 0, 2)


def test_two_gloo_processes_take_the_single_process_step(tiny_dataset: Path,
                                                         tmp_path: Path) -> None:
    """SGD's update is linear in the gradient, so the weights show the gradients agree."""
    _torchrun(["-m", "mcss", "train", "--data", str(tiny_dataset), "--out", "two", *TINY,
               "--set", "steps=1", "--set", "optimizer=sgd"], tmp_path)
    train(tiny_dataset, tmp_path / "one", _cfg(steps=1, optimizer="sgd"), progress=False)
    two, one = tmp_path / "two", tmp_path / "one"
    assert _logged(two, "loss") == pytest.approx(_logged(one, "loss"), abs=1e-5)
    assert _logged(two, "loss_triplet")[0] > 0  # the metric term took part
    assert _max_difference(_weights(two), _weights(one)) < 1e-5


def test_adamw_step_matches_but_for_near_zero_gradients(tiny_dataset: Path,
                                                        tmp_path: Path) -> None:
    """AdamW's first update is lr * g / (|g| + eps): for the few weights whose gradient is
    about as small as float32 rounding, the sign of that rounding decides the step, so those
    may differ by up to 2 lr; every other weight agrees to 1e-5."""
    _torchrun(["-m", "mcss", "train", "--data", str(tiny_dataset), "--out", "two", *TINY,
               "--set", "steps=1"], tmp_path)
    train(tiny_dataset, tmp_path / "one", _cfg(steps=1), progress=False)
    two, one = _weights(tmp_path / "two"), _weights(tmp_path / "one")
    differences = torch.cat([(two[k].double() - one[k].double()).abs().flatten() for k in two])
    assert (differences > 1e-5).float().mean() < 1e-4
    assert differences.max() <= 2 * _cfg().lr


def test_resume_with_another_world_size(tiny_dataset: Path, tmp_path: Path) -> None:
    _torchrun(["-m", "mcss", "train", "--data", str(tiny_dataset), "--out", "run", *TINY,
               "--set", "steps=2", "--set", "optimizer=sgd"], tmp_path)
    run = tmp_path / "run"
    train(tiny_dataset, run, _cfg(steps=3, optimizer="sgd"), resume=True, progress=False)
    train(tiny_dataset, tmp_path / "one", _cfg(steps=3, optimizer="sgd"), progress=False)
    assert _max_difference(_weights(run), _weights(tmp_path / "one")) < 1e-5
    assert len(_logged(run, "loss")) == 3


def test_projection_head_baseline_runs_under_ddp(tiny_dataset: Path, tmp_path: Path) -> None:
    """With regress_from=feature and lam=0 the embedding head feeds no loss; DDP used to stop
    at the second step ("parameters that were not used in producing loss")."""
    _torchrun(["-m", "mcss", "train", "--data", str(tiny_dataset), "--out", "run", *TINY,
               "--set", "steps=3", "--set", "lam=0", "--set", "regress_from=feature"], tmp_path)
    assert len(_logged(tmp_path / "run", "loss")) == 3


WORKER = textwrap.dedent("""
    import json
    import torch, torch.distributed as dist
    from torch import nn
    from mcss import distributed
    from mcss.mining import TemporalHardNegativeMiner

    rt = distributed.start("cpu")
    rank, world = rt.rank, rt.world_size
    torch.manual_seed(0)
    everything = torch.randn(8, 4, dtype=torch.float64)  # 4 items per rank
    mine = everything[4 * rank: 4 * rank + 4].clone().requires_grad_(True)
    gathered = distributed.gather_with_grad(mine)
    (gathered * torch.arange(32.0, dtype=torch.float64).view(8, 4)).sum().backward()

    # One sequence; rank 0 holds times 0 and 1, rank 1 times 10 and 11, two views each.
    seq = torch.zeros(4, dtype=torch.long)
    time = torch.tensor([0, 0, 1, 1]) + 10 * rank
    cam = torch.tensor([0, 1, 0, 1])
    g = distributed.gather
    triplets = TemporalHardNegativeMiner(min_gap=4, strategy="all")(
        distributed.gather(mine.detach()), g(seq), g(time), g(cam))
    anchors_here = triplets.anchor < 4
    other_rank_negatives = (triplets.negative[anchors_here] >= 4).float().mean().item()

    bn = nn.BatchNorm2d(3)
    distributed.global_batchnorm(bn_holder := nn.Sequential(bn), rt.device)
    torch.manual_seed(1)
    images = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    part = images[2 * rank: 2 * rank + 2].clone().requires_grad_(True)
    bn_holder.double()
    out = bn_holder(part)
    (out * torch.arange(out.numel(), dtype=torch.float64).view_as(out)).sum().backward()
    open(f"result{rank}.json", "w").write(json.dumps({"rank": rank, "grad": mine.grad.tolist(),
                      "gathered": gathered.tolist(), "others": other_rank_negatives,
                      "bn_out": out.tolist(), "bn_grad": part.grad.tolist(),
                      "running_var": bn_holder[0].running_var.tolist()}))
    distributed.stop(rt)
""")


@pytest.fixture(scope="module")
def worker_results(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict]:
    folder = tmp_path_factory.mktemp("worker")
    (folder / "worker.py").write_text(WORKER)
    _torchrun(["worker.py"], folder)
    return {rank: json.loads((folder / f"result{rank}.json").read_text()) for rank in (0, 1)}


def test_gather_with_grad_assembles_the_global_batch(worker_results) -> None:
    torch.manual_seed(0)
    everything = torch.randn(8, 4, dtype=torch.float64)
    weights = torch.arange(32.0, dtype=torch.float64).view(8, 4)
    for rank, result in worker_results.items():
        assert torch.allclose(torch.tensor(result["gathered"], dtype=torch.float64), everything)
        # Each rank's loss reads every item: the sum over the 2 ranks' losses comes back.
        expected = 2 * weights[4 * rank: 4 * rank + 4]
        assert torch.equal(torch.tensor(result["grad"], dtype=torch.float64), expected)


def test_gathered_negatives_include_the_other_ranks_items(worker_results) -> None:
    # Rank 0's items (times 0, 1) have no negative >= 4 frames away on rank 0: every
    # negative of theirs is one of rank 1's items (times 10, 11), found only after gathering.
    for result in worker_results.values():
        assert result["others"] == 1.0


def test_global_batchnorm_equals_batchnorm_on_the_whole_batch(worker_results) -> None:
    torch.manual_seed(1)
    images = torch.randn(4, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    bn = torch.nn.BatchNorm2d(3).double()
    out = bn(images)
    share = out.numel() // 2
    weights = torch.arange(share, dtype=torch.float64).repeat(2).view_as(out)
    (out * weights).sum().backward()
    for rank, result in worker_results.items():
        part = slice(2 * rank, 2 * rank + 2)
        assert torch.allclose(torch.tensor(result["bn_out"], dtype=torch.float64), out[part])
        assert torch.allclose(torch.tensor(result["bn_grad"], dtype=torch.float64),
                              images.grad[part])
        assert torch.allclose(torch.tensor(result["running_var"], dtype=torch.float64),
                              bn.running_var)


def test_mixed_precision_and_channels_last_run_on_the_cpu(tiny_dataset: Path,
                                                          tmp_path: Path) -> None:
    """bf16 autocast and NHWC change the arithmetic, not the method: the step runs, the
    losses stay finite and within 15% of the float32 step's (measured: 8%)."""
    train(tiny_dataset, tmp_path / "bf16", _cfg(steps=1, precision="bf16",
                                                channels_last="true"), progress=False)
    train(tiny_dataset, tmp_path / "fp32", _cfg(steps=1), progress=False)
    low, full = _logged(tmp_path / "bf16", "loss")[0], _logged(tmp_path / "fp32", "loss")[0]
    assert np.isfinite(low) and abs(low - full) < 0.15 * full  # bf16 keeps 8 mantissa bits
