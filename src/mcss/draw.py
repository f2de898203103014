"""Drawing predicted skeletons: the crop the network saw beside its 3D pose from two views.

Views are orthographic projections of the root-relative camera-frame pose (x right, y down,
z away from the camera, mm): the *camera view* drops z (what the camera sees), the *side
view* drops x (depth against height), so a wrong depth that the camera view hides shows.
Both views share one fixed scale, so poses stay comparable across the frames of a video.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from mcss.skeleton import BONES, JOINT_NAMES

SPAN_MM = 2200.0  # height and width covered by a skeleton view
GRID_MM = 500.0
LEFT_COLOUR = (30, 110, 220)
RIGHT_COLOUR = (220, 60, 40)
CENTRE_COLOUR = (60, 60, 60)
VIEWS = (("camera view (x, y)", 0), ("side view (z, y)", 2))  # (title, horizontal axis)


def joint_colour(joint: int) -> tuple[int, int, int]:
    """Left joints blue, right joints red, the spine and head grey."""
    name = JOINT_NAMES[joint]
    if name.startswith("left_"):
        return LEFT_COLOUR
    if name.startswith("right_"):
        return RIGHT_COLOUR
    return CENTRE_COLOUR


def skeleton_view(pose: np.ndarray, horizontal: int, size: int, title: str = "") -> Image.Image:
    """One orthographic view of a root-relative pose ``(17, 3)`` (mm) as a ``size`` px square:
    ``horizontal`` is the axis drawn to the right (0: x, 2: z); y points down, as in images."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    scale = size / SPAN_MM
    centre = size / 2.0
    for offset in np.arange(-SPAN_MM / 2, SPAN_MM / 2 + 1, GRID_MM):
        px = centre + offset * scale
        draw.line([(px, 0), (px, size)], fill=(232, 232, 232))
        draw.line([(0, px), (size, px)], fill=(232, 232, 232))
    uv = np.stack([pose[:, horizontal], pose[:, 1]], axis=1) * scale + centre
    if np.isfinite(uv).all():
        width = max(2, size // 80)
        for parent, child in BONES:
            draw.line([tuple(uv[parent]), tuple(uv[child])], fill=joint_colour(child),
                      width=width)
        radius = width + 1
        for j, (u, v) in enumerate(uv):
            r = 2 * radius if JOINT_NAMES[j] == "head" else radius
            draw.ellipse([u - r, v - r, u + r, v + r], fill=joint_colour(j))
    draw.text((4, 2), title, fill=(0, 0, 0))
    draw.rectangle([0, 0, size - 1, size - 1], outline=(180, 180, 180))
    return image


def render_panel(crop: np.ndarray, pose_camera: np.ndarray, size: int = 256,
                 caption: str = "") -> np.ndarray:
    """The crop (scaled to ``size`` px, nearest neighbour: the pixels the network saw) beside
    the camera and side views of its predicted camera-frame pose: ``(size, 3 * size, 3)``
    uint8 (even sizes, as video encoders need)."""
    size += size % 2
    panel = Image.new("RGB", (size * (1 + len(VIEWS)), size), "white")
    panel.paste(Image.fromarray(np.asarray(crop, dtype=np.uint8)).resize((size, size),
                                                                          Image.NEAREST))
    if caption:
        ImageDraw.Draw(panel).text((4, size - 14), caption, fill=(255, 255, 0))
    pose = np.asarray(pose_camera, dtype=np.float64)
    for i, (title, horizontal) in enumerate(VIEWS):
        panel.paste(skeleton_view(pose, horizontal, size, title), (size * (1 + i), 0))
    return np.asarray(panel)


def montage(query: np.ndarray, matches: list[np.ndarray | None], captions: list[str],
            cell: int = 128) -> Image.Image:
    """A row of crops: the query, then each match (``None``: a grey cell, e.g. when the
    dataset folder is gone), each under its caption (``captions[0]`` is the query's)."""
    text_h, pad = 14, 4
    cells = [query, *matches]
    sheet = Image.new("RGB", (len(cells) * (cell + pad) + pad, cell + text_h + 2 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (crop, text) in enumerate(zip(cells, captions, strict=True)):
        x = pad + i * (cell + pad)
        draw.text((x + 1, pad), text, fill=(0, 0, 160) if i == 0 else (0, 0, 0))
        box = (x, pad + text_h)
        if crop is None:
            draw.rectangle([box, (x + cell - 1, box[1] + cell - 1)], fill=(200, 200, 200))
        else:
            sheet.paste(Image.fromarray(np.asarray(crop, dtype=np.uint8)).resize(
                (cell, cell), Image.NEAREST), box)
    return sheet
