"""Fidelity A of stored curves, and the per-model summary of every recipe and estimator.
numpy and xarray only: the summary and report jobs never import torch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from saliencybench import store
from saliencybench.evaluations.curves.spec import (
    CURVES_FORMAT,
    FPA_ESTIMATORS,
    ORDERS,
    estimator_label,
)
from saliencybench.stats import mean_interval

FIDELITY_FORMAT = "saliencybench.fidelity/1"


def normalize_curves(curves: np.ndarray) -> np.ndarray:
    """Curves divided by their unperturbed value (point 0), image by image.

    An image whose unperturbed logit is not positive has no meaningful ratio (dividing
    would flip or blow up its curve): its normalized curve is NaN, and means skip it.
    """
    curves = np.asarray(curves, dtype=np.float64)
    base = curves[..., :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base > 0, curves / np.where(base > 0, base, 1.0), np.nan)


def fidelity_areas(curves: np.ndarray) -> np.ndarray:
    """Per-image fidelity A: ∫ LIF − ∫ MIF of the normalized curves over [0, 1], x100.

    Args:
        curves: (..., 2, K+1) raw logit curves (MIF first).
    """
    normalized = normalize_curves(curves)
    steps = normalized.shape[-1] - 1
    # Trapezoid rule on the even grid k / K.
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] = 0.5 / steps
    integrals = normalized @ weights
    return 100.0 * (integrals[..., 1] - integrals[..., 0])


def _estimator_rank(label: str) -> tuple[int, str]:
    order = list(dict.fromkeys(FPA_ESTIMATORS.values()))
    return (order.index(label), "") if label in order else (len(order), label)


def summarize(stores: Mapping[str, Sequence], recipes: Sequence[str] | None = None):
    """Fidelity A and mean normalized curves of every estimator, one row per recipe.

    Args:
        stores: curve stores by recipe name.
        recipes: the recipes' row order; default the order of ``stores``.

    Returns:
        ``xarray.Dataset`` with ``area`` and ``area_ci`` (95 % half-width, normal
        approximation) and ``images`` over (recipe, estimator), ``curve`` (mean normalized
        logit) over (recipe, estimator, order, fraction), and ``example_scores`` and
        ``example_curve`` (the first image) for the figure of one image's LIF curve.
        Estimators are in the column order of the FPA paper's Table 1, then by name.
    """
    import xarray as xr

    recipes = list(stores) if recipes is None else list(recipes)
    if sorted(recipes) != sorted(stores):
        raise ValueError(f"recipes {recipes} do not name the stores' recipes {list(stores)}")
    rows: dict[tuple[str, str], dict] = {}
    fractions = None
    for recipe in recipes:
        for path in stores[recipe]:
            opened = store.read_xarray(path, CURVES_FORMAT, "curves store")
            fractions = opened["fraction"].values
            for reduction in opened["reduction"].values:
                part = opened.sel(reduction=reduction)
                label = estimator_label(opened.attrs["method"], opened.attrs["name"], reduction)
                normalized = normalize_curves(part["logits"].values)
                interval = mean_interval(part["area"].values)
                usable = np.isfinite(normalized).all(axis=(1, 2))
                curve = (
                    normalized[usable].mean(axis=0)
                    if usable.any()
                    else np.full(normalized.shape[1:], np.nan)
                )
                rows[(recipe, label)] = {
                    "area": interval.mean,
                    "area_ci": interval.half_width,
                    "images": interval.count,
                    "curve": curve,
                    "example_curve": normalized[0],
                    "example_scores": part["example_scores"].values,
                }
    if not rows:
        raise ValueError("no curve stores to summarize")
    estimators = sorted({label for _, label in rows}, key=_estimator_rank)
    pixels = max(len(row["example_scores"]) for row in rows.values())
    shape = (len(recipes), len(estimators))
    variables = {
        "area": np.full(shape, np.nan),
        "area_ci": np.full(shape, np.nan),
        "images": np.zeros(shape, dtype=np.int64),
        "curve": np.full((*shape, len(ORDERS), len(fractions)), np.nan),
        "example_curve": np.full((*shape, len(ORDERS), len(fractions)), np.nan),
        "example_scores": np.full((*shape, pixels), np.nan),
    }
    for (recipe, label), row in rows.items():
        index = (recipes.index(recipe), estimators.index(label))
        for key, array in variables.items():
            value = row[key]
            if key == "example_scores":
                array[index][: len(value)] = value
            else:
                array[index] = value
    dims = ("recipe", "estimator")
    return xr.Dataset(
        {
            "area": (dims, variables["area"], {"long_name": "fidelity A (x100)"}),
            "area_ci": (dims, variables["area_ci"], {"long_name": "95 % CI half-width of A"}),
            "images": (dims, variables["images"]),
            "curve": ((*dims, "order", "fraction"), variables["curve"]),
            "example_curve": ((*dims, "order", "fraction"), variables["example_curve"]),
            "example_scores": ((*dims, "pixel"), variables["example_scores"]),
        },
        coords={
            "recipe": recipes,
            "estimator": estimators,
            "order": list(ORDERS),
            "fraction": fractions,
        },
        attrs={"format": FIDELITY_FORMAT, "interval": "normal approximation, 95 %"},
    )


def read_fidelity(path):
    """Open a fidelity summary (NetCDF written by ``store.write_netcdf``) into memory."""
    return store.read_netcdf(path, FIDELITY_FORMAT, "fidelity summary")
