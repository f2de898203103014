"""The embedded synthetic multi-view dataset: motion -> actors -> rig -> rendered crops.

Every subject (S1, S5-S8 train; S9, S11 test) is a different actor and performs every
action (one per motion clip) in several takes; every take varies its clip (retiming,
blending, rotation noise, mirroring), its heading, position and light, and is rendered by
every camera of the rig. ``extra_subjects`` appends unlabelled training subjects X1.. with
random actors after these, which it leaves byte-identical. The result is written in the one
on-disk format of :mod:`mcss.data.format`. The same preset and seed give a byte-identical
dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from mcss import __version__
from mcss.data.format import DatasetWriter
from mcss.geometry import Camera, image_to_crop, square_box
from mcss.motion import Motion
from mcss.motion.deepmimic import clip_paths, load_deepmimic
from mcss.motion.variation import (
    normalise_placement,
    place,
    reference_bone_lengths,
    set_bone_lengths,
    vary,
)
from mcss.skeleton import NUM_JOINTS
from mcss.synth import body, render, rig

MOTION_FPS = 30.0
CROP_MARGIN = 1.3
AREA_RADIUS_MM = 800.0


@dataclass(frozen=True)
class SynthConfig:
    """What to synthesise. Presets: :data:`PRESETS`."""

    takes_per_action: int
    frames_per_take: int  # at most: a take is its varied clip played once
    fps: float = 15.0
    image_size: int = 64
    cameras: int = 4
    motions: str = "default"  # "default" (upright clips) or "all" (adds acrobatics)
    max_actions: int | None = None  # keep only the first N clips (tiny datasets)
    extra_subjects: int = 0  # unlabelled training subjects X1.. with random actors
    marked_left: bool = False  # diagnostic: the body's left side a darker shade
    seed: int = 0

    def __post_init__(self) -> None:
        if not 16 <= self.image_size <= 256 or self.image_size % 8:
            raise ValueError(f"image size must be a multiple of 8 in [16, 256], got "
                             f"{self.image_size}")
        if self.cameras < 2:
            raise ValueError(f"need at least 2 cameras, got {self.cameras}")
        if self.takes_per_action < 1 or self.frames_per_take < 1:
            raise ValueError("takes per action and frames per take must be positive")
        if self.extra_subjects < 0:
            raise ValueError(f"extra subjects must be >= 0, got {self.extra_subjects}")


PRESETS: dict[str, SynthConfig] = {
    # seconds: a few frames of two actions, small crops; for tests
    "tiny": SynthConfig(takes_per_action=1, frames_per_take=8, image_size=32, max_actions=2),
    # the demo dataset: every upright clip, 2 takes per subject and action (~15k crops)
    "quick": SynthConfig(takes_per_action=2, frames_per_take=64),
    # every clip including acrobatics, 8 takes per subject and action (>= 100k crops)
    "full": SynthConfig(takes_per_action=8, frames_per_take=64, motions="all"),
}


def load_clips(which: str, fps: float = MOTION_FPS) -> dict[str, Motion]:
    """The DeepMimic clips of a motion set, resampled to ``fps``, by action name."""
    return {name: load_deepmimic(path, fps=fps) for name, path in clip_paths(which).items()}


def _resample(n_source: int, source_fps: float, fps: float, max_frames: int) -> np.ndarray:
    """Source frame indices of a take played once at ``fps``, at most ``max_frames`` long.

    Takes never loop or play back and forth: a repeated pose at another time would be a
    false temporal negative for the multi-view loss (DESIGN.md section 1).
    """
    n = min(max_frames, int((n_source - 1) * fps / source_fps) + 1)
    return np.minimum(np.round(np.arange(n) * source_fps / fps).astype(int), n_source - 1)


def take_motion(
    clip: Motion, other: Motion, actor: body.Actor, config: SynthConfig, rng: np.random.Generator
) -> np.ndarray:
    """World joints ``(T, 17, 3)`` mm of one take of ``clip`` by ``actor``
    (``T <= frames_per_take``: the varied clip played once)."""
    varied = vary(clip, rng, other=other)
    joints = varied.joints[_resample(varied.num_frames, varied.fps, config.fps,
                                     config.frames_per_take)]
    lengths = reference_bone_lengths(clip.joints) * body.bone_scales(actor)
    joints = set_bone_lengths(joints, lengths)
    # Keep the person inside the capture area: cancel the take's mean horizontal drift.
    pelvis = joints[:, 0, :2]
    if np.ptp(pelvis, axis=0).max() > 1500.0:
        t = np.linspace(-0.5, 0.5, len(joints))[:, None]
        drift = pelvis[-1] - pelvis[0]
        joints = joints - np.concatenate([t * drift, np.zeros((len(t), 1))], axis=1)[:, None]
    joints = normalise_placement(joints, ankle_height_mm=80.0 * actor.height_scale)
    joints = joints - np.array([*joints[:, 0, :2].mean(axis=0), 0.0])
    offset = rng.uniform(-1.0, 1.0, 2) * AREA_RADIUS_MM / np.sqrt(2)
    return place(Motion(joints, config.fps, clip.name), rng.uniform(0, 2 * np.pi), offset).joints


@dataclass
class RenderedView:
    """One take seen by one camera."""

    images: np.ndarray  # (T, S, S, 3) uint8
    boxes: np.ndarray  # (T, 3)
    joints_2d: np.ndarray  # (T, 17, 3) u, v, visible
    joints_2d_crop: np.ndarray  # (T, 17, 2)
    joints_3d_camera: np.ndarray  # (T, 17, 3) mm


def render_view(
    joints_world: np.ndarray,
    actor: body.Actor,
    camera: Camera,
    background: np.ndarray,
    light_world: np.ndarray,
    size: int,
    palette: dict | None = None,
) -> RenderedView:
    """Render crops of a take ``(T, 17, 3)`` world mm through one camera."""
    points_cam = camera.world_to_camera(body.body_points(joints_world))
    joints_cam = points_cam[:, :NUM_JOINTS]
    uv = camera.project(joints_cam)
    boxes = square_box(uv, CROP_MARGIN)
    prims = body.primitive_arrays(points_cam / 1000.0, actor, palette)
    n = len(joints_world)
    intrinsics = np.tile([camera.fx, camera.fy, camera.cx, camera.cy], (n, 1))
    light = np.tile(camera.R @ light_world, (n, 1))
    result = render.render(
        render.Primitives(**prims), boxes, intrinsics, joints_cam[:, 0] / 1000.0,
        rig.sample_crops(background, boxes, size), light,
    )
    uv_crop = image_to_crop(uv, boxes, size)
    visible = body.joints_visible(result.prim, uv_crop)
    return RenderedView(result.rgb, boxes, np.concatenate([uv, visible[..., None]], -1),
                        uv_crop, joints_cam)


def _light(rng: np.random.Generator) -> np.ndarray:
    elevation = rng.uniform(np.deg2rad(30), np.deg2rad(70))
    azimuth = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                     np.sin(elevation)])


def synthesize(
    config: SynthConfig, out: Path, on_take: Callable[[int, int], None] | None = None
) -> Path:
    """Render the dataset of ``config`` into the folder ``out`` (atomically) and return it.

    ``on_take(done, total)`` is called after every take (progress reporting).
    """
    clips = load_clips(config.motions)
    actions = sorted(clips)[: config.max_actions]
    cast = {s: body.actor_by_name(a) for s, a in body.SUBJECT_ACTORS.items()}
    cast |= body.extra_subjects(config.extra_subjects, config.seed)  # after: rows unchanged
    subjects = list(cast)
    root = np.random.SeedSequence(config.seed)
    rig_rng = np.random.default_rng(root.spawn(1)[0])
    cameras = rig.make_rig(config.cameras, rig_rng)
    backgrounds = [rig.render_background(cam, rig_rng) for cam in cameras]

    plan = [(s, a, k) for s in subjects for a in actions for k in range(config.takes_per_action)]
    sequences = [f"{s}_{a}_{k + 1}" for s, a, k in plan]
    takes = [_take(config, clips, actions, subjects, cast[item[0]], *item) for item in plan]
    n_frames = sum(len(joints) for joints, _ in takes) * len(cameras)
    meta = {
        "image_size": config.image_size,
        "fps": config.fps,
        "subjects": subjects,
        "actions": actions,
        "sequences": sequences,
        "cameras": [cam.to_dict() for cam in cameras],
        "splits": {"train": [*body.TRAIN_SUBJECTS, *subjects[len(body.SUBJECT_ACTORS):]],
                   "test": list(body.TEST_SUBJECTS)},
        "actors": {s: actor.to_dict() for s, actor in cast.items()},
        "provenance": {"generator": "mcss synth", "mcss_version": __version__,
                       "config": asdict(config), "motions": sorted(clips)},
    }
    with DatasetWriter(out, meta, n_frames) as writer:
        for seq_id, ((subject, action, _), (joints, light)) in enumerate(zip(plan, takes,
                                                                              strict=True)):
            actor = cast[subject]
            palette = body.marked_left_palette(actor) if config.marked_left else None
            frames = np.arange(len(joints))
            for cam_id, (camera, bg) in enumerate(zip(cameras, backgrounds, strict=True)):
                view = render_view(joints, actor, camera, bg, light, config.image_size,
                                   palette)
                writer.add(
                    view.images,
                    subject_id=subjects.index(subject), action_id=actions.index(action),
                    sequence_id=seq_id, camera_id=cam_id, frame=frames,
                    time=frames / config.fps, box=view.boxes, joints_2d=view.joints_2d,
                    joints_2d_crop=view.joints_2d_crop, joints_3d_camera=view.joints_3d_camera,
                    joints_3d_world=joints, labelled=True,
                )
            if on_take:
                on_take(seq_id + 1, len(plan))
        return writer.write()


def _take(
    config: SynthConfig, clips: dict[str, Motion], actions: list[str], subjects: list[str],
    actor: body.Actor, subject: str, action: str, take: int,
) -> tuple[np.ndarray, np.ndarray]:
    """World joints and light direction of one take, from its own seeded generator."""
    rng = np.random.default_rng([config.seed, subjects.index(subject), actions.index(action),
                                 take])
    other = clips[actions[rng.integers(len(actions))]]
    joints = take_motion(clips[action], other, actor, config, rng)
    return joints, _light(rng)


def same_config(recorded: dict | None, config: SynthConfig) -> bool:
    """Whether a dataset's recorded config is ``config`` (fields added since it was written
    count as their defaults)."""
    if recorded is None:
        return False
    defaults = {f.name: f.default for f in fields(SynthConfig) if f.default is not MISSING}
    return defaults | recorded == asdict(config)


def preset(name: str, **overrides: object) -> SynthConfig:
    """A named preset with some fields replaced (``None`` values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
