"""What the workflow and the page need to know of ROAR and KAR: paths, methods, targets,
job settings and the report section. Torch-free."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from saliencybench import paths
from saliencybench.config import ConfigError
from saliencybench.evaluations.base import (
    Evaluation,
    ScoreColumn,
    indexed_only,
    lazy,
    select_run,
    with_run,
)
from saliencybench.planning import (
    Run,
    experiment_methods,
    experiment_of,
    experiments_with,
    method_splits,
    run_of,
)

NAME = "roar"
# The baselines are model-free and cost nothing; ROAR always draws them.
BASELINE_METHODS = ("random", "sobel")
# The format of a retraining record and of the summary that gathers them.
ROAR_FORMAT = "saliencybench.roar/1"
# The record of the original model on the masked test images (ROAR without retraining).
UNRETRAINED_FORMAT = "saliencybench.roar_unretrained/1"
# Version 2 names the method dimension `attribution` (`method` is a keyword of xarray's sel).
ROAR_SUMMARY_FORMAT = "saliencybench.roar_summary/2"


# ----------------------------------------------------------------------- paths


def _stem(dataset, model, recipe, seed, method, mode, frac) -> str:
    return f"{paths.model_stem(dataset, model, recipe, seed)}/{method}/{mode}/t{frac}"


def masked_store(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
    mode: str = "{mode}",
    frac: str = "{frac}",
) -> str:
    """The dataset store with ``frac`` of its pixels removed by ``method`` (ROAR or KAR)."""
    return f"{paths.RESULTS}/masked/{_stem(dataset, model, recipe, seed, method, mode, frac)}.zarr"


def result(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
    mode: str = "{mode}",
    frac: str = "{frac}",
) -> str:
    """Accuracies of the models retrained on one masked dataset, all retraining seeds."""
    return f"{paths.RESULTS}/roar/{_stem(dataset, model, recipe, seed, method, mode, frac)}.json"


def unretrained_result(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    """Accuracies of the original model on the masked test images of every mode and
    fraction: ROAR and KAR without retraining."""
    stem = paths.model_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/roar/{stem}/{method}/unretrained.json"


def summary_path(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{paths.RESULTS}/roar/{paths.model_stem(dataset, model, recipe, seed)}/accuracy.nc"


def table(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{paths.RESULTS}/tables/roar_{paths.report_stem(dataset, model, recipe, seed)}.csv"


def figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    suffix: str = "png",
) -> str:
    stem = paths.report_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/figures/roar_{stem}.{suffix}"


# ----------------------------------------------------------------------- config


def check(config: dict[str, Any]) -> None:
    """Named ROAR methods must exist and cover the train split; baselines get entries."""
    methods = config["methods"]
    for name in config["roar"]["methods"] or []:
        if name not in methods:
            raise ConfigError(
                f"config key 'roar.methods': {name!r} is not defined in 'methods'; "
                f"defined: {', '.join(sorted(methods))}"
            )
        if "train" not in method_splits(config, name):
            raise ConfigError(
                f"config key 'roar.methods': {name!r} attributes only the "
                f"{', '.join(method_splits(config, name))} split; ROAR needs train and test maps"
            )
    for name in BASELINE_METHODS:
        methods.setdefault(
            name, {"method": name, "reduction": None, "store_raw": False, "splits": None}
        )


def methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
    """Methods ROAR evaluates for an experiment: baselines first, then the chosen ones.

    Raises:
        ConfigError: a baseline's maps do not cover the train split.
    """
    chosen = config["roar"]["methods"]
    if chosen is None:
        chosen = [
            name
            for name in experiment_methods(config, experiment)
            if "train" in method_splits(config, name)
        ]
    names = list(BASELINE_METHODS) + sorted(set(chosen) - set(BASELINE_METHODS))
    for name in BASELINE_METHODS:
        if "train" not in method_splits(config, name):
            raise ConfigError(
                f"config key 'methods.{name}': ROAR needs its train-split maps; "
                f"it attributes only {', '.join(method_splits(config, name))}"
            )
    return names


def order_methods(names) -> list[str]:
    """Baselines first (``random``, ``sobel``), then the others alphabetically."""
    names = set(names)
    first = [name for name in BASELINE_METHODS if name in names]
    return first + sorted(names - set(first))


def grid(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(method, mode, fraction label) of every retraining of one model."""
    roar = config["roar"]
    return [
        (method, mode, paths.fraction_label(fraction))
        for method in methods(config, experiment)
        for mode in roar["modes"]
        for fraction in roar["fractions"]
    ]


# ----------------------------------------------------------------------- rule inputs


def targets(config: Mapping[str, Any]) -> list[str]:
    """Tables and figures of ROAR for every model of the experiments that ask for it, and
    the masked dataset stores when ``roar.keep_masked`` is set."""
    found = []
    for experiment, run in experiments_with(config, NAME):
        found.append(table(*run))
        found.extend(figure(*run, suffix=suffix) for suffix in ("png", "pdf"))
        if config["roar"]["keep_masked"]:
            found.extend(masked_store(*run, *cell) for cell in grid(config, experiment))
    return found


def results(config: Mapping[str, Any], wildcards: Any) -> list[str]:
    """Every retraining result of one model: method x mode x fraction."""
    run = run_of(wildcards)
    return [result(*run, *cell) for cell in grid(config, experiment_of(config, run))]


def unretrained_results(config: Mapping[str, Any], wildcards: Any) -> list[str]:
    """The records without retraining of one model, one per method."""
    run = run_of(wildcards)
    return [
        unretrained_result(*run, method) for method in methods(config, experiment_of(config, run))
    ]


def baselines(config: Mapping[str, Any], wildcards: Any) -> list[str]:
    """Sidecars of the unmasked models, one per retraining seed: the 0 % point."""
    return [
        paths.checkpoint_sidecar(wildcards.dataset, wildcards.model, wildcards.recipe, seed)
        for seed in config["roar"]["seeds"]
    ]


# ----------------------------------------------------------------------- job settings
# Each function builds the `settings` param of one rule: exactly the keyword arguments its
# job function reads, so an edit elsewhere in the config reruns none of its jobs.


def _masking_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    roar = config["roar"]
    return {
        "fraction": float(wildcards.frac),
        "fill": roar["fill"],
        "blur_sigma": roar["blur_sigma"],
    }


def mask_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of ``compute.materialize`` besides its paths."""
    return {
        **_masking_settings(config, wildcards),
        "mode": wildcards.mode,
        "seed": config["seed"],
    }


def retrain_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of ``compute.retrain_fraction`` besides its paths."""
    return {
        **_masking_settings(config, wildcards),
        "modes": config["roar"]["modes"],
        "mask_seed": config["seed"],
        "model_name": wildcards.model,
        "model_entry": config["models"][wildcards.model],
        "recipe_name": wildcards.recipe,
        "recipe_entry": config["recipes"][wildcards.recipe],
        "seeds": config["roar"]["seeds"],
        "device": config["device"],
    }


def unretrained_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of ``compute.unretrained`` besides its paths."""
    roar = config["roar"]
    return {
        "modes": roar["modes"],
        "fractions": [float(fraction) for fraction in roar["fractions"]],
        "fill": roar["fill"],
        "blur_sigma": roar["blur_sigma"],
        "mask_seed": config["seed"],
        "device": config["device"],
    }


def roar_summary_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of ``summary.summarize_run`` besides its paths: the retraining
    seeds in the order of the ``baselines`` input, and the summary's provenance."""
    return {
        "seeds": config["roar"]["seeds"],
        "dataset": wildcards.dataset,
        "model": wildcards.model,
        "recipe": wildcards.recipe,
        "model_seed": int(wildcards.seed),
        "fill": config["roar"]["fill"],
    }


def roar_report_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of ``report.write_report`` besides its paths."""
    w = wildcards
    return {"title": f"{w.dataset} / {w.model} / {w.recipe} / seed {w.seed}: retrained accuracy"}


# ----------------------------------------------------------------------- report


def area_difference(summary, run: Run, mode: str) -> dict[str, float]:
    """Mean retrained accuracy over the fractions minus that of ``random``, in points.

    The area under the accuracy curve from 0 (the unmasked models) to the largest fraction
    by the trapezoidal rule, divided by that fraction, averaged over retraining seeds;
    ``random``'s area is subtracted, so ``random`` scores 0.
    """
    cells = select_run(summary, run)
    if cells is None or mode not in cells["mode"].values:
        return {}
    fractions = np.concatenate([[0.0], cells["fraction"].values.astype(float)])
    baseline = float(np.nanmean(cells["baseline_accuracy"].values)) * 100.0
    areas = {}
    for method in cells["attribution"].values:
        accuracy = cells["accuracy"].sel({"attribution": method, "mode": mode}).values * 100.0
        if not np.isfinite(accuracy).any():
            continue
        curve = np.concatenate([[baseline], np.nanmean(accuracy, axis=-1)])
        widths = np.diff(fractions)
        area = float(np.sum(widths * (curve[1:] + curve[:-1]) / 2.0)) / fractions[-1]
        areas[str(method)] = area
    if "random" not in areas:
        return {}
    return {method: area - areas["random"] for method, area in areas.items()}


def _tidy(summary, run: Run):
    return with_run(indexed_only(summary.rename({"seed": "retrain_seed"})), run)


EVALUATION = Evaluation(
    name=NAME,
    title="ROAR and KAR",
    description=(
        "RemOve And Retrain / Keep And Retrain (Hooker et al. 2019): the share of pixels a "
        "method ranks highest (ROAR) or lowest (KAR) is replaced by the fill (the training "
        "mean by default) in train and test images, and the model is retrained from "
        "scratch. Pixels are ranked by the method's 2-D map (its reduction over channels) "
        "and removed in all channels; Hooker et al.'s code ranks the raw attribution of "
        "each (pixel, channel) value, so on colour images the two remove different values."
    ),
    summary=lambda run: summary_path(*run),
    read=lazy("saliencybench.evaluations.roar.summary", "read_summary"),
    tidy=_tidy,
    tables=lambda run: [table(*run)],
    figures=lambda run: [figure(*run, suffix="png")],
    targets=targets,
    check=check,
    columns=(
        ScoreColumn(
            "ROAR: accuracy vs random (points)",
            "lower",
            "mean retrained accuracy over the fractions removed most-important-first, "
            "minus random's",
            lambda summary, run, context: area_difference(summary, run, "roar"),
            fmt=".2f",
        ),
        ScoreColumn(
            "KAR: accuracy vs random (points)",
            "higher",
            "the same with the least important pixels removed",
            lambda summary, run, context: area_difference(summary, run, "kar"),
            fmt=".2f",
        ),
    ),
)
