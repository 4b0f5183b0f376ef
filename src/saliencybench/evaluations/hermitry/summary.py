"""H per class and source of one model from its hermitry stores, with the KDE curves of
Figure 3; the long distance table and class fit the stores hold. Numpy and xarray, no torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench import store

HERMITRY_FORMAT = "saliencybench.hermitry/1"
HERMITRY_SUMMARY_FORMAT = "saliencybench.hermitry_summary/1"

CONTROLS = ("train_train", "train_val", "white_noise", "foreign")
EVALUATION_SOURCES = ("roar", "mif", "lif", "infidelity_square", "infidelity_noisy")


@dataclass(frozen=True)
class ClassFit:
    """Class-conditional Gaussians of the training encodings.

    Attributes:
        classes: class indices, (K,).
        means: (K, J) float64; precisions: (K, J, J) float64, the inverse covariances.
        shrinkage: (K,) the Ledoit-Wolf shrinkage of each class (0 for ``empirical``).
        counts: (K,) training images per class.
    """

    classes: np.ndarray
    means: np.ndarray
    precisions: np.ndarray
    shrinkage: np.ndarray
    counts: np.ndarray


def fit_of(reference) -> ClassFit:
    """The class fit a reference store holds."""
    return ClassFit(
        reference["class"].values.astype(np.int64),
        reference["means"].values,
        reference["precisions"].values,
        reference["shrinkage"].values,
        reference["train_count"].values,
    )


def hermitry_ratio(distances: np.ndarray, threshold: float | np.ndarray) -> float:
    """H: the share of distances above the threshold (one, or one per distance); NaN for none.

    The threshold T_c of class c is a percentile (the paper: 95) of the distances of its
    validation images."""
    return float(np.mean(distances > threshold)) if len(distances) else float("nan")


def hermitry_level(ratio: float, low: float = 0.3) -> str:
    """``low`` at or below ``low``, ``high`` above (the paper's cut-off 0.3)."""
    return "low" if ratio <= low else "high"


# ----------------------------------------------------------------------- tables


@dataclass
class Distances:
    """A long table of distances, one row per input (the store's ``sample`` dimension).

    Attributes:
        distance: Mahalanobis distance to the Gaussian of ``klass``.
        image: index into the split, -1 for inputs made from nothing (noise, another
            dataset).
        level: ROAR fraction or MIF/LIF step k/K; NaN where none.
        source: the captured method, the control or the evaluation input.
        method: the map that ranked the pixels; '' where none.
    """

    distance: np.ndarray
    klass: np.ndarray
    image: np.ndarray
    level: np.ndarray
    source: np.ndarray
    method: np.ndarray

    @classmethod
    def of(
        cls,
        distance,
        klass,
        *,
        source: str,
        image=None,
        level=None,
        method: str = "",
    ) -> Distances:
        n = len(distance)
        return cls(
            np.asarray(distance, dtype=np.float64),
            np.asarray(klass, dtype=np.int64),
            np.full(n, -1, np.int64) if image is None else np.asarray(image, dtype=np.int64),
            np.full(n, np.nan) if level is None else np.asarray(level, dtype=np.float64),
            np.full(n, source, dtype=object),
            np.full(n, method, dtype=object),
        )

    @classmethod
    def concat(cls, parts: Sequence[Distances]) -> Distances:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__annotations__))

    def to_xarray(self):
        import xarray as xr

        return xr.Dataset(
            {
                "distance": ("sample", self.distance),
                "klass": ("sample", self.klass),
                "image": ("sample", self.image),
                "level": ("sample", self.level),
                "source": ("sample", self.source.astype(str)),
                "method": ("sample", self.method.astype(str)),
            }
        )

    @classmethod
    def from_xarray(cls, dataset) -> Distances:
        return cls(
            dataset["distance"].values,
            dataset["klass"].values,
            dataset["image"].values,
            dataset["level"].values,
            dataset["source"].values.astype(str).astype(object),
            dataset["method"].values.astype(str).astype(object),
        )


def read_store(path: str | Path):
    """Open any hermitry store (reference, method, evaluations), loaded into memory."""
    return store.read_xarray(path, HERMITRY_FORMAT, "hermitry store")


def read_reference(path: str | Path):
    """Open a reference store written by the reference job, loaded into memory."""
    return read_store(path)


# ----------------------------------------------------------------------- summary

KDE_POINTS = 200


def _kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from scipy.stats import gaussian_kde

    values = values[np.isfinite(values)]
    if len(values) < 2 or np.ptp(values) == 0:
        out = np.zeros_like(grid)
        if len(values):
            out[np.argmin(np.abs(grid - values[0]))] = 1.0
        return out
    return gaussian_kde(values)(grid)


def summarize(
    reference_path,
    method_paths: Sequence[str],
    evaluations_path: str | None,
    *,
    low_ratio: float,
    attrs: Mapping[str, Any] | None = None,
):
    """H per (entry, class) for every source of one model, with the KDE curves of Figure 3.

    An entry is a (source, method, level) triple: a perturbation method, a control, or an
    evaluation's input at one fraction or step. Returns an ``xarray.Dataset`` with
    ``hermitry`` and ``count`` over (entry, class), ``hermitry_mean`` over (entry), the
    thresholds, and for the paper's sources (methods and controls) the density of the
    distances normalized by the largest distance of the panel (or the threshold), on
    ``KDE_POINTS`` points of [0, 1] (``density`` over (panel, class, grid)) with the
    normalized threshold (``panel_threshold``). ``normalized_threshold`` (class) divides
    T_c by the largest distance of the class over the captured methods and the validation
    images, the paper's Appendix B.
    """
    import xarray as xr

    ref = read_reference(reference_path)
    fit = fit_of(ref)
    threshold = ref["threshold"].values
    tables = [Distances.from_xarray(ref)]
    method_names = []
    for path in method_paths:
        part = read_store(path)
        method_names.append(str(part.attrs["name"]))
        tables.append(Distances.from_xarray(part))
    if evaluations_path is not None:
        tables.append(Distances.from_xarray(read_store(evaluations_path)))
    table = Distances.concat(tables)
    import pandas as pd

    frame = pd.DataFrame(
        {
            "source": table.source.astype(str),
            "method": table.method.astype(str),
            "level": table.level,
            "klass": table.klass,
            "distance": table.distance,
        }
    )
    frame["threshold"] = threshold[np.searchsorted(fit.classes, frame["klass"].to_numpy())]
    frame["hermit"] = frame["distance"] > frame["threshold"]
    frame["level_key"] = frame["level"].fillna(-1.0)
    order = {name: i for i, name in enumerate([*method_names, *CONTROLS, *EVALUATION_SOURCES])}
    keys = (
        frame[["source", "method", "level_key"]]
        .drop_duplicates()
        .assign(rank=lambda f: f["source"].map(order).fillna(len(order)))
        .sort_values(["rank", "method", "level_key"])
    )
    entries = list(keys.itertuples(index=False))
    n_entries, n_classes = len(entries), len(fit.classes)
    ratio = np.full((n_entries, n_classes), np.nan)
    count = np.zeros((n_entries, n_classes), dtype=np.int64)
    mean_distance = np.full((n_entries, n_classes), np.nan)
    grouped = frame.groupby(["source", "method", "level_key", "klass"])
    stats = grouped.agg(h=("hermit", "mean"), n=("hermit", "size"), d=("distance", "mean"))
    entry_index = {(e.source, e.method, e.level_key): i for i, e in enumerate(entries)}
    class_index = {int(c): k for k, c in enumerate(fit.classes)}
    for (source, method, level_key, klass), row in stats.iterrows():
        i, k = entry_index[(source, method, level_key)], class_index[int(klass)]
        ratio[i, k], count[i, k], mean_distance[i, k] = row["h"], row["n"], row["d"]
    # Figure 3 and Appendix C: the captured methods, then the controls
    panels = [name for name in [*method_names, *CONTROLS] if (frame["source"] == name).any()]
    grid = np.linspace(0.0, 1.0, KDE_POINTS)
    density = np.zeros((len(panels), n_classes, KDE_POINTS))
    panel_threshold = np.full((len(panels), n_classes), np.nan)
    panel_ratio = np.full((len(panels), n_classes), np.nan)
    for p, name in enumerate(panels):
        for k, c in enumerate(fit.classes):
            d = frame.loc[(frame["source"] == name) & (frame["klass"] == c), "distance"].to_numpy()
            if not len(d):
                continue
            scale = max(float(d.max()), float(threshold[k]))
            density[p, k] = _kde(d / scale, grid)
            panel_threshold[p, k] = threshold[k] / scale
            panel_ratio[p, k] = hermitry_ratio(d, threshold[k])
    paper_sources = frame["source"].isin([*method_names, "train_val"])
    normalized_threshold = np.full(n_classes, np.nan)
    for k, c in enumerate(fit.classes):
        d = frame.loc[paper_sources & (frame["klass"] == c), "distance"].to_numpy()
        normalized_threshold[k] = threshold[k] / max(float(d.max()), float(threshold[k]))
    counts = np.where(count > 0, count, 0)
    with np.errstate(invalid="ignore"):
        pooled = np.nansum(np.nan_to_num(ratio) * counts, axis=1) / counts.sum(axis=1)
    return xr.Dataset(
        {
            "hermitry": (("entry", "class"), ratio),
            "count": (("entry", "class"), count),
            "mean_distance": (("entry", "class"), mean_distance),
            "hermitry_mean": ("entry", np.nanmean(ratio, axis=1)),
            "hermitry_pooled": ("entry", pooled),
            "threshold": ("class", threshold),
            "normalized_threshold": ("class", normalized_threshold),
            "shrinkage": ("class", fit.shrinkage),
            "train_count": ("class", fit.counts),
            "validation_count": (
                "class",
                np.array([(ref["validation_labels"].values == c).sum() for c in fit.classes]),
            ),
            "density": (("panel", "class", "grid"), density),
            "panel_threshold": (("panel", "class"), panel_threshold),
            "panel_hermitry": (("panel", "class"), panel_ratio),
        },
        coords={
            "entry": np.arange(n_entries),
            "source": ("entry", [e.source for e in entries]),
            "method": ("entry", [e.method for e in entries]),
            "level": ("entry", [np.nan if e.level_key < 0 else e.level_key for e in entries]),
            "class": fit.classes,
            "class_name": ("class", json.loads(ref.attrs["class_names"])),
            "panel": panels,
            "grid": grid,
        },
        attrs={
            "format": HERMITRY_SUMMARY_FORMAT,
            "low_ratio": float(low_ratio),
            "percentile": float(ref.attrs["percentile"]),
            "covariance": str(ref.attrs["covariance"]),
            "split": str(ref.attrs["split"]),
            "foreign": str(ref.attrs.get("foreign", "")),
            "methods": method_names,
            **dict(attrs or {}),
        },
    )


def read_summary(path: str | Path):
    """Open a hermitry summary (NetCDF written by ``store.write_netcdf``) into memory."""
    return store.read_netcdf(path, HERMITRY_SUMMARY_FORMAT, "hermitry summary")
