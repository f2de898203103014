"""Augmentation against hand-computed values: colour with and without the channel shuffle,
erasing, hue, and the in-plane rotation of pixels and labels together."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mcss.augment import (
    AugmentConfig,
    apply_augment,
    draw_augment,
    flip_pose,
    rotate_pose,
    same_colour_per_group,
)
from mcss.geometry import to_canonical

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


def test_colour_strength_scales_the_jitter_spread_and_nothing_else() -> None:
    draws = {k: draw_augment(400, np.random.default_rng(5), AugmentConfig(colour_strength=k))
             for k in (0.0, 1.0, 2.0)}
    # strength 1 draws the documented ranges: 0.7-1.3, 0.7-1.3, 0.6-1.4
    lo, hi = draws[1.0].colour.min(axis=0), draws[1.0].colour.max(axis=0)
    assert np.all(lo >= [0.7, 0.7, 0.6]) and np.all(hi <= [1.3, 1.3, 1.4])
    assert np.all(lo < [0.71, 0.71, 0.61]) and np.all(hi > [1.29, 1.29, 1.39])
    # the same uniform draw, twice as far from 1; none at all at strength 0
    assert np.allclose(draws[2.0].colour - 1.0, 2.0 * (draws[1.0].colour - 1.0), atol=1e-12)
    assert np.array_equal(draws[0.0].colour, np.ones((400, 3)))
    for name in ("flipped", "scale", "shift", "channels"):
        assert np.array_equal(getattr(draws[2.0], name), getattr(draws[1.0], name))


def test_channel_shuffle_moves_the_red_channel_only_when_asked() -> None:
    kept = apply_augment(_flat_images(32), draw_augment(32, np.random.default_rng(0),
                                                        _colour_only(shuffle=False)))
    shuffled = apply_augment(_flat_images(32), draw_augment(32, np.random.default_rng(0),
                                                            _colour_only(shuffle=True)))
    assert (kept[:, :, 0, 0].argmax(dim=1) == 0).all()
    moved = (shuffled[:, :, 0, 0].argmax(dim=1) != 0).float().mean().item()
    assert 0.4 < moved < 0.95  # red lands elsewhere in 4 of the 6 orders


def _erase_only(probability: float) -> AugmentConfig:
    return AugmentConfig(flip=False, colour=False, scale_jitter=0.0, shift_jitter=0.0,
                         erase=probability)


def test_random_erasing_fills_exactly_its_rectangle() -> None:
    images = _flat_images(64)
    params = draw_augment(64, np.random.default_rng(5), _erase_only(1.0))
    out = apply_augment(images, params).numpy()
    flat = np.array(RED, dtype=np.float32)[:, None, None] / 255.0
    centres = (np.arange(6) + 0.5) / 6
    for i, (on, top, left, height, width, *fill) in enumerate(params.erase):
        assert on == 1.0
        rows = (centres >= top) & (centres < top + height)
        cols = (centres >= left) & (centres < left + width)
        inside = rows[:, None] & cols[None, :]
        expected = np.where(inside, np.array(fill, dtype=np.float32)[:, None, None], flat)
        assert np.allclose(out[i], expected, atol=1e-6)
    shares = params.erase[:, 3] * params.erase[:, 4]
    assert shares.min() >= 0.02 - 1e-9 and shares.max() <= 0.25 + 1e-9


def test_erasing_off_leaves_the_other_draws_and_the_images_unchanged() -> None:
    cfg = AugmentConfig()
    plain = draw_augment(32, np.random.default_rng(7), cfg)
    erased = draw_augment(32, np.random.default_rng(7), AugmentConfig(erase=0.5))
    assert plain.erase is None
    for name in ("flipped", "scale", "shift", "colour", "channels"):
        assert np.array_equal(getattr(plain, name), getattr(erased, name))
    assert 8 <= erased.erase[:, 0].sum() <= 24  # about half of 32
    images = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    kept = erased.erase[:, 0] == 0
    assert np.allclose(apply_augment(images, plain)[kept], apply_augment(images, erased)[kept])
    assert not np.allclose(apply_augment(images, plain)[~kept],
                           apply_augment(images, erased)[~kept])
    assert erased[4:12].erase.shape == (8, 8)


def test_hue_rotation_keeps_grey_and_turns_red_into_green_at_120_degrees() -> None:
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    images[0] = (255, 0, 0)
    images[1] = (90, 90, 90)
    images[2] = (200, 40, 10)
    params = draw_augment(3, np.random.default_rng(0), AugmentConfig(
        flip=False, colour=False, scale_jitter=0.0, shift_jitter=0.0, hue=True))
    params = replace(params, hue=np.array([2 * np.pi / 3, 1.0, 4 * np.pi / 3]))
    out = apply_augment(images, params).numpy()[:, :, 0, 0]
    assert np.allclose(out[0], [0.0, 1.0, 0.0], atol=1e-6)
    assert np.allclose(out[1], 90 / 255, atol=1e-6)
    assert np.allclose(out[2], np.array([40, 10, 200]) / 255, atol=1e-6)  # 240: R->B, G->R


def _dot_image(row: int, col: int, size: int = 8) -> np.ndarray:
    image = np.zeros((1, size, size, 3), dtype=np.uint8)
    image[0, row, col] = 255
    return image


def _geometry_only(**overrides: object) -> AugmentConfig:
    return AugmentConfig(**{"flip": False, "colour": False, "scale_jitter": 0.0,
                            "shift_jitter": 0.0, **overrides})


def _normalised_point(row: float, col: float, size: int = 8) -> np.ndarray:
    """A camera-frame point at depth 1 that projects onto pixel (row, col) of a crop whose
    centre is on the optical axis (normalised coordinates, y down)."""
    return np.array([(2 * col + 1) / size - 1, (2 * row + 1) / size - 1, 1.0])


def test_a_quarter_turn_moves_the_pixel_where_the_rotated_label_projects() -> None:
    params = replace(draw_augment(1, np.random.default_rng(0), _geometry_only(rotate=90)),
                     rotation=np.array([np.pi / 2]))
    out = apply_augment(_dot_image(1, 6), params).numpy()[0, 0]
    assert np.argwhere(out > 0.99).tolist() == [[1, 1]]  # upper right -> upper left
    turned = rotate_pose(_normalised_point(1, 6)[None, None], params.rotation)[0, 0]
    assert np.allclose(turned, _normalised_point(1, 1))


def test_flip_then_rotation_agree_between_pixels_and_labels() -> None:
    params = replace(draw_augment(1, np.random.default_rng(0), _geometry_only(rotate=90)),
                     flipped=np.array([True]), rotation=np.array([np.pi / 2]))
    out = apply_augment(_dot_image(1, 6), params).numpy()[0, 0]
    assert np.argwhere(out > 0.99).tolist() == [[6, 1]]  # mirrored, then a quarter turn
    pose = np.repeat(_normalised_point(1, 6)[None, None], 17, axis=1)
    label = rotate_pose(flip_pose(pose), params.rotation)
    assert np.allclose(label[0, 0], _normalised_point(6, 1))


def test_a_small_rotation_moves_the_dot_by_the_labelled_angle() -> None:
    size, angle = 32, np.deg2rad(25.0)
    params = replace(draw_augment(1, np.random.default_rng(0), _geometry_only(rotate=30)),
                     rotation=np.array([angle]))
    out = apply_augment(_dot_image(4, 26, size), params).numpy()[0, 0].astype(np.float64)
    rows, cols = np.mgrid[:size, :size]
    centroid = np.array([(out * rows).sum(), (out * cols).sum()]) / out.sum()
    turned = rotate_pose(_normalised_point(4, 26, size)[None, None], np.array([angle]))[0, 0]
    expected_col, expected_row = ((turned[:2] + 1) * size - 1) / 2
    assert np.allclose(centroid, [expected_row, expected_col], atol=0.15)


def test_rotation_keeps_the_other_draws_and_the_canonical_pose() -> None:
    plain = draw_augment(32, np.random.default_rng(7), AugmentConfig())
    turned = draw_augment(32, np.random.default_rng(7), AugmentConfig(rotate=30))
    assert plain.rotation is None
    for name in ("flipped", "scale", "shift", "colour", "channels"):
        assert np.array_equal(getattr(plain, name), getattr(turned, name))
    assert np.abs(turned.rotation).max() <= np.deg2rad(30)
    assert turned[4:12].rotation.shape == (8,)
    pose = np.random.default_rng(1).normal(size=(32, 17, 3))
    assert np.allclose(to_canonical(rotate_pose(pose, turned.rotation)), to_canonical(pose))
    assert np.allclose(np.linalg.norm(rotate_pose(pose, turned.rotation), axis=-1),
                       np.linalg.norm(pose, axis=-1))


def test_views_of_one_instant_can_share_one_colour_draw() -> None:
    drawn = draw_augment(12, np.random.default_rng(2), AugmentConfig(hue=True, rotate=10))
    shared = same_colour_per_group(drawn, 4)
    for name in ("colour", "channels", "hue"):
        groups = getattr(shared, name).reshape(3, 4, -1)
        assert (groups == groups[:, :1]).all()
        assert np.array_equal(groups[:, 0], getattr(drawn, name).reshape(3, 4, -1)[:, 0])
    for name in ("flipped", "scale", "shift", "rotation"):  # geometry stays per crop
        assert np.array_equal(getattr(shared, name), getattr(drawn, name))
    assert np.array_equal(same_colour_per_group(drawn, 1).channels, drawn.channels)
    with pytest.raises(ValueError, match="groups of 5"):
        same_colour_per_group(drawn, 5)
