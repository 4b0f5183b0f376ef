"""What the workflow and the page need to know of the randomization tests: paths, methods,
targets, job settings and the report section. Torch-free."""

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
    train_settings,
)

NAME = "randomization"
FIGURES = ("layers", "sensitivity", "examples")


# ----------------------------------------------------------------------- paths


def permuted_checkpoint(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    """The model of the data randomization test: trained on permuted labels, beside the
    original (``seed{s}-permuted-labels.pt``; the suffix keeps it out of the train rule)."""
    stem = paths.model_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/models/{stem}-permuted-labels.pt"


def permuted_sidecar(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    stem = paths.model_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/models/{stem}-permuted-labels.json"


def store_path(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    """Per-image similarities of one method under cascading, independent and data
    randomization."""
    stem = paths.model_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/randomization/{stem}/{method}.zarr"


def summary_path(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    """S^I with its interval and the mean similarity curves of every method of one model."""
    stem = paths.model_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/randomization/{stem}/summary.nc"


def table(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    stem = paths.report_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/tables/randomization_{stem}.csv"


def figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    suffix: str = "png",
    kind: str = "layers",
) -> str:
    """``kind`` ``layers``: similarity per layer randomized; ``sensitivity``: S^I per method;
    ``examples``: maps of one image under cascading randomization."""
    stem = paths.report_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/figures/randomization_{kind}_{stem}.{suffix}"


# ----------------------------------------------------------------------- config


def check(config: dict[str, Any]) -> None:
    """Named randomization methods must exist and map the split the tests explain."""
    methods = config["methods"]
    split = config["randomization"]["split"]
    for name in config["randomization"]["methods"] or []:
        if name not in methods:
            raise ConfigError(
                f"config key 'randomization.methods': {name!r} is not defined in 'methods'; "
                f"defined: {', '.join(sorted(methods))}"
            )
        if split not in method_splits(config, name):
            raise ConfigError(
                f"config key 'randomization.methods': {name!r} attributes only the "
                f"{', '.join(method_splits(config, name))} split; randomization.split is {split}"
            )


def methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
    """Methods the randomization tests run for an experiment, in the experiment's order.

    ``randomization.methods`` null: every method of the experiment that maps the split.
    """
    split = config["randomization"]["split"]
    chosen = config["randomization"]["methods"]
    available = [
        name
        for name in experiment_methods(config, experiment)
        if split in method_splits(config, name)
    ]
    return available if chosen is None else list(chosen)


# ----------------------------------------------------------------------- rule inputs


def targets(config: Mapping[str, Any]) -> list[str]:
    """Table and figures of the randomization tests of every model of the experiments asking."""
    found = []
    for _, run in experiments_with(config, NAME):
        found.append(table(*run))
        for kind in FIGURES:
            for suffix in ("png", "pdf"):
                found.append(figure(*run, suffix=suffix, kind=kind))
    return found


def stores(config: Mapping[str, Any], wildcards: Any) -> list[str]:
    """Randomization stores of one model, one per method tested, in the table's order."""
    run = run_of(wildcards)
    return [store_path(*run, method) for method in methods(config, experiment_of(config, run))]


def permuted_model(config: Mapping[str, Any], wildcards: Any) -> dict[str, str]:
    """The model trained on permuted labels, when the data randomization test is on."""
    if not config["randomization"]["data_randomization"]:
        return {}
    run = run_of(wildcards)
    return {
        "permuted_checkpoint": permuted_checkpoint(*run),
        "permuted_sidecar": permuted_sidecar(*run),
    }


# ----------------------------------------------------------------------- job settings
# One function per rule with a job: exactly the keyword arguments its job function reads,
# so an edit elsewhere in the config (another method, another evaluation) reruns nothing here.


def train_permuted_labels_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """The original model's training settings; ``randomization.permuted_epochs``, when set,
    replaces the recipe's epochs (memorizing permuted labels takes longer)."""
    settings = train_settings(config, wildcards)
    epochs = config["randomization"]["permuted_epochs"]
    if epochs is not None:
        settings["recipe_entry"] = {**settings["recipe_entry"], "epochs": epochs}
    return settings


def parameter_randomization_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """One method's job: its entry alone, never the list of methods tested."""
    section = config["randomization"]
    return {
        "method_name": wildcards.method,
        "method_entry": config["methods"][wildcards.method],
        "split": section["split"],
        "max_images": section["max_images"],
        "layer_types": section["layer_types"],
        "examples": section["examples"],
        "target_rule": config["attribution"]["target"],
        "batch_size": config["attribution"]["batch_size"],
        "seed": config["seed"],
        "device": config["device"],
    }


def randomization_summary_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """The thresholds and bootstrap of the extended IPR test, and the summary's provenance."""
    section = config["randomization"]
    run = run_of(wildcards)
    return {
        "ssim_threshold": section["ssim_threshold"],
        "pass_threshold": section["pass_threshold"],
        "confidence": section["confidence"],
        "bootstrap_samples": section["bootstrap_samples"],
        "seed": config["seed"],
        "attrs": {
            "dataset": run.dataset,
            "model": run.model,
            "recipe": run.recipe,
            "model_seed": run.seed,
            "split": section["split"],
            "layer_types": ",".join(section["layer_types"]),
        },
    }


def randomization_report_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """The figures' title: the run."""
    run = run_of(wildcards)
    return {"title": f"{run.dataset} / {run.model} / {run.recipe} / seed {run.seed}"}


# ----------------------------------------------------------------------- report


def sensitivity_scores(summary, run: Run, context: Mapping[str, Any]) -> dict[str, float]:
    """S^I of the extended independent parameter randomization test per method."""
    cells = select_run(summary, run)
    if cells is None:
        return {}
    return {
        str(method): float(value)
        for method, value in zip(
            cells["attribution"].values, cells["sensitivity"].values, strict=True
        )
        if np.isfinite(value)
    }


def _pass_note(summary, run: Run, method: str) -> str:
    cells = select_run(summary, run)
    value = float(cells["passes"].sel({"attribution": method}))
    return "" if not np.isfinite(value) else ("pass" if value else "fail")


EVALUATION = Evaluation(
    name=NAME,
    title="Parameter randomization",
    description=(
        "Maps of models whose layers are re-initialized, cascading and independently, "
        "compared with the trained model's (Adebayo et al. 2018); the extended IPR test "
        "of Sriram & Conati: S^I = mean 1 - SSIM, pass when S^I reaches the threshold."
    ),
    summary=lambda run: summary_path(*run),
    read=lazy("saliencybench.evaluations.randomization.summary", "read_summary"),
    tidy=tidy_run,
    tables=lambda run: [table(*run)],
    figures=lambda run: [figure(*run, suffix="png", kind=kind) for kind in FIGURES],
    targets=targets,
    check=check,
    columns=(
        ScoreColumn(
            "S^I (IPR test)",
            "higher",
            "mean 1 - SSIM over layers and images under independent randomization; "
            "pass or fail against randomization.pass_threshold",
            sensitivity_scores,
            note=_pass_note,
        ),
    ),
)
