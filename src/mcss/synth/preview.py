"""Contact sheets of a dataset: rows are instants, columns are cameras, skeletons drawn over
the crops (left side blue, right side red, centre line yellow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mcss.data.format import Dataset
from mcss.skeleton import BONES, JOINT_NAMES

_LEFT, _RIGHT, _CENTRE = (60, 140, 255), (255, 60, 60), (255, 220, 0)


def _bone_colour(child: int) -> tuple[int, int, int]:
    name = JOINT_NAMES[child]
    return _LEFT if name.startswith("left_") else _RIGHT if name.startswith("right_") else _CENTRE


def draw_skeleton(image: np.ndarray, joints_crop: np.ndarray, cell: int) -> Image.Image:
    """Upscale a crop to ``cell`` px and draw its 2D skeleton (crop px) over it."""
    scale = cell / image.shape[0]
    canvas = Image.fromarray(np.asarray(image)).resize((cell, cell), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    uv = joints_crop[:, :2] * scale
    width = max(1, cell // 64)
    for parent, child in BONES:
        draw.line([tuple(uv[parent]), tuple(uv[child])], fill=_bone_colour(child), width=width)
    for u, v in uv:
        draw.ellipse([u - width, v - width, u + width, v + width], fill=(255, 255, 255))
    return canvas


def pick_instants(ds: Dataset, rows: int, seed: int = 0) -> list[tuple[int, int]]:
    """``rows`` (sequence, frame) instants seen by every camera, spread over subjects."""
    rng = np.random.default_rng(seed)
    n_cams = ds.index.num_cameras
    sequences = rng.permutation(ds.index.num_sequences)
    chosen = []
    for seq in sequences[: max(rows, 1)]:
        frames = ds.index.frames(int(seq), min_views=n_cams)
        if len(frames):
            chosen.append((int(seq), int(rng.choice(frames))))
    return chosen[:rows]


def contact_sheet(ds: Dataset, out: Path, rows: int = 6, cell: int = 128, seed: int = 0) -> Path:
    """Write a PNG: one row per instant, one column per camera, labelled with the sequence."""
    n_cams = ds.index.num_cameras
    instants = pick_instants(ds, rows, seed)
    label_h = 14
    sheet = Image.new("RGB", (n_cams * cell, len(instants) * (cell + label_h)), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    for r, (seq, frame) in enumerate(instants):
        y = r * (cell + label_h)
        draw.text((4, y + 1), f"{ds.meta['sequences'][seq]}  frame {frame}", fill=(230, 230, 230))
        for cam in range(n_cams):
            row = ds.index.row(seq, frame, cam)
            tile = draw_skeleton(ds.images[row], ds.joints_2d_crop[row], cell)
            sheet.paste(tile, (cam * cell, y + label_h))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
