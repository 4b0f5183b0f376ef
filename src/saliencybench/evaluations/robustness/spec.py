"""What the workflow and the page need to know of infidelity and max-sensitivity: paths,
methods, targets, job settings and the report section. Torch-free."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from saliencybench import paths
from saliencybench.config import ConfigError
from saliencybench.evaluations.base import Evaluation, ScoreColumn, lazy, select_run, tidy_run
from saliencybench.planning import (
    Run,
    experiment_methods,
    experiment_of,
    experiments_with,
    method_splits,
    run_of,
)

NAME = "robustness"

# Torch-free names the metrics job and the summary share.
ROBUSTNESS_FORMAT = "saliencybench.robustness/1"
# Version 2 names the method dimension `attribution` (`method` is a keyword of xarray's sel).
SUMMARY_FORMAT = "saliencybench.robustness_summary/2"
SMOOTHINGS = ("none", "smoothgrad")
# The optimal explanations are expectations over their own perturbation already; Yeh et al.
# report them without a smoothed row, and smoothing them multiplies the cost by nt_samples.
UNSMOOTHED_METHODS = frozenset({"square", "noisy_baseline"})
PERTURBATION_OF_SCOPE = {"local": "noisy_baseline", "global": "square"}
STORE_DIMS = ("smoothing", "scope", "sample")

# The keys of the ``robustness`` section a metrics job reads: all but ``methods``, which only
# plans the jobs, so that editing that list reruns none of the other methods' jobs.
METRICS_KEYS = (
    "split",
    "max_images",
    "scopes",
    "baseline",
    "infidelity",
    "sensitivity",
    "smoothing",
    "batch_size",
    "max_examples_per_batch",
)


# Keys whose value may be one per device type: the sizes that suit a CPU starve a GPU.
SIZES_PER_DEVICE = ("batch_size", "max_examples_per_batch")


def size_for_device(value: int | Mapping[str, int], device_type: str) -> int:
    """A size given for every device (an integer) or per device type (``{cpu, cuda}``);
    devices other than CUDA take the ``cpu`` entry."""
    if isinstance(value, Mapping):
        return int(value["cuda" if device_type == "cuda" else "cpu"])
    return int(value)


def sized_for_device(settings: Mapping[str, Any], device_type: str) -> dict[str, Any]:
    """``settings`` with each of :data:`SIZES_PER_DEVICE` resolved for ``device_type``."""
    return {
        **settings,
        **{key: size_for_device(settings[key], device_type) for key in SIZES_PER_DEVICE},
    }


# ----------------------------------------------------------------------- paths


def store_path(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
    smoothing: str = "{smoothing}",
) -> str:
    """Per-image infidelity and max-sensitivity of one method with one smoothing."""
    stem = paths.model_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/robustness/{stem}/{method}/{smoothing}.zarr"


def summary_path(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    stem = paths.model_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/robustness/{stem}/summary.nc"


def table(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    stem = paths.report_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/tables/robustness_{stem}.csv"


def figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    suffix: str = "png",
) -> str:
    """Each method beside its SmoothGrad variant: SENS_MAX and INFD per scope."""
    stem = paths.report_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/figures/robustness_{stem}.{suffix}"


# ----------------------------------------------------------------------- config


def check(config: dict[str, Any]) -> None:
    """Named robustness methods must exist."""
    methods = config["methods"]
    for name in config["robustness"]["methods"] or []:
        if name not in methods:
            raise ConfigError(
                f"config key 'robustness.methods': {name!r} is not defined in 'methods'; "
                f"defined: {', '.join(sorted(methods))}"
            )


def methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
    """Methods whose infidelity and sensitivity are measured for an experiment.

    ``robustness.methods`` null: every method of the experiment. The method is run afresh on
    the evaluated images, so it need not map the split in its attribution store.
    """
    chosen = config["robustness"]["methods"]
    return experiment_methods(config, experiment) if chosen is None else list(chosen)


# ----------------------------------------------------------------------- rule inputs


def targets(config: Mapping[str, Any]) -> list[str]:
    """Table and figure of infidelity and sensitivity of every model of the experiments asking."""
    found = []
    for _, run in experiments_with(config, NAME):
        found.append(table(*run))
        found.extend(figure(*run, suffix=suffix) for suffix in ("png", "pdf"))
    return found


def smoothings(config: Mapping[str, Any], method: str) -> list[str]:
    """The smoothings evaluated for ``method``: each is one job, so that a method's costly
    SmoothGrad variant and its plain explanation run side by side."""
    if config["methods"][method]["method"] in UNSMOOTHED_METHODS:
        return ["none"]
    return list(SMOOTHINGS)


def stores(config: Mapping[str, Any], wildcards: Any) -> list[str]:
    """Robustness stores of one model, one per method and smoothing, in the table's order."""
    run = run_of(wildcards)
    return [
        store_path(*run, method, smoothed)
        for method in methods(config, experiment_of(config, run))
        for smoothed in smoothings(config, method)
    ]


def explained_classes(config: Mapping[str, Any], wildcards: Any) -> dict[str, str]:
    """The method's attribution store, whose targets name the classes explained, if it maps
    the evaluated split; otherwise the evaluation explains the model's predictions."""
    if config["robustness"]["split"] not in method_splits(config, wildcards.method):
        return {}
    return {"maps": paths.attribution_store(*run_of(wildcards), wildcards.method)}


# ----------------------------------------------------------------------- job settings


def robustness_metrics_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`compute.compute`: the method, the smoothing, the
    ``robustness`` keys the job reads (:data:`METRICS_KEYS`), the seed and the device."""
    section = config["robustness"]
    return {
        "method_name": wildcards.method,
        "smoothing": wildcards.smoothing,
        "method_entry": config["methods"][wildcards.method],
        "settings": {key: section[key] for key in METRICS_KEYS},
        "seed": config["seed"],
        "device": config["device"],
    }


def robustness_summary_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`summary.summarize` besides its stores: none, the stores
    hold the methods, scopes and perturbations it reads."""
    return {}


def robustness_report_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`report.write_report` besides its paths: the figure's title."""
    w = wildcards
    return {
        "title": f"{w.dataset} / {w.model} / {w.recipe} / seed {w.seed}: sensitivity and infidelity"
    }


# ----------------------------------------------------------------------- report


def scores(summary, run: Run, metric: str) -> dict[str, float]:
    """``metric`` of each method, unsmoothed, global scope (every method has one)."""
    cells = select_run(summary, run)
    if cells is None:
        return {}
    part = cells[metric].sel(smoothing="none", scope="global")
    return {
        str(method): float(value)
        for method, value in zip(part["attribution"].values, part.values, strict=True)
        if np.isfinite(value)
    }


EVALUATION = Evaluation(
    name=NAME,
    title="Infidelity and max-sensitivity",
    description=(
        "Infidelity under square removal and noisy baselines and max-sensitivity in an "
        "L-infinity box (Yeh et al. 2019), for every method and its SmoothGrad variant; "
        "lower is better in every column."
    ),
    summary=lambda run: summary_path(*run),
    read=lazy("saliencybench.evaluations.robustness.summary", "read_summary"),
    tidy=tidy_run,
    tables=lambda run: [table(*run)],
    figures=lambda run: [figure(*run, suffix="png")],
    targets=targets,
    check=check,
    columns=(
        ScoreColumn(
            "infidelity",
            "lower",
            "INFD of the global explanation under square removal, unsmoothed",
            lambda summary, run, context: scores(summary, run, "infidelity"),
        ),
        ScoreColumn(
            "max-sensitivity",
            "lower",
            "SENS_MAX of the global explanation, unsmoothed",
            lambda summary, run, context: scores(summary, run, "sensitivity"),
        ),
    ),
)
