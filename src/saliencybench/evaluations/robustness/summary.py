"""Means and 95 % intervals of infidelity and max-sensitivity over images, per method,
smoothing and scope; and reading them back. Torch-free."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench import store
from saliencybench.evaluations.robustness.spec import (
    PERTURBATION_OF_SCOPE,
    ROBUSTNESS_FORMAT,
    SMOOTHINGS,
    SUMMARY_FORMAT,
)
from saliencybench.stats import mean_interval


def summarize(paths: Sequence[str | Path]) -> Any:
    """Mean infidelity and max-sensitivity per method, smoothing and scope, with 95 % CIs.

    Args:
        paths: robustness stores of one model, one per method and smoothing (or one per
            method holding every smoothing), methods in the table's order.

    Returns:
        ``xarray.Dataset`` with ``infidelity``, ``sensitivity`` and their ``*_ci`` (normal
        approximation half-widths) and ``images`` over (method, smoothing, scope); NaN for
        a smoothing no store holds (the unsmoothed optimal explanations).
    """
    import xarray as xr

    opened = [store.read_xarray(path, ROBUSTNESS_FORMAT, "robustness store") for path in paths]
    if not opened:
        raise ValueError("no robustness stores to summarize")
    methods = list(dict.fromkeys(part.attrs["name"] for part in opened))
    scopes = list(opened[0]["scope"].values)
    shape = (len(methods), len(SMOOTHINGS), len(scopes))
    variables = {
        key: np.full(shape, np.nan)
        for key in ("infidelity", "infidelity_ci", "sensitivity", "sensitivity_ci")
    }
    images = np.zeros(shape, dtype=np.int64)
    seen: set[tuple[str, str]] = set()
    for path, part in zip(paths, opened, strict=True):
        if list(part["scope"].values) != scopes:
            raise ValueError(f"{path}: scopes {list(part['scope'].values)} differ")
        m = methods.index(part.attrs["name"])
        for smoothed in part["smoothing"].values:
            if (part.attrs["name"], str(smoothed)) in seen:
                raise ValueError(
                    f"{path}: {part.attrs['name']} with smoothing {smoothed} is in two stores"
                )
            seen.add((part.attrs["name"], str(smoothed)))
            s = SMOOTHINGS.index(str(smoothed))
            for k, scope in enumerate(scopes):
                for metric in ("infidelity", "sensitivity"):
                    values = part[metric].sel(smoothing=smoothed, scope=scope).values
                    interval = mean_interval(values)
                    variables[metric][m, s, k] = interval.mean
                    variables[f"{metric}_ci"][m, s, k] = interval.half_width
                    images[m, s, k] = max(images[m, s, k], interval.count)
    dims = ("attribution", "smoothing", "scope")
    return xr.Dataset(
        {
            "infidelity": (dims, variables["infidelity"], {"long_name": "INFD"}),
            "infidelity_ci": (dims, variables["infidelity_ci"]),
            "sensitivity": (dims, variables["sensitivity"], {"long_name": "SENS_MAX"}),
            "sensitivity_ci": (dims, variables["sensitivity_ci"]),
            "images": (dims, images),
        },
        coords={"attribution": methods, "smoothing": list(SMOOTHINGS), "scope": scopes},
        attrs={
            "format": SUMMARY_FORMAT,
            "interval": "normal approximation, 95 %",
            "perturbations": {scope: PERTURBATION_OF_SCOPE[scope] for scope in scopes},
        },
    )


def read_summary(path: str | Path) -> Any:
    """Open a robustness summary (NetCDF) into memory."""
    return store.read_netcdf(path, SUMMARY_FORMAT, "robustness summary")
