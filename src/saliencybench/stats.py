"""Image subsets and intervals shared by the evaluations: numpy only, no torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def subset_indices(n: int, max_images: int | None, seed: int) -> np.ndarray:
    """A seeded, sorted subset of ``range(n)`` of size ``max_images`` (all when None)."""
    if max_images is None or max_images >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 2]).choice(n, size=max_images, replace=False))


@dataclass(frozen=True)
class Interval:
    """A mean with the half-width of its 95 % confidence interval."""

    mean: float
    half_width: float
    count: int


def mean_interval(values: np.ndarray, z: float = 1.959963984540054) -> Interval:
    """Mean and 95 % normal-approximation half-width ``z * sd / sqrt(n)`` over finite values.

    The normal approximation is what the FPA paper's "±" reports over thousands of images;
    it needs only the per-image values that the evaluation stores keep.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Interval(math.nan, math.nan, 0)
    if len(values) == 1:
        return Interval(float(values[0]), math.nan, 1)
    return Interval(
        float(values.mean()), float(z * values.std(ddof=1) / math.sqrt(len(values))), len(values)
    )
