"""What the workflow and the page need to know of the hermitry ratio: paths, methods,
targets, job settings and the report section. Torch-free."""

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
    unique,
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

NAME = "hermitry"
# The perturbation methods of the hermitry paper, captured when hermitry.methods is null.
PERTURBATION_METHODS = ("occlusion", "lime", "kernel_shap", "anchor")


# ----------------------------------------------------------------------- paths


def _dir(dataset, model, recipe, seed) -> str:
    return f"{paths.RESULTS}/hermitry/{paths.model_stem(dataset, model, recipe, seed)}"


def reference_path(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    """Class Gaussians of the training encodings, thresholds, validation images, controls."""
    return f"{_dir(dataset, model, recipe, seed)}/reference.zarr"


def method_store(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    """Distances of the inputs one method sends to the model while explaining."""
    return f"{_dir(dataset, model, recipe, seed)}/methods/{method}.zarr"


def evaluations_path(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    """Distances of the ROAR-masked, MIF/LIF and infidelity inputs."""
    return f"{_dir(dataset, model, recipe, seed)}/evaluations.zarr"


def summary_path(
    dataset: str = "{dataset}", model: str = "{model}", recipe: str = "{recipe}", seed="{seed}"
) -> str:
    return f"{_dir(dataset, model, recipe, seed)}/summary.nc"


def table(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    kind: str = "hermitry",
) -> str:
    """``kind`` ``hermitry``: H per method and class (Table 4 of the hermitry paper);
    ``hermitry_thresholds``: T_c per class (its Appendix B)."""
    stem = paths.report_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/tables/{kind}_{stem}.csv"


def figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    suffix: str = "png",
) -> str:
    """KDE of normalized distances per class and source (Figure 3 and Appendix C)."""
    stem = paths.report_stem(dataset, model, recipe, seed)
    return f"{paths.RESULTS}/figures/hermitry_{stem}.{suffix}"


def recipes_table(dataset: str = "{dataset}", model: str = "{model}", seed="{seed}") -> str:
    """Mean H per source and level, a column per training recipe."""
    return f"{paths.RESULTS}/tables/hermitry_recipes_{dataset}_{model}_seed{seed}.csv"


def recipes_figure(
    dataset: str = "{dataset}", model: str = "{model}", seed="{seed}", suffix: str = "png"
) -> str:
    return f"{paths.RESULTS}/figures/hermitry_recipes_{dataset}_{model}_seed{seed}.{suffix}"


# ----------------------------------------------------------------------- config


def check(config: dict[str, Any]) -> None:
    """Named hermitry methods must exist, map methods must map the split, the foreign
    dataset must be configured."""
    settings = config["hermitry"]
    methods = config["methods"]
    for key in ("methods", "map_methods"):
        for name in settings[key] or []:
            if name not in methods:
                raise ConfigError(
                    f"config key 'hermitry.{key}': {name!r} is not defined in 'methods'; "
                    f"defined: {', '.join(sorted(methods))}"
                )
    for name in settings["map_methods"] or []:
        if settings["split"] not in method_splits(config, name):
            raise ConfigError(
                f"config key 'hermitry.map_methods': {name!r} attributes only the "
                f"{', '.join(method_splits(config, name))} split; hermitry.split is "
                f"{settings['split']}"
            )
    foreign = settings["foreign"]
    if foreign not in (None, "auto") and foreign not in config["datasets"]:
        raise ConfigError(
            f"config key 'hermitry.foreign': {foreign!r} is not defined in 'datasets'; "
            f"defined: {', '.join(sorted(config['datasets']))}"
        )


def methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
    """Methods whose queries are captured: ``hermitry.methods``, or those of the
    perturbation methods of the hermitry paper that the experiment uses."""
    chosen = config["hermitry"]["methods"]
    if chosen is not None:
        return list(chosen)
    return [
        name
        for name in experiment_methods(config, experiment)
        if config["methods"][name]["method"] in PERTURBATION_METHODS
    ]


def map_methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
    """Methods whose maps rank the ROAR and MIF/LIF inputs of the hermitry evaluation."""
    chosen = config["hermitry"]["map_methods"]
    if chosen is not None:
        return list(chosen)
    split = config["hermitry"]["split"]
    return [
        name
        for name in experiment_methods(config, experiment)
        if split in method_splits(config, name)
    ]


def foreign_dataset(config: Mapping[str, Any], dataset: str) -> str | None:
    """The dataset of the foreign control of a model trained on ``dataset``, or None."""
    foreign = config["hermitry"]["foreign"]
    if foreign == "auto":
        others = [name for name in config["datasets"] if name != dataset]
        return others[0] if others else None
    return foreign


# ----------------------------------------------------------------------- rule inputs


def targets(config: Mapping[str, Any]) -> list[str]:
    """Tables and figures of the hermitry ratio of every model of the experiments asking,
    and the comparison of recipes where an experiment trains more than one."""
    found = []
    for experiment, run in experiments_with(config, NAME):
        for kind in ("hermitry", "hermitry_thresholds"):
            found.append(table(*run, kind=kind))
        found.extend(figure(*run, suffix=suffix) for suffix in ("png", "pdf"))
        if len(experiment["recipes"]) > 1:
            model = (run.dataset, run.model, run.seed)
            found.append(recipes_table(*model))
            found.extend(recipes_figure(*model, suffix=suffix) for suffix in ("png", "pdf"))
    return unique(found)


def foreign_input(config: Mapping[str, Any], wildcards: Any) -> dict[str, str]:
    """The dataset store of the foreign control, if there is one."""
    name = foreign_dataset(config, wildcards.dataset)
    return {} if name is None else {"foreign": paths.data_store(name)}


def method_stores(config: Mapping[str, Any], wildcards: Any) -> list[str]:
    """Capture stores of one model, one per method whose queries are captured."""
    run = run_of(wildcards)
    return [method_store(*run, method) for method in methods(config, experiment_of(config, run))]


def map_names(config: Mapping[str, Any], wildcards: Any) -> list[str]:
    return map_methods(config, experiment_of(config, run_of(wildcards)))


def map_stores(config: Mapping[str, Any], wildcards: Any) -> list[str]:
    """Attribution stores whose maps rank the ROAR and MIF/LIF inputs, in name order."""
    run = run_of(wildcards)
    return [paths.attribution_store(*run, method) for method in map_names(config, wildcards)]


def summaries_by_recipe(config: Mapping[str, Any], wildcards: Any) -> dict[str, str]:
    """Hermitry summaries of one model seed, by recipe, for the recipe comparison."""
    summaries = {}
    for experiment in config["experiments"]:
        if NAME not in experiment["evaluations"]:
            continue
        if (experiment["dataset"], experiment["model"]) != (wildcards.dataset, wildcards.model):
            continue
        if int(wildcards.seed) not in experiment["seeds"]:
            continue
        for recipe in experiment["recipes"]:
            summaries.setdefault(
                recipe, summary_path(wildcards.dataset, wildcards.model, recipe, wildcards.seed)
            )
    return summaries


# ----------------------------------------------------------------------- job settings
# Each function builds the `settings` param of one rule: exactly the keyword arguments its
# job function reads, so an edit elsewhere in the config reruns nothing here.


def _unless(section: Mapping[str, Any], key: str, default: Any, as_key: str | None = None):
    """``{as_key: value}`` when ``section[key]`` is set to something but ``default``, else
    ``{}``: a key added to a job's params after a release would otherwise rerun every
    finished job of that rule (Snakemake compares params), though none of them changes."""
    value = section.get(key, default)
    return {} if value == default else {as_key or key: value}


def hermitry_reference_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    settings = config["hermitry"]
    return {
        "split": settings["split"],
        "classes": settings["classes"],
        "max_per_class": settings["max_per_class"],
        "covariance": settings["covariance"],
        "percentile": settings["percentile"],
        # keys added later enter the params only when set, so that finished jobs stay valid
        **_unless(settings, "threshold", "interpolated", as_key="threshold_rule"),
        "noise_images": settings["noise_images"],
        "batch_size": settings["batch_size"],
        "seed": config["seed"],
        "device": config["device"],
    }


def hermitry_capture_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """One method's capture: its own entry, and the attribute rule's target and batch size
    (the batch size only serves the predicted classes)."""
    attribution = config["attribution"]
    return {
        "method_name": wildcards.method,
        "method_entry": config["methods"][wildcards.method],
        "max_queries_per_image": config["hermitry"]["max_queries_per_image"],
        **_unless(config["hermitry"], "count_unperturbed", True),
        "target_rule": attribution["target"],
        "batch_size": attribution["batch_size"],
        "seed": config["seed"],
        "device": config["device"],
    }


def hermitry_evaluations_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """The inputs of the other evaluations as they make them: the ROAR masking, the curves'
    fill and the robustness infidelity perturbations, from their own sections."""
    settings = config["hermitry"]
    infidelity = config["robustness"]["infidelity"]
    return {
        "map_methods": map_names(config, wildcards),
        "fractions": settings["fractions"] or config["roar"]["fractions"],
        "roar_fill": config["roar"]["fill"],
        "blur_sigma": config["roar"]["blur_sigma"],
        "steps": settings["steps"],
        "curves_fill": config["curves"]["fill"],
        "square_side": infidelity["square_side"],
        "noise_std": infidelity["noise_std"],
        "baseline": config["robustness"]["baseline"],
        **_unless(infidelity, "clip", False, as_key="noise_clip"),
        "infidelity_samples": settings["infidelity_samples"],
        "batch_size": settings["batch_size"],
        "seed": config["seed"],
        "device": config["device"],
    }


def hermitry_summary_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """The cut-off, and the model the summary's attributes name."""
    return {
        "low_ratio": config["hermitry"]["low_ratio"],
        "attrs": {
            "dataset": wildcards.dataset,
            "model": wildcards.model,
            "recipe": wildcards.recipe,
            "model_seed": int(wildcards.seed),
        },
    }


def hermitry_report_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """The model named in the table's rows and the figure's title."""
    return {
        "model": wildcards.model,
        "title": f"{wildcards.dataset} / {wildcards.model} / {wildcards.recipe} / "
        f"seed {wildcards.seed}",
    }


def hermitry_recipes_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    return {
        "title": f"{wildcards.dataset} / {wildcards.model} / seed {wildcards.seed}: "
        "hermitry by recipe"
    }


# ----------------------------------------------------------------------- report


def _tidy(summary, run: Run):
    """H per entry and class, an entry labelled ``source:map:level``; H per panel."""
    labels = [
        f"{source}:{method}:{'' if not np.isfinite(level) else f'{level:g}'}"
        for source, method, level in zip(
            summary["source"].values,
            summary["method"].values,
            summary["level"].values,
            strict=True,
        )
    ]
    summary = summary.assign_coords(entry=labels)
    return with_run(indexed_only(summary), run)


def method_scores(summary, run: Run, context: Mapping[str, Any]) -> dict[str, float]:
    """Mean H over classes of the inputs each captured method sends to the model."""
    cells = select_run(summary, run)
    if cells is None:
        return {}
    captured = set(context.get("methods", ()))
    scores = {}
    for panel in cells["panel"].values:
        if str(panel) in captured:
            value = float(np.nanmean(cells["panel_hermitry"].sel(panel=panel).values))
            if np.isfinite(value):
                scores[str(panel)] = value
    return scores


EVALUATION = Evaluation(
    name=NAME,
    title="Hermitry ratio",
    description=(
        "The share of the inputs a perturbation method sends to the model that lie "
        "beyond the 95th percentile of class-conditional Mahalanobis distances of "
        "penultimate encodings (the hermitry paper); low at or below 0.3."
    ),
    summary=lambda run: summary_path(*run),
    read=lazy("saliencybench.evaluations.hermitry.summary", "read_summary"),
    tidy=_tidy,
    tables=lambda run: [table(*run, kind="hermitry")],
    figures=lambda run: [figure(*run, suffix="png")],
    targets=targets,
    check=check,
    columns=(
        ScoreColumn(
            "hermitry H",
            "lower",
            "share of the method's queries out of distribution, mean over classes "
            "(perturbation methods only)",
            method_scores,
        ),
    ),
)
