"""Square person crops from full images: one implementation for converters and inference,
so a crop at prediction time is made exactly as the training crops of real data were."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image


def square_crop(image: Image.Image, box: Sequence[float], size: int) -> np.ndarray:
    """The square ``box`` ``(x0, y0, side)`` (image px, may leave the image: black there)
    resized to ``size`` px with sub-pixel accuracy and antialiasing: ``(size, size, 3)``."""
    x0, y0, side = (float(v) for v in box[:3])
    left, top = math.floor(x0), math.floor(y0)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    region = rgb.crop((left, top, math.ceil(x0 + side), math.ceil(y0 + side)))
    within = (x0 - left, y0 - top, x0 - left + side, y0 - top + side)
    return np.asarray(region.resize((size, size), Image.Resampling.BILINEAR, box=within))


def centre_square(width: int, height: int) -> np.ndarray:
    """The largest centred square ``(x0, y0, side)`` of a ``width`` x ``height`` frame."""
    side = min(width, height)
    return np.array([(width - side) / 2.0, (height - side) / 2.0, float(side)])
