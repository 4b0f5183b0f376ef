"""The combined summaries ``results/summary/{evaluation}.nc``: every model's summary of one
evaluation in one tidy Dataset, with dims dataset, model, recipe and seed. Torch-free."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from saliencybench import store
from saliencybench.evaluations import EVALUATIONS
from saliencybench.planning import Run


def combined_format(name: str) -> str:
    """The format of ``results/summary/{name}.nc``; version 2 names the method dimension
    ``attribution``."""
    return f"saliencybench.summary/{name}/2"


def combine(parts: Sequence[Any], name: str):
    """One Dataset from the tidy parts of every run (outer join; missing cells NaN)."""
    import xarray as xr

    if not parts:
        raise ValueError(f"no summaries of evaluation {name!r} to combine")
    combined = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="drop")
    combined.attrs = {"format": combined_format(name), "evaluation": name}
    return combined


def build_summary(name: str, rows: Sequence[Sequence[Any]]):
    """The combined Dataset of evaluation ``name`` from (path, dataset, model, recipe, seed)."""
    entry = EVALUATIONS.get(name)
    parts = []
    for path, dataset, model, recipe, seed in rows:
        run = Run(dataset, model, recipe, int(seed))
        parts.append(entry.tidy(entry.read(path), run))
    return combine(parts, name)


def read_combined(path: str | Path, name: str):
    """Open ``results/summary/{name}.nc``."""
    return store.read_netcdf(path, combined_format(name), f"{name} summary")
