"""The ROAR summary: every retraining record of one model and its unmasked baseline, as one
labeled Dataset over ``(method, mode, fraction, seed)``. numpy and xarray only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench import store
from saliencybench.evaluations.roar.spec import (
    ROAR_FORMAT,
    ROAR_SUMMARY_FORMAT,
    UNRETRAINED_FORMAT,
    order_methods,
)
from saliencybench.masking import MODES
from saliencybench.paths import fraction_label


def summarize(
    results: Sequence[str | Path],
    baselines: Mapping[int, str | Path],
    *,
    unretrained: Sequence[str | Path] = (),
    attrs: Mapping[str, Any] | None = None,
):
    """Gather retraining results into one labeled Dataset.

    Args:
        results: JSON files written by ``compute.retrain``.
        baselines: checkpoint sidecars of the unmasked models, by seed.
        unretrained: JSON files written by ``compute.unretrained``, one per method.
        attrs: provenance to attach (dataset, model, recipe, model seed, fill).

    Returns:
        ``xarray.Dataset`` with ``accuracy`` and ``train_accuracy`` over
        ``(attribution, mode, fraction, seed)`` and ``baseline_accuracy`` over ``(seed,)``;
        with ``unretrained``, also ``unretrained_accuracy`` over ``(attribution, mode,
        fraction)`` (the original model on the masked test images). Missing combinations
        are NaN.
    """
    import xarray as xr

    records = [store.read_json(path, "ROAR result") for path in results]
    for path, record in zip(results, records, strict=True):
        if record.get("format") != ROAR_FORMAT:
            raise store.StoreError(f"{path}: not a ROAR result; delete it and rerun")
    seeds = sorted({int(run["seed"]) for r in records for run in r["runs"]} | set(baselines))
    methods = order_methods({r["method"] for r in records})
    modes = [mode for mode in MODES if any(r["mode"] == mode for r in records)]
    fractions = sorted({float(r["fraction"]) for r in records})
    shape = (len(methods), len(modes), len(fractions), len(seeds))
    accuracy = np.full(shape, np.nan)
    train_accuracy = np.full(shape, np.nan)
    for record in records:
        i = methods.index(record["method"])
        j = modes.index(record["mode"])
        k = fractions.index(float(record["fraction"]))
        for run in record["runs"]:
            s = seeds.index(int(run["seed"]))
            accuracy[i, j, k, s] = run["test_accuracy"]
            train_accuracy[i, j, k, s] = run["train_accuracy"]
    baseline = np.full(len(seeds), np.nan)
    for seed, path in baselines.items():
        sidecar = store.read_json(path, "checkpoint sidecar")
        baseline[seeds.index(int(seed))] = sidecar["test_accuracy"]
    dims = ("attribution", "mode", "fraction", "seed")
    variables = {}
    if unretrained:
        cells, unmasked = _unretrained(unretrained, methods, modes, fractions)
        variables["unretrained_accuracy"] = (
            dims[:3],
            cells,
            {"long_name": "test accuracy of the original model, not retrained"},
        )
        variables["unretrained_baseline"] = (
            (),
            unmasked,
            {"long_name": "test accuracy of the original model on the unmasked images"},
        )
    return xr.Dataset(
        {
            **variables,
            "accuracy": (dims, accuracy, {"long_name": "test accuracy after retraining"}),
            "train_accuracy": (dims, train_accuracy, {"long_name": "train accuracy"}),
            "baseline_accuracy": (
                ("seed",),
                baseline,
                {"long_name": "test accuracy of the unmasked model"},
            ),
        },
        coords={"attribution": methods, "mode": modes, "fraction": fractions, "seed": seeds},
        attrs=store.flat_attrs({"format": ROAR_SUMMARY_FORMAT, **(attrs or {})}),
    )


def _unretrained(
    records: Sequence[str | Path],
    methods: Sequence[str],
    modes: Sequence[str],
    fractions: Sequence[float],
) -> tuple[np.ndarray, float]:
    """(method, mode, fraction) accuracies of the original model from the records of
    ``compute.unretrained`` (NaN where a record has no cell), and its unmasked accuracy."""
    values = np.full((len(methods), len(modes), len(fractions)), np.nan)
    unmasked = np.nan
    for path in records:
        record = store.read_json(path, "ROAR record without retraining")
        if record.get("format") != UNRETRAINED_FORMAT:
            raise store.StoreError(f"{path}: not a ROAR record without retraining; delete it")
        if record["method"] not in methods:
            continue
        i = methods.index(record["method"])
        unmasked = float(record["unmasked_accuracy"])
        for j, mode in enumerate(modes):
            cells = record["accuracy"].get(mode, {})
            for k, fraction in enumerate(fractions):
                values[i, j, k] = cells.get(fraction_label(fraction), np.nan)
    return values, unmasked


def summarize_run(
    results: Sequence[str | Path],
    baselines: Sequence[str | Path],
    *,
    seeds: Sequence[int],
    dataset: str,
    model: str,
    recipe: str,
    model_seed: int,
    fill: str,
    output: str | Path,
    unretrained: Sequence[str | Path] = (),
) -> None:
    """The job of rule ``roar_summary``: :func:`summarize` one model's results, write NetCDF.

    Args:
        baselines: the sidecars of the unmasked models, one per retraining seed, in the
            order of ``seeds``.
        dataset, model, recipe, model_seed, fill: the summary's provenance attributes.
        unretrained: the records of the original model on the masked test images.
    """
    attrs = {
        "dataset": dataset,
        "model": model,
        "recipe": recipe,
        "model_seed": model_seed,
        "fill": fill,
    }
    summary = summarize(
        results, dict(zip(seeds, baselines, strict=True)), unretrained=unretrained, attrs=attrs
    )
    store.write_netcdf(summary, output)


def read_summary(path: str | Path):
    """Open a ROAR summary (NetCDF written by ``store.write_netcdf``) into memory."""
    return store.read_netcdf(path, ROAR_SUMMARY_FORMAT, "ROAR summary")
