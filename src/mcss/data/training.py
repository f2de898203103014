"""What a training run reads: the label budget split, and the batches of every step.

The 3D labels of frames outside the label budget are never read: :class:`TrainBatches`
copies the labels of the labelled rows once and the unlabelled batches carry only images
and their (sequence, frame, camera) keys.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from mcss.augment import (
    AugmentConfig,
    apply_augment,
    draw_augment,
    flip_pose,
    rotate_pose,
    same_colour_per_group,
)
from mcss.config import ConfigError, TrainConfig, label_budget
from mcss.data.batches import LabelledSampler, MultiViewBatchSampler, shard, step_rng
from mcss.data.format import Dataset
from mcss.geometry import to_canonical


@dataclass(frozen=True)
class LabelSplit:
    """Rows of a dataset by role in one training run."""

    labelled: np.ndarray  # rows whose 3D labels train the pose regressor
    unlabelled_sequences: np.ndarray  # sequences whose views feed the multi-view term
    validation: np.ndarray  # rows of the held-out training subject (a fixed subsample)


def make_split(ds: Dataset, cfg: TrainConfig) -> LabelSplit:
    """Apply the label budget: named subjects, or a seeded fraction of training frames.

    The validation subject is a *training* subject held out of training entirely; the
    test subjects (``splits["test"]``) are never touched here.
    """
    train_subjects = list(ds.meta["splits"]["train"])
    if cfg.val_subject is not None and cfg.val_subject not in train_subjects:
        raise ConfigError(f"val_subject {cfg.val_subject!r} is not a training subject of "
                          f"{ds.path} ({', '.join(train_subjects)}); never validate on test "
                          "(val_subject=none trains without validation)")
    fit_subjects = [s for s in train_subjects if s != cfg.val_subject]
    fit_rows = ds.rows_of(fit_subjects)
    fit_rows = fit_rows[ds.labelled[fit_rows]]
    subjects, fraction = label_budget(cfg.labelled)
    if fraction is None:
        unknown = [s for s in subjects if s not in fit_subjects]
        if unknown:
            raise ConfigError(f"labelled subject(s) {unknown} are not training subjects of "
                              f"{ds.path}; choose among {', '.join(fit_subjects)}")
        labelled = ds.rows_of(subjects)
        labelled = labelled[ds.labelled[labelled]]
    else:
        if len(fit_rows) == 0:
            raise ConfigError(f"{ds.path} has no labelled frames outside the validation "
                              f"subject {cfg.val_subject!r} to take {cfg.labelled} of")
        rng = np.random.default_rng([cfg.seed, 7])
        count = max(1, round(fraction * len(fit_rows)))
        labelled = np.sort(rng.choice(fit_rows, size=count, replace=False))
    val_rows = ds.rows_of([cfg.val_subject] if cfg.val_subject else [])
    pick = np.linspace(0, len(val_rows) - 1, min(cfg.val_frames, len(val_rows))).astype(int)
    sequences = np.unique(ds.sequence_id[ds.rows_of(fit_subjects)])
    return LabelSplit(labelled, sequences, val_rows[pick])


class TrainBatches(torch.utils.data.Dataset):
    """Step ``i`` -> the labelled and unlabelled batch of step ``i`` (a pure function of the
    seed and ``i``, so any DataLoader worker builds the same batch and resume is exact)."""

    def __init__(
        self, ds: Dataset, split: LabelSplit, cfg: TrainConfig, rank: int = 0, world_size: int = 1
    ) -> None:
        self.images = ds.images
        self.labels = np.asarray(ds.joints_3d_camera[split.labelled], dtype=np.float64)
        self.labels -= self.labels[:, :1]
        self.labelled = LabelledSampler(np.arange(len(split.labelled)), cfg.batch_labelled,
                                        cfg.seed)
        self.label_rows = split.labelled
        self.multiview = _multiview_sampler(ds, split, cfg) if cfg.uses_unlabelled else None
        self.keys = np.stack([ds.sequence_id, ds.frame, ds.camera_id], axis=1)
        self.aug = AugmentConfig(
            flip=cfg.flip, colour=cfg.colour, scale_jitter=cfg.scale_jitter,
            shift_jitter=cfg.shift_jitter, channel_shuffle=cfg.channel_shuffle, erase=cfg.erase,
            hue=cfg.hue, rotate=cfg.rotate, colour_strength=cfg.colour_strength)
        # A flip mirrors the pose: views of one instant must keep showing the same pose (a
        # rotation keeps it: only the camera turns); erasing is a lever on the labelled actor.
        self.aug_unlabelled = replace(self.aug, flip=False, erase=0.0,
                                      colour_strength=cfg.unlabelled_colour_strength)
        self.steps, self.seed = cfg.steps, cfg.seed
        self.mirror_negatives = cfg.mirror_negatives
        self.colour_group = cfg.n_views if cfg.shared_view_colour else 1
        # Each process builds the global batch's rows and keeps its share of whole groups.
        self.labelled_part = _share(cfg.batch_labelled, 1, rank, world_size, "batch_labelled")
        self.unlabelled_part = _share(cfg.n_sequences * cfg.n_instants, cfg.n_views, rank,
                                      world_size, "n_sequences * n_instants")

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        picks = self.labelled.batch(step)
        part = self.labelled_part
        params = draw_augment(len(picks), step_rng(self.seed, step, 2), self.aug)[part]
        picks = picks[part]
        images = apply_augment(self.images[self.label_rows[picks]], params)
        camera = self.labels[picks]
        camera[params.flipped] = flip_pose(camera[params.flipped])
        if params.rotation is not None:
            camera = rotate_pose(camera, params.rotation)
        batch = {
            "images": images,
            "pose_camera": torch.from_numpy(camera).float(),
            "pose_canonical": torch.from_numpy(to_canonical(camera)).float(),
        }
        if self.multiview is not None:
            rows = self.multiview.batch(step)
            part = self.unlabelled_part
            params = draw_augment(len(rows), step_rng(self.seed, step, 3), self.aug_unlabelled)
            params = same_colour_per_group(params, self.colour_group)[part]
            rows = rows[part]
            batch["unlabelled_images"] = apply_augment(self.images[rows], params)
            keys = torch.from_numpy(self.keys[rows].astype(np.int64))
            batch["sequence"], batch["time"], batch["camera"] = keys.unbind(1)
            if self.mirror_negatives:
                batch = with_mirrored_views(batch)
        return batch


# added to a mirrored crop's frame: far from every frame, so it is a negative of every crop
MIRROR_TIME = 1 << 40


def with_mirrored_views(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Append the horizontal mirror image of every unlabelled crop as a crop of another instant
    (frame + ``MIRROR_TIME``). The mirrored views of one instant show one pose, the mirror
    image of the original's, so they are positives of each other and negatives of every
    original crop of the take: the embedding must tell a pose from its mirror image, which
    only the body's facing combined with the image side of each limb can."""
    images = batch["unlabelled_images"]
    return batch | {
        "unlabelled_images": torch.cat([images, images.flip(-1)]),
        "time": torch.cat([batch["time"], batch["time"] + MIRROR_TIME]),
        "sequence": batch["sequence"].repeat(2), "camera": batch["camera"].repeat(2),
    }


def _share(n_groups: int, group_size: int, rank: int, world_size: int, name: str) -> slice:
    try:
        return shard(n_groups, group_size, rank, world_size)
    except ValueError:
        raise ConfigError(f"{name} = {n_groups} must be divisible by the number of processes "
                          f"({world_size}): each process takes an equal share of the global "
                          "batch") from None


def _multiview_sampler(ds: Dataset, split: LabelSplit, cfg: TrainConfig) -> MultiViewBatchSampler:
    try:
        return MultiViewBatchSampler(ds.index, split.unlabelled_sequences, cfg.n_sequences,
                                     cfg.n_instants, cfg.n_views, cfg.min_gap, cfg.max_gap,
                                     cfg.seed)
    except ValueError as err:
        raise ConfigError(f"{ds.path}: {err}; or train without the multi-view term "
                          "(--set lam=0)") from None
