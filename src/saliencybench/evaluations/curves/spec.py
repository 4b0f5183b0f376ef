"""What the workflow and the page need to know of the perturbation curves: paths, estimators,
targets, job settings and the report section. Torch-free."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from saliencybench import paths
from saliencybench.evaluations.base import (
    Evaluation,
    ScoreColumn,
    indexed_only,
    lazy,
    select_run,
    with_run,
)
from saliencybench.planning import Run, experiment_methods, method_splits

NAME = "curves"
FIGURES = ("curves", "lif_example")
# Index 0 of a store's ``order`` dimension is MIF, 1 LIF.
ORDERS = ("mif", "lif")
CURVES_FORMAT = "saliencybench.curves/1"

# The 2-D reductions a method is evaluated with when its store keeps the raw attributions
# (FPA paper, Sec. 3 and 4.3): gradient maps unsigned (|g|), and signed and unsigned after
# multiplying by the input (the "prime" estimators VG', SG'); squared and variance maps are
# already unsigned; every other method signed (its own sum) and unsigned.
SIGNED_AND_UNSIGNED: dict[str, tuple[str, ...]] = {
    "random": ("sum",),
    "sobel": ("sum",),
    "smoothgrad_sq": ("sum",),
    "vargrad": ("sum",),
    "saliency": ("abs", "input_sum", "input_abs"),
    "smoothgrad": ("abs", "input_sum", "input_abs"),
    "guided_backprop": ("abs", "input_sum", "input_abs"),
    "deconvolution": ("abs", "input_sum", "input_abs"),
}
DEFAULT_REDUCTIONS = ("sum", "abs")

# Column labels of the FPA paper's Table 1 by (method, reduction), in the paper's order.
FPA_ESTIMATORS: dict[tuple[str, str], str] = {
    ("random", "sum"): "Random",
    ("integrated_gradients", "sum"): "IG_sum",
    ("integrated_gradients", "abs"): "IG_abs",
    ("saliency", "abs"): "VG_abs",
    ("saliency", "input_sum"): "VG'_sum",
    ("input_x_gradient", "sum"): "VG'_sum",
    ("saliency", "input_abs"): "VG'_abs",
    ("input_x_gradient", "abs"): "VG'_abs",
    ("smoothgrad", "abs"): "SG_abs",
    ("smoothgrad", "input_sum"): "SG'_sum",
    ("smoothgrad", "input_abs"): "SG'_abs",
    ("smoothgrad_sq", "sum"): "SQ-SG_sum",
}


def curve_reductions(method: str, stored: str, has_raw: bool) -> list[str]:
    """Reductions to evaluate: the stored map's, plus the method's others when raw is kept."""
    if not has_raw:
        return [stored]
    wanted = SIGNED_AND_UNSIGNED.get(method, DEFAULT_REDUCTIONS)
    return [stored] + [name for name in wanted if name != stored]


def estimator_label(method: str, name: str, reduction: str) -> str:
    """The FPA paper's name of an estimator, else ``{config name}_{reduction}``."""
    return FPA_ESTIMATORS.get((method, reduction)) or f"{name}_{reduction}"


# ----------------------------------------------------------------------- paths


def store_path(
    dataset: str = "{dataset}",
    model: str = "{model}",
    recipe: str = "{recipe}",
    seed="{seed}",
    method: str = "{method}",
) -> str:
    """MIF/LIF curves and per-image fidelity of one attribution store."""
    return f"{paths.RESULTS}/curves/{paths.model_stem(dataset, model, recipe, seed)}/{method}.zarr"


def summary_path(dataset: str = "{dataset}", model: str = "{model}", seed="{seed}") -> str:
    """Fidelity A and mean curves of every recipe and estimator of one model seed."""
    return f"{paths.RESULTS}/curves/{dataset}/{model}/fidelity_seed{seed}.nc"


def table(dataset: str = "{dataset}", model: str = "{model}", seed="{seed}") -> str:
    return f"{paths.RESULTS}/tables/fidelity_{dataset}_{model}_seed{seed}.csv"


def figure(
    dataset: str = "{dataset}",
    model: str = "{model}",
    seed="{seed}",
    suffix: str = "png",
    kind: str = "curves",
) -> str:
    """``kind`` ``curves``: MIF/LIF per estimator; ``lif_example``: one image's LIF curve."""
    return f"{paths.RESULTS}/figures/{kind}_{dataset}_{model}_seed{seed}.{suffix}"


# ----------------------------------------------------------------------- rule inputs


def targets(config: Mapping[str, Any]) -> list[str]:
    """Fidelity tables and curve figures of every model seed of the experiments asking."""
    found = []
    for experiment in config["experiments"]:
        if NAME not in experiment["evaluations"]:
            continue
        for seed in experiment["seeds"]:
            names = (experiment["dataset"], experiment["model"], seed)
            found.append(table(*names))
            for kind in FIGURES:
                for suffix in ("png", "pdf"):
                    found.append(figure(*names, suffix=suffix, kind=kind))
    return sorted(set(found))


def stores_by_recipe(config: Mapping[str, Any], wildcards: Any) -> dict[str, list[str]]:
    """Curve stores of one model seed, by recipe: every method that maps the curves split."""
    stores: dict[str, list[str]] = {}
    split = config["curves"]["split"]
    for experiment in config["experiments"]:
        if NAME not in experiment["evaluations"]:
            continue
        if (experiment["dataset"], experiment["model"]) != (wildcards.dataset, wildcards.model):
            continue
        if int(wildcards.seed) not in experiment["seeds"]:
            continue
        for recipe in experiment["recipes"]:
            for method in experiment_methods(config, experiment):
                if split in method_splits(config, method):
                    store = store_path(
                        wildcards.dataset, wildcards.model, recipe, wildcards.seed, method
                    )
                    stores.setdefault(recipe, [])
                    if store not in stores[recipe]:
                        stores[recipe].append(store)
    return stores


def stores(config: Mapping[str, Any], wildcards: Any) -> list[str]:
    """Every curve store of one model seed."""
    return [store for found in stores_by_recipe(config, wildcards).values() for store in found]


# ----------------------------------------------------------------------- job settings


def perturbation_curves_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`compute.compute`: the ``curves`` keys it reads, the seed
    and the device. The method comes from the maps store, so none of its entry is here."""
    curves = config["curves"]
    return {
        "split": curves["split"],
        "steps": curves["steps"],
        "fill_value": curves["fill"],
        "batch_size": curves["batch_size"],
        "max_images": curves["max_images"],
        "seed": config["seed"],
        "device": config["device"],
    }


def fidelity_summary_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`summary.summarize`: the stores by recipe, and the recipe
    order apart, since ``settings()`` sorts the keys of every mapping it passes on."""
    by_recipe = stores_by_recipe(config, wildcards)
    return {"stores": by_recipe, "recipes": list(by_recipe)}


def fidelity_report_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`report.write_report`: the figures' title."""
    return {"title": f"{wildcards.dataset} / {wildcards.model}"}


# ----------------------------------------------------------------------- report


def fidelity_scores(summary, run: Run, context: Mapping[str, Any]) -> dict[str, float]:
    """Fidelity A of each method's stored map (its estimator label in ``context``)."""
    cells = select_run(summary, run)
    if cells is None:
        return {}
    labels = context.get("estimators", {})
    estimators = [str(e) for e in cells["estimator"].values]
    scores = {}
    for method, label in labels.items():
        if label in estimators:
            value = float(cells["area"].sel(estimator=label))
            if np.isfinite(value):
                scores[method] = value
    return scores


EVALUATION = Evaluation(
    name=NAME,
    title="Perturbation curves and fidelity A",
    description=(
        "Pixels perturbed most-important-first (MIF) and least-important-first (LIF); "
        "fidelity A is the area between the normalized LIF and MIF logit curves, x100, "
        "with a 95 % interval over images (Brocki & Chung 2023)."
    ),
    summary=lambda run: summary_path(run.dataset, run.model, run.seed),
    read=lazy("saliencybench.evaluations.curves.summary", "read_fidelity"),
    tidy=lambda summary, run: with_run(indexed_only(summary), run, per_recipe=False),
    tables=lambda run: [table(run.dataset, run.model, run.seed)],
    figures=lambda run: [
        figure(run.dataset, run.model, run.seed, suffix="png", kind=kind) for kind in FIGURES
    ],
    targets=targets,
    columns=(
        ScoreColumn(
            "fidelity A",
            "higher",
            "area between the LIF and MIF curves of the method's stored map, x100",
            fidelity_scores,
            fmt=".1f",
        ),
    ),
    per_recipe=False,
)
