"""Training configuration: one typed dataclass, named presets, YAML files, ``--set`` overrides.

Resolution order: preset, then the YAML file, then each ``--set key=value``. The resolved
config is saved as ``config.yaml`` in every run folder, so a run can be repeated exactly.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """An unknown key or an invalid value; the message names it and what is allowed."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (the dataset aside)."""

    # model
    arch: str = "resnet18"
    embedding_dim: int = 128
    hidden_dim: int = 256
    pose_frame: str = "canonical"  # canonical | camera (ablation, DESIGN.md section 1)
    regress_from: str = "embedding"  # embedding | feature (the metric head as a projection)
    facing_gate: bool = False  # left-right asymmetries weighted by the facing (model.py)
    init: str | None = None  # local torchvision state dict for the backbone
    # labels: a subject list ("S1", "S1,S5") or a percentage of training frames ("5%")
    labelled: str = "S1"
    val_subject: str | None = "S8"  # held out of training entirely; never S9/S11; None: none
    # schedule
    steps: int = 1000
    optimizer: str = "adamw"  # adamw | sgd (momentum 0.9, Nesterov)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine | step
    warmup_steps: int = 50
    # batches: labelled frames, and B sequences x K instants x V views unlabelled
    batch_labelled: int = 32
    n_sequences: int = 4
    n_instants: int = 4
    n_views: int = 2
    # MCSS term
    lam: float = 0.03  # weight of the triplet loss; 0 is the baseline (chosen on S6 and S8, docs)
    lam_warmup_steps: int = 0  # lam moves linearly from lam_initial to lam over these steps
    lam_initial: float = 0.0  # > lam: the multi-view term leads early ("views first, then pose")
    forward_unlabelled: bool = False  # with lam = 0: the BatchNorm control
    margin: float = 0.2
    min_gap: int = 4  # frames; closer frames of a take are never negatives
    max_gap: int | None = None
    strategy: str = "all"  # all | semihard | hardest (all: the term learns the views, docs)
    other_sequences: bool = False
    # the horizontal mirror image of every unlabelled crop joins the batch as a crop of another
    # instant: a negative of every crop of its take, the one it mirrors included, so the
    # embedding must tell a pose from its mirror image (left from right; docs)
    mirror_negatives: bool = False
    negative_camera: str = "any"  # any | positive: negatives from the positive's camera only
    pose_loss: str = "l1"  # l1 | l2 | mpjpe
    view_weight: float = 0.1  # weight of the view head's camera-frame loss
    # augmentation
    flip: bool = True
    colour: bool = True  # brightness, contrast and saturation jitter
    # with colour: a random channel order per crop (validated on S6, dressed unlike S1: docs)
    channel_shuffle: bool = True
    scale_jitter: float = 0.1
    shift_jitter: float = 0.05
    # probability per labelled crop of a rectangle erased to a random colour (random erasing);
    # slows the fit of S1 and costs 2-8 mm on S8 (session 19, docs)
    erase: float = 0.0
    # every crop's colours, labelled and unlabelled, rotated about the grey axis by a random
    # angle; beside the channel shuffle it changes nothing in the canonical frame (docs)
    hue: bool = False
    # largest in-plane rotation of a crop (degrees, uniform in [-rotate, rotate]), labelled and
    # unlabelled; the camera-frame label turns with it. 30 costs both networks 2-3 mm (docs)
    rotate: float = 0.0
    # the views of one unlabelled instant share one colour draw (jitter, channel order, hue),
    # so the multi-view term matches across cameras only; costs MCSS 2-3 mm at 2400 steps (docs)
    shared_view_colour: bool = False
    # the spread of the colour jitter (brightness, contrast, saturation) about 1, as a multiple
    # of the default 0.3/0.3/0.4, on the labelled and on the unlabelled crops; twice it on the
    # unlabelled crops costs MCSS 2 mm at 6000 steps, on every crop 4 mm (session 21, docs)
    colour_strength: float = 1.0
    unlabelled_colour_strength: float = 1.0
    # probability per step of MixStyle after ResNet stages 1 and 2: crops swap their feature
    # statistics (colour, texture), so S1's look stops telling its poses apart (docs)
    mixstyle: float = 0.0
    # weight of a discriminator telling labelled from unlabelled crops by their embedding, its
    # gradient reversed into the network (DANN): the embedding learns to hide the actor (docs)
    adversary: float = 0.0
    # weight of the multi-view consistency of the predicted canonical pose on unlabelled crops:
    # each view's prediction is pulled to the (detached) mean over its instant's views (docs)
    pose_consistency: float = 0.0
    # weight of pseudo-labels on unlabelled crops from a mean teacher (an EMA of the network,
    # decay teacher_decay): its canonical poses averaged over each instant's views, from step
    # teacher_start on, once the labelled fit is under way (docs)
    teacher: float = 0.0
    teacher_decay: float = 0.995
    teacher_start: int = 2000
    # bookkeeping
    seed: int = 0
    val_every: int = 100
    val_frames: int = 512
    log_every: int = 10
    ckpt_every: int = 200
    keep_last: int = 2
    keep_best: bool = True  # checkpoints/best: the model at its lowest validation canonical MPJPE
    num_workers: int = 0
    # where and how: none of these change the method
    device: str = "auto"  # auto | cpu | cuda (auto: this rank's GPU if there is one)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 with gradient scaling)
    channels_last: bool = False  # NHWC memory format (faster convolutions on recent GPUs)

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ("resnet18", "resnet34", "resnet50"))
        _check_choice("pose_frame", self.pose_frame, ("canonical", "camera"))
        _check_choice("regress_from", self.regress_from, ("embedding", "feature"))
        _check_choice("schedule", self.schedule, ("cosine", "step"))
        _check_choice("optimizer", self.optimizer, ("adamw", "sgd"))
        _check_choice("strategy", self.strategy, ("hardest", "semihard", "all"))
        _check_choice("negative_camera", self.negative_camera, ("any", "positive"))
        _check_choice("pose_loss", self.pose_loss, ("l1", "l2", "mpjpe"))
        if self.facing_gate and self.pose_frame != "canonical":
            raise ConfigError("facing_gate weights by the view head's facing: it needs "
                              "pose_frame=canonical")
        _check_choice("device", self.device, ("auto", "cpu", "cuda"))
        _check_choice("precision", self.precision, ("fp32", "bf16", "fp16"))
        for name in ("steps", "batch_labelled", "n_sequences", "n_instants", "embedding_dim",
                     "hidden_dim", "val_every", "log_every", "ckpt_every", "keep_last",
                     "min_gap", "val_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_views < 2:
            raise ConfigError(f"n_views must be >= 2 (multi-view positives), got {self.n_views}")
        if min(self.lam, self.lam_initial, self.margin, self.weight_decay) < 0 or self.lr <= 0:
            raise ConfigError("lam, lam_initial, margin and weight_decay must be >= 0 and lr > 0")
        if self.max_gap is not None and self.max_gap < self.min_gap:
            raise ConfigError(f"max_gap ({self.max_gap}) must be >= min_gap ({self.min_gap})")
        if min(self.adversary, self.pose_consistency, self.teacher, self.teacher_start) < 0:
            raise ConfigError("adversary, pose_consistency, teacher and teacher_start must be "
                              ">= 0")
        if max(self.pose_consistency, self.teacher) > 0 and self.pose_frame != "canonical":
            raise ConfigError("pose_consistency and teacher compare canonical poses across "
                              "views: they need pose_frame=canonical")
        if not 0 < self.teacher_decay < 1:
            raise ConfigError(f"teacher_decay must be in (0, 1), got {self.teacher_decay}")
        for name in ("mixstyle", "erase"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} is a probability in [0, 1], got "
                                  f"{getattr(self, name)}")
        if not 0 <= self.rotate <= 180:
            raise ConfigError(f"rotate is the largest rotation in degrees, in [0, 180]; got "
                              f"{self.rotate}")
        for name in ("colour_strength", "unlabelled_colour_strength"):
            if not 0 <= getattr(self, name) <= 2:
                raise ConfigError(f"{name} scales the colour jitter's spread, in [0, 2] (2: "
                                  f"saturation 0.2-1.8); got {getattr(self, name)}")
        if not 0 <= self.scale_jitter < 1 or not 0 <= self.shift_jitter < 1:
            raise ConfigError("scale_jitter and shift_jitter must be in [0, 1)")
        if self.num_workers < 0 or self.warmup_steps < 0 or self.lam_warmup_steps < 0:
            raise ConfigError("num_workers, warmup_steps and lam_warmup_steps must be >= 0")
        if self.mirror_negatives and (self.lam == self.lam_initial == 0
                                      or self.max_gap is not None):
            raise ConfigError("mirror_negatives are negatives of the triplet loss at any "
                              "distance in time: they need lam > 0 and max_gap unset")
        if self.lam_initial > 0 and not self.lam_warmup_steps:
            raise ConfigError("lam_initial needs lam_warmup_steps > 0: the steps over which lam "
                              "moves from lam_initial to lam")
        label_budget(self.labelled)

    @property
    def uses_unlabelled(self) -> bool:
        return (self.lam > 0 or self.lam_initial > 0 or self.forward_unlabelled
                or self.adversary > 0 or self.pose_consistency > 0 or self.teacher > 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def label_budget(spec: str) -> tuple[list[str], float | None]:
    """Parse ``labelled``: ``"S1"`` / ``"S1,S5"`` -> (subjects, None); ``"5%"`` -> ([], 0.05)."""
    spec = spec.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)%", spec)
    if match:
        fraction = float(match.group(1)) / 100
        if not 0 < fraction <= 1:
            raise ConfigError(f"labelled percentage must be in (0, 100]; got {spec!r}")
        return [], fraction
    subjects = [s.strip() for s in spec.split(",") if s.strip()]
    if not subjects:
        raise ConfigError("labelled must name subjects (S1 or S1,S5) or a percentage (5%)")
    return subjects, None


PRESETS: dict[str, dict[str, Any]] = {
    # seconds on a CPU: for tests and smoke runs
    "tiny": {"steps": 20, "batch_labelled": 8, "n_sequences": 2, "n_instants": 2,
             "n_views": 2, "warmup_steps": 2, "val_every": 10, "val_frames": 64,
             "log_every": 5, "ckpt_every": 10, "min_gap": 2, "embedding_dim": 32,
             "hidden_dim": 64},
    # the demo on 2 CPU cores: a few minutes per run on the quick synthetic dataset
    "quick": {"steps": 1000, "val_every": 200},
    # longer runs for the reproduction report
    "full": {"steps": 2400, "val_every": 300, "ckpt_every": 600},
}


def _coerce(name: str, raw: str, current: Any, annotation: str) -> Any:
    """Parse a ``--set`` string into the type the field declares."""
    text = raw.strip()
    if text.lower() in ("none", "null") and "None" in annotation:
        return None
    try:
        if annotation.startswith("bool"):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if annotation.startswith("int"):
            return int(text)
        if annotation.startswith("float"):
            return float(text)
    except ValueError:
        raise ConfigError(f"{name}: cannot read {raw!r} as {annotation}") from None
    return text


def resolve_config(
    preset: str | None = None,
    config_file: Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> TrainConfig:
    """Preset, then YAML file, then ``key=value`` overrides -> a validated :class:`TrainConfig`."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    known = {f.name: f for f in fields(TrainConfig)}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{config_file}: cannot read the config ({err})") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_file}: a config is a mapping of key: value")
        unknown = sorted(set(loaded) - set(known))
        if unknown:
            raise ConfigError(f"{config_file}: unknown key(s) {unknown}; known: {sorted(known)}")
        values.update(loaded)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in known:
            raise ConfigError(f"--set {item!r}: expected key=value with a key among "
                              f"{sorted(known)}")
        annotation = str(known[key].type)
        values[key] = _coerce(key, raw, values.get(key), annotation)
    try:
        return TrainConfig(**values)
    except TypeError as err:
        raise ConfigError(str(err)) from err


def save_config(config: TrainConfig, path: Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def load_config(path: Path) -> TrainConfig:
    return resolve_config(config_file=path)
