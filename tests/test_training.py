"""Training on the tiny synthetic dataset: determinism, exact resume, label budget, learning."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mcss.checkpoint import best_checkpoint
from mcss.config import ConfigError, resolve_config
from mcss.data.batches import MultiViewBatchSampler
from mcss.data.format import Dataset
from mcss.data.training import TrainBatches, make_split
from mcss.evaluate import load_trained
from mcss.mining import mine_triplets
from mcss.train import pose_consistency_loss, train


def _cfg(**overrides):
    values = {"steps": 4, "val_every": 2, "ckpt_every": 2, **overrides}
    sets = [f"{k}={v}" for k, v in values.items()]
    return resolve_config("tiny", overrides=sets)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    latest = (run / "checkpoints" / "latest").read_text().strip()
    return load_file(run / "checkpoints" / latest / "model.safetensors")


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def mcss_run(tiny_dataset: Path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "mcss"
    train(tiny_dataset, run, _cfg(lam=0.5), progress=False)
    return run


def test_same_seed_gives_bit_identical_weights(tiny_dataset, mcss_run, tmp_path) -> None:
    train(tiny_dataset, tmp_path / "again", _cfg(lam=0.5), progress=False)
    assert _same(_weights(mcss_run), _weights(tmp_path / "again"))
    train(tiny_dataset, tmp_path / "seed1", _cfg(lam=0.5, seed=1), progress=False)
    assert not _same(_weights(mcss_run), _weights(tmp_path / "seed1"))


def test_resume_is_identical_to_an_uninterrupted_run(tiny_dataset, mcss_run, tmp_path) -> None:
    run = tmp_path / "stopped"
    train(tiny_dataset, run, _cfg(lam=0.5, steps=2), progress=False)
    cfg = _cfg(lam=0.5)
    train(tiny_dataset, run, cfg, resume=True, progress=False)
    assert _same(_weights(mcss_run), _weights(run))
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    keys = [tuple(r.split(",")[:3]) for r in rows]
    assert len(keys) == len(set(keys))  # no step logged twice across the resume
    assert best_checkpoint(run)[1]["metrics"] == best_checkpoint(mcss_run)[1]["metrics"]


def test_best_checkpoint_holds_the_lowest_validation_error(tiny_dataset, mcss_run,
                                                           tmp_path) -> None:
    rows = [r.split(",") for r in (mcss_run / "metrics.csv").read_text().splitlines()[1:]]
    val = {int(r[0]): float(r[3]) for r in rows if r[1:3] == ["val", "canonical_mpjpe"]}
    folder, extra = best_checkpoint(mcss_run)
    assert extra["metrics"]["step"] == min(val, key=val.get)
    assert extra["metrics"]["canonical_mpjpe"] == pytest.approx(min(val.values()), rel=1e-5)
    assert load_trained(folder)[2] == folder  # mcss eval RUN/checkpoints/best works
    train(tiny_dataset, tmp_path / "nobest", _cfg(lam=0.5, steps=2, keep_best=False),
          progress=False)
    assert best_checkpoint(tmp_path / "nobest") is None


def test_unlabelled_labels_are_never_read(tiny_dataset, mcss_run, tmp_path) -> None:
    """Poison test: NaN 3D labels on every frame outside the budget change nothing."""
    poisoned = tmp_path / "poisoned"
    shutil.copytree(tiny_dataset, poisoned)
    ds = Dataset(poisoned)
    columns = dict(ds.columns)
    outside = ds.subjects != "S1"
    for name in ("joints_3d_camera", "joints_3d_world"):
        columns[name] = columns[name].copy()
        columns[name][outside] = np.nan
    np.savez(poisoned / "annotations.npz", **columns)
    metrics = train(poisoned, tmp_path / "run", _cfg(lam=0.5), progress=False)
    assert _same(_weights(mcss_run), _weights(tmp_path / "run"))
    assert np.isnan(metrics["mpjpe"])  # validation subject S8 is poisoned too: nothing hidden


def test_baseline_and_control_differ_only_where_they_should(tiny_dataset, tmp_path) -> None:
    base = train(tiny_dataset, tmp_path / "base", _cfg(lam=0), progress=False)
    control = train(tiny_dataset, tmp_path / "control", _cfg(lam=0, forward_unlabelled=True),
                    progress=False)
    assert np.isfinite(base["mpjpe"]) and np.isfinite(control["mpjpe"])
    # The control's BatchNorm saw the unlabelled crops: different weights, same code path.
    assert not _same(_weights(tmp_path / "base"), _weights(tmp_path / "control"))
    log = (tmp_path / "base" / "metrics.csv").read_text()
    assert "loss_triplet" not in log and "mean_pose_mpjpe" in log


def test_mixstyle_runs_are_repeatable_and_change_the_training(tiny_dataset, mcss_run,
                                                             tmp_path) -> None:
    for name in ("a", "b"):
        train(tiny_dataset, tmp_path / name, _cfg(lam=0.5, mixstyle=1.0), progress=False)
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _same(_weights(tmp_path / "a"), _weights(mcss_run))
    with pytest.raises(ConfigError, match="mixstyle"):
        _cfg(mixstyle=2)


def test_adversary_logs_its_discriminator_and_saves_its_head(tiny_dataset, tmp_path) -> None:
    cfg = _cfg(lam=0, adversary=0.1)
    assert cfg.uses_unlabelled  # the discriminator needs the unlabelled actors
    train(tiny_dataset, tmp_path / "adv", cfg, progress=False)
    log = (tmp_path / "adv" / "metrics.csv").read_text()
    assert "loss_adversary" in log and "adv_acc" in log
    assert any(k.startswith("actor_head.") for k in _weights(tmp_path / "adv"))
    model, loaded_cfg, _ = load_trained(tmp_path / "adv")  # strict load: the head comes back
    assert model.actor_head is not None and loaded_cfg.adversary == 0.1
    with pytest.raises(ConfigError, match="adversary"):
        _cfg(adversary=-1)


def test_pose_consistency_loss_by_hand() -> None:
    poses = torch.zeros(5, 17, 3)
    poses[1] += 0.3  # instant (0, 5): views at 0 and 0.3, mean 0.15, each 0.15 away
    poses[4] += 7.0  # alone at its instant: nothing to agree with
    loss = pose_consistency_loss(poses.requires_grad_(), torch.tensor([0, 0, 1, 1, 2]),
                                 torch.tensor([5, 5, 5, 5, 5]))
    assert loss.item() == pytest.approx(2 * 0.15 / 5)
    loss.backward()  # the target is detached: each view is pulled towards the mean only
    assert torch.allclose(poses.grad[0], torch.full((17, 3), -1 / (5 * 51)))


def test_pose_consistency_trains_and_needs_the_canonical_frame(tiny_dataset, tmp_path) -> None:
    train(tiny_dataset, tmp_path / "cons", _cfg(lam=0.5, pose_consistency=1.0), progress=False)
    assert "loss_consistency" in (tmp_path / "cons" / "metrics.csv").read_text()
    with pytest.raises(ConfigError, match="pose_frame=canonical"):
        _cfg(pose_consistency=1.0, pose_frame="camera")


def test_tiny_run_lowers_validation_error(tiny_dataset, tmp_path) -> None:
    cfg = resolve_config("tiny", overrides=["steps=60", "val_every=10", "lr=3e-3",
                                            "val_subject=S5"])
    train(tiny_dataset, tmp_path / "learn", cfg, progress=False)
    rows = [line.split(",") for line in (tmp_path / "learn" / "metrics.csv").read_text().split()]
    val = [float(r[3]) for r in rows[1:] if r[1] == "val" and r[2] == "mpjpe"]
    assert len(val) == 6
    assert min(val[-2:]) < val[0] - 5.0, val


def test_validation_reports_the_fit_of_the_labelled_frames(tiny_dataset, mcss_run) -> None:
    from mcss.evaluate import Validator, load_trained

    log = (mcss_run / "metrics.csv").read_text()
    assert ",val,fit_canonical_mpjpe," in log and ",val,fit_spread_ratio," in log
    ds = Dataset(tiny_dataset)
    model, cfg, _ = load_trained(mcss_run)
    split = make_split(ds, cfg)
    labels = np.asarray(ds.joints_3d_camera[split.labelled])
    # The fit of the validation rows themselves is the validation score, to the last bit.
    same = Validator(ds, split.validation, labels, fit_rows=split.validation)(model)
    assert same["fit_canonical_mpjpe"] == same["canonical_mpjpe"]
    assert same["fit_spread_ratio"] == same["spread_ratio"]
    fit = Validator(ds, split.validation, labels, fit_rows=split.labelled)(model)
    assert fit["canonical_mpjpe"] == same["canonical_mpjpe"]
    assert np.isfinite(fit["fit_canonical_mpjpe"])
    assert fit["fit_canonical_mpjpe"] != fit["canonical_mpjpe"]  # other frames, other error
    assert "fit_canonical_mpjpe" not in Validator(ds, split.validation, labels)(model)


def test_label_budget(tiny_dataset) -> None:
    ds = Dataset(tiny_dataset)
    split = make_split(ds, _cfg())
    assert set(ds.subjects[split.labelled]) == {"S1"}
    assert set(ds.subjects[split.validation]) == {"S8"}
    assert "S8" not in set(ds.subjects[np.isin(ds.sequence_id, split.unlabelled_sequences)])
    frac = make_split(ds, _cfg(labelled="10%"))
    fit = np.isin(ds.subjects, ["S1", "S5", "S6", "S7"]).sum()
    assert len(frac.labelled) == round(0.1 * fit)
    with pytest.raises(ConfigError, match="S9"):
        make_split(ds, _cfg(labelled="S9"))
    with pytest.raises(ConfigError, match="never validate on test"):
        make_split(ds, _cfg(val_subject="S11"))


def test_multiview_batches(tiny_dataset) -> None:
    ds = Dataset(tiny_dataset)
    seqs = np.unique(ds.sequence_id)
    sampler = MultiViewBatchSampler(ds.index, seqs, n_sequences=3, n_instants=2, n_views=3,
                                    min_gap=3, seed=5)
    for step in range(20):
        rows = sampler.batch(step).reshape(3, 2, 3)
        assert len(np.unique(ds.sequence_id[rows[:, 0, 0]])) == 3
        for group in rows:
            assert len(np.unique(ds.sequence_id[group])) == 1
            frames = ds.frame[group]
            assert (frames == frames[:, :1]).all()  # the views of an instant share its frame
            assert len(np.unique(ds.camera_id[group[0]])) == 3
            assert abs(int(frames[0, 0]) - int(frames[1, 0])) >= 3
    assert np.array_equal(sampler.batch(7), sampler.batch(7))


def test_batches_are_the_same_with_dataloader_workers(tiny_dataset) -> None:
    ds = Dataset(tiny_dataset)
    cfg = _cfg(lam=0.5)
    batches = TrainBatches(ds, make_split(ds, cfg), cfg)
    loader = torch.utils.data.DataLoader(batches, sampler=range(4), batch_size=None,
                                         num_workers=2)
    for step, batch in enumerate(loader):
        direct = batches[step]
        assert all(torch.equal(batch[k], direct[k]) for k in direct)


def test_flipped_labels_swap_left_and_right(tiny_dataset) -> None:
    ds = Dataset(tiny_dataset)
    cfg = _cfg()
    batches = TrainBatches(ds, make_split(ds, cfg), cfg)
    plain = TrainBatches(ds, make_split(ds, cfg), _cfg(flip=False))
    a, b = batches[0]["pose_camera"], plain[0]["pose_camera"]
    flipped = ~torch.isclose(a, b).all(dim=(1, 2))
    assert flipped.any()
    # Right hip (1) of the flipped pose is the mirrored left hip (4) of the original.
    assert torch.allclose(a[flipped][:, 1, 0], -b[flipped][:, 4, 0])
    assert torch.allclose(a[flipped][:, 1, 1:], b[flipped][:, 4, 1:])


def test_erasing_changes_labelled_crops_only(tiny_dataset) -> None:
    ds = Dataset(tiny_dataset)
    erased, plain = (TrainBatches(ds, make_split(ds, _cfg(lam=0.5)), _cfg(lam=0.5, erase=e))[1]
                     for e in (1.0, 0.0))
    assert torch.equal(erased["pose_camera"], plain["pose_camera"])
    assert torch.equal(erased["unlabelled_images"], plain["unlabelled_images"])
    changed = (erased["images"] != plain["images"]).any(dim=1).float().mean(dim=(1, 2))
    assert (changed > 0).all() and (changed <= 0.3).all()  # one rectangle, <= 25% of a crop
    with pytest.raises(ConfigError, match="erase"):
        _cfg(erase=1.5)


def test_hue_rotation_reaches_labelled_and_unlabelled_crops(tiny_dataset) -> None:
    ds = Dataset(tiny_dataset)
    rotated, plain = (TrainBatches(ds, make_split(ds, _cfg(lam=0.5)), _cfg(lam=0.5, hue=h))[1]
                      for h in (True, False))
    for key in ("images", "unlabelled_images"):
        assert not torch.allclose(rotated[key], plain[key], atol=1e-3)
        # a rotation about the grey axis keeps each pixel's channel mean (up to clamping)
        mean_shift = (rotated[key].mean(dim=1) - plain[key].mean(dim=1)).abs().mean()
        assert mean_shift < 0.02


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tiny_dataset, tmp_path) -> None:
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcss", "train", "--data", str(tiny_dataset), "--out", str(run),
         "--preset", "tiny", "--set", "steps=5000", "--set", "ckpt_every=5000",
         "--set", "val_every=5000", "--no-progress"],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 120
    while not (run / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    latest = (run / "checkpoints" / "latest").read_text().strip()
    step = int(latest.split("-")[1])
    assert 5 <= step < 5000
    assert not (run / "final_metrics.json").exists()


def test_lam_schedule_ramps_up_or_decays_linearly() -> None:
    from mcss.train import lam_at

    ramp = resolve_config(overrides=["lam=0.1", "lam_warmup_steps=4"])
    assert [lam_at(ramp, s) for s in (0, 1, 3, 99)] == pytest.approx([0.025, 0.05, 0.1, 0.1])
    decay = resolve_config(overrides=["lam=0", "lam_initial=1", "lam_warmup_steps=4"])
    assert [lam_at(decay, s) for s in (0, 1, 3, 4)] == pytest.approx([0.75, 0.5, 0.0, 0.0])
    assert decay.uses_unlabelled  # lam = 0 at the end, but the term runs before
    assert not resolve_config(overrides=["lam=0"]).uses_unlabelled
    with pytest.raises(ConfigError, match="lam_initial"):
        resolve_config(overrides=["lam_initial=-1"])
    with pytest.raises(ConfigError, match="needs lam_warmup_steps"):
        resolve_config(overrides=["lam=0", "lam_initial=1"])


def test_mirror_negatives_are_the_flipped_crops_and_negatives_of_their_originals(
        tiny_dataset: Path) -> None:
    cfg = _cfg(lam=0.5, mirror_negatives=True)
    ds = Dataset(tiny_dataset)
    batch = TrainBatches(ds, make_split(ds, cfg), cfg)[1]
    plain = TrainBatches(ds, make_split(ds, _cfg(lam=0.5)), _cfg(lam=0.5))[1]
    n = len(plain["unlabelled_images"])
    images = batch["unlabelled_images"]
    assert len(images) == 2 * n and torch.equal(images[:n], plain["unlabelled_images"])
    assert torch.equal(images[n:], plain["unlabelled_images"].flip(-1))
    assert torch.equal(batch["images"], plain["images"])  # the labelled part is untouched
    keys = batch["sequence"], batch["time"], batch["camera"]
    found = mine_triplets(torch.zeros(2 * n, 2 * n), *keys, min_gap=cfg.min_gap)
    triples = set(zip(found.anchor.tolist(), found.positive.tolist(), found.negative.tolist(),
                      strict=True))
    positives = {(a, p) for a, p, _ in triples}
    for i in range(n):  # every original has its own mirror image among its negatives
        assert any(a == i and neg == i + n for a, _, neg in triples)
    # the mirrored views of one instant are positives of each other, never of an original
    assert all((a < n) == (p < n) for a, p in positives)
    assert any(a >= n for a, _ in positives)
    with pytest.raises(ConfigError, match="need lam > 0"):
        _cfg(lam=0, mirror_negatives=True)


def test_rotation_turns_the_camera_label_and_keeps_the_canonical_one(tiny_dataset) -> None:
    ds = Dataset(tiny_dataset)
    turned, plain = (TrainBatches(ds, make_split(ds, _cfg(lam=0.5)), _cfg(lam=0.5, rotate=r))[1]
                     for r in (40, 0))
    assert torch.allclose(turned["pose_canonical"], plain["pose_canonical"], atol=1e-4)
    assert not torch.allclose(turned["pose_camera"], plain["pose_camera"], atol=1e-3)
    assert torch.allclose(turned["pose_camera"][..., 2], plain["pose_camera"][..., 2])
    for key in ("images", "unlabelled_images"):  # every crop turns, labelled or not
        assert not torch.allclose(turned[key], plain[key], atol=1e-3)
    with pytest.raises(ConfigError, match="rotate"):
        _cfg(rotate=200)


def test_shared_view_colour_gives_an_instants_views_its_first_views_colours(tiny_dataset) -> None:
    ds = Dataset(tiny_dataset)
    cfg = _cfg(lam=0.5)
    shared, own = (TrainBatches(ds, make_split(ds, cfg), _cfg(lam=0.5, shared_view_colour=s))[1]
                   for s in (True, False))
    assert torch.equal(shared["images"], own["images"])  # labelled crops untouched
    views = cfg.n_views
    first = torch.arange(0, len(own["unlabelled_images"]), views)
    assert torch.equal(shared["unlabelled_images"][first], own["unlabelled_images"][first])
    assert not torch.allclose(shared["unlabelled_images"], own["unlabelled_images"], atol=1e-3)


def test_colour_strength_reaches_the_labelled_and_unlabelled_crops_apart(tiny_dataset) -> None:
    ds = Dataset(tiny_dataset)
    split = make_split(ds, _cfg(lam=0.5))

    def batch(**strengths):
        return TrainBatches(ds, split, _cfg(lam=0.5, **strengths))[1]

    plain = batch()
    unlabelled_only = batch(unlabelled_colour_strength=2)
    labelled_only = batch(colour_strength=2)
    assert torch.equal(unlabelled_only["images"], plain["images"])
    assert not torch.allclose(unlabelled_only["unlabelled_images"], plain["unlabelled_images"],
                              atol=1e-3)
    assert torch.equal(labelled_only["unlabelled_images"], plain["unlabelled_images"])
    assert not torch.allclose(labelled_only["images"], plain["images"], atol=1e-3)
    with pytest.raises(ConfigError, match="unlabelled_colour_strength"):
        _cfg(unlabelled_colour_strength=3)
