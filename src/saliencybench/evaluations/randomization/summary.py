"""The extended IPR test of one model (Sriram & Conati): ``S^I`` with its bootstrap interval,
pass or fail, and the mean similarity curves of every method. numpy and xarray only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench import store

RANDOMIZATION_FORMAT = "saliencybench.randomization/1"
# Version 2 names the method dimension `attribution` (`method` is a keyword of xarray's sel).
RANDOMIZATION_SUMMARY_FORMAT = "saliencybench.randomization_summary/2"
# The order of the store's ``mode`` and ``metric`` dimensions; compute writes them so.
MODES = ("cascading", "independent")
# The metric the extended IPR test is defined on.
SSIM = "ssim"
METRICS = (SSIM, "spearman_abs", "spearman")
# Streams of numpy generators seeded [seed, stream]: 2 is the image subset
# (saliencybench.stats), 3 the permuted labels (compute.LABEL_STREAM).
BOOTSTRAP_STREAM = 4


def image_sensitivity(ssim_by_layer: np.ndarray) -> np.ndarray:
    """``S^i``: the mean over layers of ``S_l^i = 1 - SSIM`` (Sriram & Conati, eqs. 2 and 4).

    Args:
        ssim_by_layer: (N, L) SSIM of each image under each independent randomization.
    """
    return (1.0 - np.asarray(ssim_by_layer, dtype=np.float64)).mean(axis=1)


def sensitive_images(ssim_by_layer: np.ndarray, threshold: float) -> np.ndarray:
    """Images for which the method is sensitive: SSIM < threshold for every layer (Def. 2)."""
    return (np.asarray(ssim_by_layer) < threshold).all(axis=1)


def bootstrap_interval(
    values: np.ndarray, *, confidence: float, samples: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaNs dropped), seeded.

    ``samples`` resamples of the values with replacement; the interval runs from the
    ``(1 - confidence) / 2`` to the ``(1 + confidence) / 2`` quantile of their means.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng([int(seed), BOOTSTRAP_STREAM])
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def read_store(path: str | Path):
    """Open a randomization store written by ``compute.compute``, loaded into memory."""
    return store.read_xarray(path, RANDOMIZATION_FORMAT, "randomization store")


def summarize(
    stores: Sequence[str | Path],
    *,
    ssim_threshold: float,
    pass_threshold: float,
    confidence: float,
    bootstrap_samples: int,
    seed: int,
    attrs: Mapping[str, Any] | None = None,
):
    """The extended IPR test and the mean similarity curves of every method of one model.

    Args:
        stores: randomization stores of one model, one per method, in table order.
        ssim_threshold: SSIM below which a map counts as changed (Sriram & Conati: 0.99).
        pass_threshold: ``S^I`` at or above which a method passes (0.01).
        confidence, bootstrap_samples, seed: the percentile bootstrap interval of ``S^I``.
        attrs: provenance to attach.

    Returns:
        ``xarray.Dataset`` over ``method`` with ``sensitivity`` (S^I), ``sensitivity_low``,
        ``sensitivity_high``, ``passes`` (1/0), ``sensitive_share`` (share of images
        sensitive to every layer) and ``images``; ``similarity`` and ``similarity_std``
        over (method, mode, layer, metric); ``data_similarity`` over (method, metric), NaN
        without a data randomization test; ``accuracy`` over (mode, layer); and the example
        maps of the first image for the figures.
    """
    import xarray as xr

    if not stores:
        raise ValueError("no randomization stores to summarize")
    opened = [read_store(path) for path in stores]
    first = opened[0]
    layers = [str(layer) for layer in first["layer"].values]
    for path, part in zip(stores, opened, strict=True):
        if [str(layer) for layer in part["layer"].values] != layers:
            raise store.StoreError(
                f"{path}: randomized other layers than {stores[0]}; rerun the randomization"
            )
    methods = [str(part.attrs["name"]) for part in opened]
    rows = []
    for part in opened:
        if "data_similarity" in part:
            data = np.nanmean(part["data_similarity"].values, axis=0)
        else:
            data = np.full(len(METRICS), np.nan)
        ssim_independent = part["similarity"].sel(mode="independent", metric=SSIM).values
        per_image = image_sensitivity(ssim_independent)
        low, high = bootstrap_interval(
            per_image, confidence=confidence, samples=bootstrap_samples, seed=seed
        )
        sensitivity = float(np.nanmean(per_image))
        rows.append(
            {
                "sensitivity": sensitivity,
                "sensitivity_low": low,
                "sensitivity_high": high,
                "passes": int(sensitivity >= pass_threshold),
                "sensitive_share": float(sensitive_images(ssim_independent, ssim_threshold).mean()),
                "images": len(per_image),
                "similarity": np.nanmean(part["similarity"].values, axis=0),
                "similarity_std": np.nanstd(part["similarity"].values, axis=0, ddof=0),
                "data_similarity": data,
            }
        )

    def column(key: str) -> np.ndarray:
        return np.stack([np.asarray(row[key]) for row in rows])

    def examples(name: str, part) -> np.ndarray:
        return part[name].isel(example=0).values

    shape = first["example_original"].shape[1:]
    example_original = np.stack([examples("example_original", p) for p in opened])
    example_maps = np.stack([examples("example_maps", p) for p in opened])
    example_data = np.stack(
        [
            examples("example_data_maps", p) if "example_data_maps" in p else np.full(shape, np.nan)
            for p in opened
        ]
    )
    return xr.Dataset(
        {
            "sensitivity": ("attribution", column("sensitivity"), {"long_name": "S^I"}),
            "sensitivity_low": ("attribution", column("sensitivity_low")),
            "sensitivity_high": ("attribution", column("sensitivity_high")),
            "passes": ("attribution", column("passes").astype(np.int8)),
            "sensitive_share": ("attribution", column("sensitive_share")),
            "images": ("attribution", column("images").astype(np.int64)),
            "similarity": (("attribution", "mode", "layer", "metric"), column("similarity")),
            "similarity_std": (
                ("attribution", "mode", "layer", "metric"),
                column("similarity_std"),
            ),
            "data_similarity": (("attribution", "metric"), column("data_similarity")),
            "accuracy": (("mode", "layer"), first["accuracy"].values),
            "example_image": (("channel", "y", "x"), first["example_images"].values[0]),
            "example_original": (("attribution", "y", "x"), example_original),
            "example_maps": (("attribution", "mode", "layer", "y", "x"), example_maps),
            "example_data_maps": (("attribution", "y", "x"), example_data),
        },
        coords={
            "attribution": methods,
            "mode": list(MODES),
            "layer": layers,
            "metric": list(METRICS),
        },
        attrs={
            "format": RANDOMIZATION_SUMMARY_FORMAT,
            "ssim_threshold": float(ssim_threshold),
            "pass_threshold": float(pass_threshold),
            "confidence": float(confidence),
            "bootstrap_samples": int(bootstrap_samples),
            "seed": int(seed),
            "original_accuracy": float(first.attrs.get("original_accuracy", np.nan)),
            "data_accuracy": float(first.attrs.get("data_accuracy", np.nan)),
            **dict(attrs or {}),
        },
    )


def read_summary(path: str | Path):
    """Open a randomization summary (NetCDF written by ``store.write_netcdf``) into memory."""
    return store.read_netcdf(path, RANDOMIZATION_SUMMARY_FORMAT, "randomization summary")
