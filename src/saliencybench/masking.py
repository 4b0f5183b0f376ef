"""Ranking pixels by an attribution map and replacing a share of them (ROAR and KAR).

Hooker et al. (2019) remove the share ``t`` of pixels an attribution method ranks highest
(ROAR, *remove and retrain*) or lowest (KAR, *keep and retrain*) from every train and test
image and retrain. Everything here is NumPy over whole splits, so masking jobs do not pay for
importing torch, and no Python loop runs over images.

Ranks break ties at random with a seeded generator, never by pixel index: a constant map
(e.g. Grad-CAM outside the object) must not remove the top rows of the image first. The
tie-breaking draw depends only on the seed and the split, so masks are nested across
fractions, and ROAR at ``t`` and KAR at ``1 - t`` partition the pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from saliencybench.registry import Registry

MODES = ("roar", "kar")


def pixel_count(fraction: float, n_pixels: int) -> int:
    """Number of pixels a fraction of ``n_pixels`` means: round half up, in [0, n_pixels]."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    return min(n_pixels, int(np.floor(fraction * n_pixels + 0.5)))


def descending_order(maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat pixel indices of every map from most to least important, ties in random order.

    Args:
        maps: (N, H, W) attribution maps.
        rng: draws the tie-breaking key, one uniform number per pixel.

    Returns:
        (N, H*W) int64 pixel indices.
    """
    scores = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    if not np.isfinite(scores).all():
        raise ValueError("attribution maps contain NaN or infinite values")
    tie_break = rng.random(scores.shape)
    # lexsort sorts by the last key first: score descending, then the random key.
    return np.lexsort((tie_break, -scores), axis=-1)


def removal_mask(
    maps: np.ndarray, fraction: float, mode: str, rng: np.random.Generator
) -> np.ndarray:
    """Boolean (N, H, W) mask of the pixels to replace.

    Args:
        maps: (N, H, W) attribution maps, higher = more important.
        fraction: share of pixels to replace per image.
        mode: ``roar`` replaces the highest-ranked share, ``kar`` the lowest-ranked.
        rng: tie-breaking generator (see :func:`descending_order`).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    n, height, width = maps.shape
    n_pixels = height * width
    order = descending_order(maps, rng)
    count = pixel_count(fraction, n_pixels)
    chosen = order[:, :count] if mode == "roar" else order[:, n_pixels - count :]
    mask = np.zeros((n, n_pixels), dtype=bool)
    np.put_along_axis(mask, chosen, True, axis=1)
    return mask.reshape(n, height, width)


# --------------------------------------------------------------------------- fills


# The road fill's noise, N(0, 0.01^2) in the normalized space: Rong et al. (2022)'s default.
ROAD_NOISE = 0.01


@dataclass(frozen=True)
class FillContext:
    """What a fill may use besides the images.

    Attributes:
        mean, std: per-channel statistics of the training images, scaled to [0, 1].
        blur_sigma: standard deviation in pixels of the ``blur`` fill.
        rng: generator of the ``noise`` and ``road`` fills.
        mask: the (N, H, W) pixels being replaced, for fills that depend on them (``road``).
        road_noise: standard deviation of the ``road`` fill's noise in the normalized space.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    blur_sigma: float
    rng: np.random.Generator
    mask: np.ndarray | None = None
    road_noise: float = ROAD_NOISE


Fill = Callable[[np.ndarray, FillContext], np.ndarray]
FILLS: Registry[Fill] = Registry("fill")


def _per_channel(values: tuple[float, ...], images: np.ndarray) -> np.ndarray:
    column = np.asarray(values, dtype=np.float64).reshape(1, -1, 1, 1) * 255.0
    return np.broadcast_to(column, images.shape)


@FILLS.register("mean")
def fill_mean(images: np.ndarray, context: FillContext) -> np.ndarray:
    """The per-channel mean of the training set (Hooker et al. 2019)."""
    return _per_channel(context.mean, images)


@FILLS.register("black")
@FILLS.register("zero")
def fill_black(images: np.ndarray, context: FillContext) -> np.ndarray:
    """Black: pixel value 0 in every channel (``zero`` is its older name)."""
    return np.zeros(images.shape)


@FILLS.register("white")
def fill_white(images: np.ndarray, context: FillContext) -> np.ndarray:
    """White: pixel value 1 (255) in every channel."""
    return np.full(images.shape, 255.0)


@FILLS.register("blur")
def fill_blur(images: np.ndarray, context: FillContext) -> np.ndarray:
    """The image blurred by a Gaussian of ``blur_sigma`` pixels, channel by channel."""
    from scipy.ndimage import gaussian_filter

    sigma = (0.0, 0.0, context.blur_sigma, context.blur_sigma)
    return gaussian_filter(images.astype(np.float64), sigma=sigma, mode="reflect")


@FILLS.register("noise")
def fill_noise(images: np.ndarray, context: FillContext) -> np.ndarray:
    """Gaussian noise with the per-channel mean and std of the training set."""
    noise = context.rng.standard_normal(images.shape)
    return noise * _per_channel(context.std, images) + _per_channel(context.mean, images)


# Rong et al. (2022), ROAD: each removed pixel is the weighted mean of its eight neighbours,
# direct ones weighing 1/6 and diagonal ones 1/12, whether those are kept or removed too.
_ROAD_NEIGHBOURS = (
    (1, 1, 1 / 12),
    (0, 1, 1 / 6),
    (-1, 1, 1 / 12),
    (1, -1, 1 / 12),
    (0, -1, 1 / 6),
    (-1, -1, 1 / 12),
    (1, 0, 1 / 6),
    (-1, 0, 1 / 6),
)


# Removed pixels per sparse solve of the road fill: bounds the factorization's memory.
ROAD_PIXELS_PER_SOLVE = 200_000


@FILLS.register("road")
def fill_road(images: np.ndarray, context: FillContext) -> np.ndarray:
    """Noisy linear imputation (Rong et al. 2022, ROAD): removed pixels take the values that
    make each of them the weighted mean of its neighbours (one sparse linear system over the
    removed pixels of many images at once, solved for every channel), plus Gaussian noise of
    ``road_noise`` in the normalized space. The fill follows the image around the hole, so
    the mask leaves no silhouette of a constant colour to learn from.
    """
    if context.mask is None:
        raise ValueError("the road fill needs the removal mask")
    std = np.asarray(context.std, dtype=np.float64)
    mean = np.asarray(context.mean, dtype=np.float64) * 255.0
    return road_impute(
        images, context.mask, context.rng, context.road_noise, pixel_std=std, empty_value=mean
    )


def road_impute(
    images: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    noise_std: float,
    pixel_std: np.ndarray | None = None,
    empty_value: float | np.ndarray = 0.0,
) -> np.ndarray:
    """The images with the pixels of ``mask`` imputed from their neighbours, plus noise.

    Args:
        images: (N, C, H, W), normalized or in pixel levels; the imputation is linear, so it
            commutes with a per-channel normalization.
        mask: (N, H, W) bool, the pixels to impute (all channels).
        noise_std: standard deviation of the Gaussian noise added to imputed values, in the
            normalized space.
        pixel_std: for images in pixel levels (0 to 255), the training set's per-channel
            standard deviation in [0, 1], which converts the noise to pixel levels.
        empty_value: the value (one, or one per channel) of an image whose every pixel is
            removed, where no neighbour is left to impute from: the training mean, which is
            0 in the normalized space.

    Returns:
        (N, C, H, W) float64.
    """
    n, channels, height, width = images.shape
    per_image = max(1, int(mask.reshape(n, -1).sum(1).max())) if n else 1
    step = max(1, ROAD_PIXELS_PER_SOLVE // per_image)
    filled = np.empty((n, height, width, channels))
    # An image with every pixel removed makes the system singular: it takes empty_value.
    empty = mask.reshape(n, -1).all(1)
    filled[empty] = np.broadcast_to(np.asarray(empty_value, dtype=np.float64), channels)
    partial = np.flatnonzero(~empty)
    for start in range(0, len(partial), step):
        chunk = partial[start : start + step]
        filled[chunk] = _road_solve(images[chunk], mask[chunk])
    noise = rng.standard_normal((int(mask.sum()), channels)) * noise_std
    if pixel_std is not None:
        noise = noise * pixel_std * 255.0
    filled[mask] += noise
    return filled.transpose(0, 3, 1, 2)


def _road_solve(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The imputed images, (N, H, W, C) float64: kept pixels as they are, removed ones
    from one sparse solve over the whole chunk."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve

    n, channels, height, width = images.shape
    pixels = images.astype(np.float64).transpose(0, 2, 3, 1).reshape(-1, channels)
    unknown = np.flatnonzero(mask.reshape(-1))
    if not len(unknown):
        return pixels.reshape(n, height, width, channels)
    variable = np.full(len(pixels), -1, dtype=np.int64)
    variable[unknown] = np.arange(len(unknown))
    image, rest = np.divmod(unknown, height * width)
    y, x = np.divmod(rest, width)
    rows, cols, weights = [], [], []
    total = np.zeros(len(unknown))
    rhs = np.zeros((len(unknown), channels))
    for dy, dx, weight in _ROAD_NEIGHBOURS:
        ny, nx = y + dy, x + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        own = np.flatnonzero(inside)
        neighbour = image[inside] * height * width + ny[inside] * width + nx[inside]
        total[own] += weight
        removed = variable[neighbour] >= 0
        rows.append(own[removed])
        cols.append(variable[neighbour[removed]])
        weights.append(np.full(int(removed.sum()), -weight))
        rhs[own[~removed]] += weight * pixels[neighbour[~removed]]
    diagonal = np.arange(len(unknown))
    entries = (np.concatenate([*rows, diagonal]), np.concatenate([*cols, diagonal]))
    system = csc_matrix(
        (np.concatenate([*weights, total]), entries), shape=(len(unknown), len(unknown))
    )
    pixels[unknown] = spsolve(system, rhs).reshape(len(unknown), channels)
    return pixels.reshape(n, height, width, channels)


def apply_mask(images: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Replace the masked pixels of uint8 (N, C, H, W) images, all channels, by ``fill``.

    ``fill`` is rounded to the nearest integer and clipped to [0, 255], so a masked dataset
    has the same dtype and layout as the dataset it came from.
    """
    replacement = np.clip(np.rint(fill), 0, 255).astype(images.dtype)
    channel_mask = np.broadcast_to(mask[:, None, :, :], images.shape)
    return np.where(channel_mask, replacement, images)


def mask_images(
    images: np.ndarray,
    maps: np.ndarray,
    *,
    fraction: float,
    mode: str,
    fill: str,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    seed: int,
    blur_sigma: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Replace the ``fraction`` of pixels that ``maps`` ranks highest (ROAR) or lowest (KAR).

    Args:
        images: uint8 (N, C, H, W).
        maps: (N, H, W) attribution maps of the same images.
        fill: name in :data:`FILLS`.
        mean, std: per-channel training statistics in [0, 1] units.
        seed: seeds the tie-breaking (from ``seed`` alone, so masks nest across fractions)
            and, separately, the noise fill.

    Returns:
        ``(masked images, removal mask (N, H, W))``.
    """
    if maps.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"maps of shape {maps.shape} do not match images of shape {images.shape}")
    fill_fn = FILLS.get(fill)
    mask = removal_mask(maps, fraction, mode, np.random.default_rng([seed, 0]))
    context = FillContext(
        mean=tuple(mean),
        std=tuple(std),
        blur_sigma=blur_sigma,
        rng=np.random.default_rng([seed, 1]),
        mask=mask,
    )
    return apply_mask(images, mask, fill_fn(images, context)), mask
