"""Colour augmentation against hand-computed values, with and without the channel shuffle."""

from __future__ import annotations

import numpy as np

from mcss.augment import AugmentConfig, apply_augment, draw_augment

RED = (200, 40, 10)


def _flat_images(n: int) -> np.ndarray:
    images = np.zeros((n, 6, 6, 3), dtype=np.uint8)
    images[...] = RED
    return images


def _colour_only(shuffle: bool) -> AugmentConfig:
    return AugmentConfig(flip=False, colour=True, scale_jitter=0.0, shift_jitter=0.0,
                         channel_shuffle=shuffle)


def test_colour_jitter_of_a_flat_image_matches_the_formula() -> None:
    params = draw_augment(16, np.random.default_rng(3), _colour_only(shuffle=False))
    out = apply_augment(_flat_images(16), params).numpy()
    for i, (brightness, contrast, saturation) in enumerate(params.colour):
        v = brightness * np.array(RED) / 255.0
        v = (v - v.mean()) * contrast + v.mean()  # around the image's mean over channels too
        expected = np.clip((v - v.mean()) * saturation + v.mean(), 0.0, 1.0)
        assert np.allclose(out[i, :, 0, 0], expected, atol=1e-6)


def test_channel_shuffle_moves_the_red_channel_only_when_asked() -> None:
    kept = apply_augment(_flat_images(32), draw_augment(32, np.random.default_rng(0),
                                                        _colour_only(shuffle=False)))
    shuffled = apply_augment(_flat_images(32), draw_augment(32, np.random.default_rng(0),
                                                            _colour_only(shuffle=True)))
    assert (kept[:, :, 0, 0].argmax(dim=1) == 0).all()
    moved = (shuffled[:, :, 0, 0].argmax(dim=1) != 0).float().mean().item()
    assert 0.4 < moved < 0.95  # red lands elsewhere in 4 of the 6 orders
