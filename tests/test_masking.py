"""Pixel ranking and filling for ROAR and KAR."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.filters import gaussian

from saliencybench.masking import (
    FILLS,
    FillContext,
    descending_order,
    mask_images,
    pixel_count,
    removal_mask,
)
from saliencybench.registry import UnknownNameError

FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
MEAN = (0.2, 0.5, 0.8)
STD = (0.1, 0.2, 0.3)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture
def maps() -> np.ndarray:
    return rng(1).normal(size=(9, 10, 12)).astype(np.float32)


@pytest.fixture
def images() -> np.ndarray:
    return rng(2).integers(0, 256, size=(9, 3, 10, 12), dtype=np.uint8)


@pytest.mark.parametrize("fraction", FRACTIONS)
@pytest.mark.parametrize("mode", ["roar", "kar"])
def test_exact_pixel_count_per_image(maps, fraction, mode):
    mask = removal_mask(maps, fraction, mode, rng())
    expected = int(np.floor(fraction * 120 + 0.5))
    assert (mask.sum(axis=(1, 2)) == expected).all()


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_roar_removes_highest_and_kar_lowest(maps, fraction):
    count = pixel_count(fraction, 120)
    flat = maps.reshape(len(maps), -1)
    # distinct continuous scores: the reference ranking is a plain argsort
    reference = np.argsort(-flat, axis=1, kind="stable")
    roar = removal_mask(maps, fraction, "roar", rng()).reshape(len(maps), -1)
    kar = removal_mask(maps, fraction, "kar", rng()).reshape(len(maps), -1)
    for i in range(len(maps)):
        assert set(np.flatnonzero(roar[i])) == set(reference[i, :count])
        assert set(np.flatnonzero(kar[i])) == set(reference[i, 120 - count :])


def test_ties_are_broken_at_random_but_reproducibly():
    constant = np.zeros((50, 8, 8), dtype=np.float32)
    first = removal_mask(constant, 0.25, "roar", rng(3))
    again = removal_mask(constant, 0.25, "roar", rng(3))
    other = removal_mask(constant, 0.25, "roar", rng(4))
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    # not by pixel index: the top rows would then always go first
    assert first[:, :2, :].mean() < 0.6
    # every pixel is equally likely to be chosen: the share per pixel position is ~0.25
    assert abs(first.mean(axis=0) - 0.25).max() < 0.3
    assert len({row.tobytes() for row in first.reshape(50, -1)}) == 50


def test_ties_only_reorder_equal_scores():
    maps = np.repeat(np.array([3.0, 2.0, 2.0, 2.0, 1.0, 1.0])[None, None, :], 40, axis=0)
    mask = removal_mask(maps, 3 / 6, "roar", rng(0)).reshape(40, 6)
    assert mask[:, 0].all() and not mask[:, 4:].any()
    # two of the three tied pixels, which two varies from image to image
    assert (mask[:, 1:4].sum(axis=1) == 2).all()
    assert len({tuple(row) for row in mask[:, 1:4]}) > 1


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_roar_and_kar_partition_the_pixels(maps, fraction):
    roar = removal_mask(maps, fraction, "roar", rng(7))
    kar = removal_mask(maps, 1 - fraction, "kar", rng(7))
    assert not (roar & kar).any()
    assert (roar | kar).all()


def test_masks_are_nested_across_fractions():
    ties = rng(5).integers(0, 3, size=(6, 9, 9)).astype(np.float32)
    previous = np.zeros_like(ties, dtype=bool)
    for fraction in FRACTIONS:
        mask = removal_mask(ties, fraction, "roar", rng(9))
        assert (mask >= previous).all()
        previous = mask


def test_order_is_a_permutation_and_rejects_nan(maps):
    order = descending_order(maps, rng())
    np.testing.assert_array_equal(np.sort(order, axis=1), np.tile(np.arange(120), (9, 1)))
    maps[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        descending_order(maps, rng())


def test_bad_mode_and_fraction(maps):
    with pytest.raises(ValueError, match="unknown mode 'remove'"):
        removal_mask(maps, 0.5, "remove", rng())
    with pytest.raises(ValueError, match="fraction must lie in"):
        removal_mask(maps, 1.5, "roar", rng())


def _masked(images, maps, fill, **kwargs):
    return mask_images(
        images, maps, fraction=0.3, mode="roar", fill=fill, mean=MEAN, std=STD, seed=4, **kwargs
    )


def test_mean_fill_per_channel_and_untouched_rest(images, maps):
    masked, mask = _masked(images, maps, "mean")
    assert masked.dtype == np.uint8 and masked.shape == images.shape
    for channel, mean in enumerate(MEAN):
        assert (masked[:, channel][mask] == round(mean * 255)).all()
    keep = np.broadcast_to(~mask[:, None], images.shape)
    np.testing.assert_array_equal(masked[keep], images[keep])


@pytest.mark.parametrize(("fill", "value"), [("zero", 0), ("black", 0), ("white", 255)])
def test_black_and_white_fills(images, maps, fill, value):
    masked, mask = _masked(images, maps, fill)
    assert (masked.transpose(1, 0, 2, 3)[:, mask] == value).all()
    assert (masked.transpose(1, 0, 2, 3)[:, ~mask] == images.transpose(1, 0, 2, 3)[:, ~mask]).all()


def test_road_fill_is_quantus_noisy_linear_imputation(monkeypatch):
    from quantus.functions.perturb_func import noisy_linear_imputation

    from saliencybench import masking

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 3, 12, 12)).astype(np.uint8)
    mask = removal_mask(rng.random((7, 12, 12)), 0.6, "roar", np.random.default_rng(1))
    context = FillContext((0.5,) * 3, (0.25,) * 3, 2.0, np.random.default_rng(2), mask, 0.0)
    whole = FILLS.get("road")(images, context)
    for i in range(len(images)):
        removed = np.flatnonzero(mask[i].reshape(-1))
        reference = noisy_linear_imputation(images[i].astype(float), indices=removed, noise=0.0)
        np.testing.assert_allclose(whole[i], reference, rtol=0, atol=1e-9)
    # several solves of a few images each give the same numbers as one
    monkeypatch.setattr(masking, "ROAD_PIXELS_PER_SOLVE", 200)
    np.testing.assert_allclose(FILLS.get("road")(images, context), whole, rtol=0, atol=1e-9)


def test_road_fill_leaves_no_silhouette_and_adds_its_noise():
    """A constant image stays constant under road, where the mean fill draws the mask."""
    images = np.full((50, 1, 10, 10), 200, dtype=np.uint8)
    maps = np.random.default_rng(0).random((50, 10, 10))
    kwargs = {"fraction": 0.5, "mode": "roar", "mean": (0.5,), "std": (0.2,), "seed": 0}
    road, mask = mask_images(images, maps, fill="road", **kwargs)
    mean, _ = mask_images(images, maps, fill="mean", **kwargs)
    assert np.abs(road.astype(int) - 200).max() <= 2 and (mean[:, 0][mask] == 128).all()
    # N(0, 0.01^2) in the normalized space is 0.01 x 0.2 x 255 = 0.51 pixel levels
    context = FillContext((0.5,), (0.2,), 2.0, np.random.default_rng(3), mask)
    filled = FILLS.get("road")(images, context)[:, 0][mask]
    assert np.std(filled - 200) == pytest.approx(0.51, rel=0.05)


def test_blur_fill_matches_scikit_image(images, maps):
    masked, mask = _masked(images, maps, "blur", blur_sigma=1.5)
    reference = np.stack(
        [
            gaussian(
                image.astype(np.float64),
                sigma=1.5,
                mode="reflect",
                truncate=4.0,
                preserve_range=True,
                channel_axis=0,
            )
            for image in images
        ]
    )
    expected = np.clip(np.rint(reference), 0, 255).astype(np.uint8)
    assert (
        np.abs(masked.astype(int) - expected.astype(int)).transpose(1, 0, 2, 3)[:, mask] <= 1
    ).all()


def test_noise_fill_statistics():
    images = np.zeros((400, 3, 16, 16), dtype=np.uint8)
    maps = rng(0).random((400, 16, 16))
    # statistics far from 0 and 255, so that clipping does not bias them
    mean, std = (0.3, 0.5, 0.6), (0.05, 0.1, 0.08)
    masked, mask = mask_images(
        images, maps, fraction=0.5, mode="roar", fill="noise", mean=mean, std=std, seed=1
    )
    for channel in range(3):
        values = masked[:, channel][mask].astype(np.float64)
        assert abs(values.mean() - mean[channel] * 255) < 0.5
        assert abs(values.std() - std[channel] * 255) < 0.02 * std[channel] * 255
    again, _ = mask_images(
        images, maps, fraction=0.5, mode="roar", fill="noise", mean=mean, std=std, seed=1
    )
    np.testing.assert_array_equal(masked, again)


def test_unknown_fill_and_shape_mismatch(images, maps):
    with pytest.raises(UnknownNameError, match="unknown fill 'gray'.*mean"):
        _masked(images, maps, "gray")
    with pytest.raises(ValueError, match="do not match images"):
        _masked(images, maps[:, :5], "mean")
    assert FILLS.names() == ["black", "blur", "mean", "noise", "road", "white", "zero"]
