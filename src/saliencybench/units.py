"""Baselines, fills and noise scales with their unit, and their values in the model's space.

Models read images z-scored per channel with the training mean and standard deviation
(pixel values in [0, 1] first), so a constant 0 in that normalized space is the training
mean, not black. Papers state baselines in pixel units (Sundararajan et al. 2017 and Yeh et
al. 2019 use black). A value here says its unit:

- a bare number, or ``{normalized: v}``: ``v`` in the normalized space (0 = training mean);
- ``mean``: the training mean, 0 in the normalized space;
- ``black`` and ``white``: pixel value 0 and 1 in every channel;
- ``{pixel: v}``: pixel value ``v`` in [0, 1] in every channel.

A noise scale (a standard deviation) is a bare number or ``{normalized: s}`` in the
normalized space, or ``{pixel: s}`` in pixel units, where channel c's value is ``s / std_c``.

Torch-free: config validation and the methods' parameter checks use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

# Named fills, in pixel units; `mean` is handled apart (it is 0 whatever the statistics).
NAMED_PIXEL_VALUES = {"black": 0.0, "white": 1.0}
UNITS = ("normalized", "pixel")


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


def _unit_and_number(value: Any, what: str) -> tuple[str, float]:
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in UNITS:
            raise ValueError(
                f"{what} as a mapping must have one key, 'pixel' or 'normalized', got {value!r}"
            )
        ((unit, number),) = value.items()
        if not _finite(number):
            raise ValueError(f"{what} {{{unit}: ...}} must be a finite number, got {number!r}")
        return unit, float(number)
    if _finite(value):
        return "normalized", float(value)
    raise ValueError(f"{what} must be a number, {{pixel: v}} or {{normalized: v}}, got {value!r}")


def check_fill(value: Any) -> float | str | dict[str, float]:
    """Validate a baseline or fill value; return it in a canonical form.

    Returns:
        A float (normalized space), ``"mean"``, ``"black"``, ``"white"`` or
        ``{"pixel": v}`` with v in [0, 1].

    Raises:
        ValueError: anything else, with what was expected.
    """
    if isinstance(value, str):
        if value == "mean" or value in NAMED_PIXEL_VALUES:
            return value
        raise ValueError(
            f"must be 'black', 'white', 'mean', a number (normalized space), {{pixel: v}} or "
            f"{{normalized: v}}, got {value!r}"
        )
    unit, number = _unit_and_number(value, "a fill value")
    if unit == "normalized":
        return number
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{{pixel: v}} must have v in [0, 1], got {number}")
    return {"pixel": number}


def check_scale(value: Any) -> float | dict[str, float]:
    """Validate a noise standard deviation: a positive number (normalized space) or
    ``{pixel: s}`` / ``{normalized: s}``; return it canonical (a float when normalized)."""
    unit, number = _unit_and_number(value, "a noise scale")
    if number <= 0:
        raise ValueError(f"a noise scale must be > 0, got {number}")
    return number if unit == "normalized" else {"pixel": number}


def _stats(mean: Sequence[float] | None, std: Sequence[float] | None, what: str):
    if mean is None or std is None:
        raise ValueError(f"{what} in pixel units needs the dataset's channel mean and std")
    return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)


def fill_values(
    value: Any, mean: Sequence[float] | None, std: Sequence[float] | None, channels: int
) -> np.ndarray:
    """A fill value in the normalized space, one per channel.

    Args:
        value: anything :func:`check_fill` accepts.
        mean, std: the dataset's per-channel normalization, in pixel units [0, 1]; needed
            only for values given in pixel units.
        channels: the number of image channels.

    Returns:
        float64 array of shape (channels,).
    """
    value = check_fill(value)
    if value == "mean":
        return np.zeros(channels)
    if isinstance(value, float):
        return np.full(channels, value)
    pixel = NAMED_PIXEL_VALUES[value] if isinstance(value, str) else value["pixel"]
    mean_c, std_c = _stats(mean, std, f"fill {value!r}")
    return np.broadcast_to((pixel - mean_c) / std_c, (channels,)).astype(np.float64)


def scale_values(value: Any, std: Sequence[float] | None, channels: int) -> np.ndarray:
    """A noise standard deviation in the normalized space, one per channel."""
    value = check_scale(value)
    if isinstance(value, float):
        return np.full(channels, value)
    if std is None:
        raise ValueError(f"noise scale {value!r} in pixel units needs the dataset's channel std")
    std_c = np.asarray(std, dtype=np.float64)
    return np.broadcast_to(value["pixel"] / std_c, (channels,)).astype(np.float64)


def describe_fill(value: Any) -> str:
    """The value with its unit, for logs and provenance (``black (pixel 0)``)."""
    value = check_fill(value)
    if value == "mean":
        return "mean (the training mean, 0 in the normalized space)"
    if isinstance(value, float):
        return f"{value:g} in the normalized space"
    if isinstance(value, str):
        return f"{value} (pixel value {NAMED_PIXEL_VALUES[value]:g} in every channel)"
    return f"pixel value {value['pixel']:g} in every channel"


def describe_scale(value: Any) -> str:
    value = check_scale(value)
    if isinstance(value, float):
        return f"{value:g} in the normalized space"
    return f"{value['pixel']:g} in pixel units"
