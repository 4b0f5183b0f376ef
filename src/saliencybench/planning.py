"""Run planning: which models a config trains, which evaluations each lists, and which files
the summary and page jobs read.

Torch-free and xarray-free: the Snakefile imports this module while it builds the DAG, and so
do the page and summary jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from saliencybench import paths


class Run(NamedTuple):
    """One trained model: the unit most evaluations report on."""

    dataset: str
    model: str
    recipe: str
    seed: int


# The coordinates every combined summary gains, in this order.
RUN_DIMS = ("dataset", "model", "recipe", "seed")

# Keys of a ``methods`` entry that the workflow reads itself; the rest are the method's own.
WORKFLOW_METHOD_KEYS = ("method", "reduction", "store_raw", "splits")


# The 2-D reduction of each registered method's maps when its entry names none. Torch-free,
# for the Snakefile and the page; every method class asserts at registration that its
# ``default_reduction`` is the one listed here.
DEFAULT_REDUCTIONS = {
    "anchor": "sum",
    "deconvolution": "abs",
    "deeplift": "sum",
    "gradcam": "sum",
    "guided_backprop": "abs",
    "guided_gradcam": "abs",
    "input_x_gradient": "sum",
    "integrated_gradients": "sum",
    "kernel_shap": "sum",
    "lime": "sum",
    "noisy_baseline": "sum",
    "occlusion": "sum",
    "random": "sum",
    "saliency": "abs",
    "smoothgrad": "abs",
    "smoothgrad_sq": "sum",
    "sobel": "sum",
    "square": "sum",
    "vargrad": "sum",
}


def method_reduction(entry: Mapping[str, Any]) -> str | None:
    """The reduction of a ``methods`` entry's stored maps: its own, or its method's default
    (None for a method that is not registered)."""
    return entry.get("reduction") or DEFAULT_REDUCTIONS.get(entry["method"])


def method_params(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a ``methods`` entry, without the keys the workflow itself reads."""
    return {k: v for k, v in entry.items() if k not in WORKFLOW_METHOD_KEYS}


def method_splits(config: Mapping[str, Any], name: str) -> list[str]:
    """The splits the attribute rule computes for method ``name``."""
    return list(config["methods"][name].get("splits") or config["attribution"]["splits"])


def experiment_methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
    """The method names an experiment uses (``all`` = every configured method)."""
    methods = experiment.get("methods", "all")
    return sorted(config["methods"]) if methods == "all" else list(methods)


def experiment_models(config: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str, int]]:
    """(experiment, recipe, seed) for every original model the experiments train."""
    for experiment in config["experiments"]:
        for recipe in experiment["recipes"]:
            for seed in experiment["seeds"]:
                yield experiment, recipe, seed


def experiments_with(
    config: Mapping[str, Any], evaluation: str
) -> Iterator[tuple[Mapping[str, Any], Run]]:
    """(experiment, run) of every model whose experiment lists ``evaluation``."""
    for experiment, recipe, seed in experiment_models(config):
        if evaluation in experiment["evaluations"]:
            yield experiment, Run(experiment["dataset"], experiment["model"], recipe, int(seed))


def run_of(wildcards: Any) -> Run:
    """The run named by a job's wildcards (``dataset``, ``model``, ``recipe``, ``seed``)."""
    return Run(wildcards.dataset, wildcards.model, wildcards.recipe, int(wildcards.seed))


class NoExperimentError(ValueError):
    """Wildcards that name a model no experiment trains."""


def experiment_of(config: Mapping[str, Any], run: Run) -> Mapping[str, Any]:
    """The first experiment that trains ``run``'s model."""
    for experiment, recipe, seed in experiment_models(config):
        if (experiment["dataset"], experiment["model"], recipe, int(seed)) == tuple(run):
            return experiment
    raise NoExperimentError(
        f"no experiment trains {run.model} on {run.dataset} with recipe {run.recipe} and "
        f"seed {run.seed}; add it to 'experiments'"
    )


def attribution_targets(config: Mapping[str, Any]) -> list[str]:
    """Every attribution store the experiments name."""
    return [
        paths.attribution_store(experiment["dataset"], experiment["model"], recipe, seed, method)
        for experiment, recipe, seed in experiment_models(config)
        for method in experiment_methods(config, experiment)
    ]


# ----------------------------------------------------------------------- evaluations of runs


def experiment_runs(config: Mapping[str, Any]) -> list[tuple[Run, list[str]]]:
    """Every (run, evaluations it lists) of the experiments, in config order."""
    found: dict[Run, list[str]] = {}
    for experiment, recipe, seed in experiment_models(config):
        run = Run(experiment["dataset"], experiment["model"], recipe, int(seed))
        listed = found.setdefault(run, [])
        listed.extend(e for e in experiment["evaluations"] if e not in listed)
    return list(found.items())


def evaluation_runs(config: Mapping[str, Any], name: str) -> list[Run]:
    """Runs whose experiments list evaluation ``name``."""
    return [run for run, listed in experiment_runs(config) if name in listed]


def configured_evaluations(config: Mapping[str, Any]) -> list[str]:
    """Evaluations some experiment lists, in page order; unknown names raise."""
    from saliencybench.evaluations import EVALUATIONS, ordered_evaluations

    names = {name for _, listed in experiment_runs(config) for name in listed}
    for name in names:
        EVALUATIONS.get(name)
    return ordered_evaluations(names)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def summary_inputs(config: Mapping[str, Any], name: str) -> list[str]:
    """Per-model summary files that ``results/summary/{name}.nc`` combines."""
    from saliencybench.evaluations import EVALUATIONS

    entry = EVALUATIONS.get(name)
    return _unique(entry.summary(run) for run in evaluation_runs(config, name))


def summary_runs(config: Mapping[str, Any], name: str) -> list[list[Any]]:
    """(path, dataset, model, recipe, seed) per summary file, as plain lists for params."""
    from saliencybench.evaluations import EVALUATIONS

    entry = EVALUATIONS.get(name)
    rows = {}
    for run in evaluation_runs(config, name):
        rows.setdefault(entry.summary(run), [entry.summary(run), *run])
    return list(rows.values())


def report_inputs(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Everything the page reads: combined summaries, tables, PNG figures, sidecars."""
    from saliencybench.evaluations import EVALUATIONS, ordered_evaluations

    names = configured_evaluations(config)
    runs = experiment_runs(config)
    inputs = {
        "summaries": [paths.evaluation_summary(name) for name in names],
        "sidecars": _unique(paths.checkpoint_sidecar(*run) for run, _ in runs),
        "tables": [],
        "figures": [],
    }
    for run, listed in runs:
        for name in ordered_evaluations(listed):
            entry = EVALUATIONS.get(name)
            inputs["tables"].extend(entry.tables(run))
            inputs["figures"].extend(entry.figures(run))
    inputs["tables"] = _unique(inputs["tables"])
    inputs["figures"] = _unique(inputs["figures"])
    if config.get("reference"):
        inputs["reproduction"] = [paths.reproduction_table(config["reference"])]
    return inputs


def reproduction_summaries(config: Mapping[str, Any]) -> dict[str, str]:
    """The combined summaries the config's reference reads, of the evaluations the
    experiments run (a cell of another evaluation is reported as not measured)."""
    from saliencybench.reproduction import evaluations_of, load_reference

    run = set(configured_evaluations(config))
    wanted = evaluations_of(load_reference(config["reference"]))
    return {name: paths.evaluation_summary(name) for name in wanted if name in run}


def reproduction_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of ``reproduction.write_reproduction`` besides its paths."""
    return {"summary_paths": reproduction_summaries(config)}


def report_summaries(config: Mapping[str, Any]) -> dict[str, str]:
    """Combined summary path of every evaluation the experiments list, by name."""
    return {name: paths.evaluation_summary(name) for name in configured_evaluations(config)}


# ----------------------------------------------------------------------- backbone job settings
# Each function builds the `settings` param of one rule: exactly the keyword arguments its
# job function reads, so an edit elsewhere in the config reruns nothing here.


def prepare_data_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    return {
        "name": wildcards.dataset,
        "entry": config["datasets"][wildcards.dataset],
        "seed": config["seed"],
    }


def _model_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    return {
        "model_name": wildcards.model,
        "model_entry": config["models"][wildcards.model],
        "recipe_name": wildcards.recipe,
        "device": config["device"],
    }


def train_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    return {
        **_model_settings(config, wildcards),
        "recipe_entry": config["recipes"][wildcards.recipe],
        "seed": int(wildcards.seed),
    }


def attribute_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    attribution = config["attribution"]
    return {
        "method_name": wildcards.method,
        "method_entry": config["methods"][wildcards.method],
        "target_rule": attribution["target"],
        "splits": attribution["splits"],
        "batch_size": attribution["batch_size"],
        "seed": config["seed"],
        "device": config["device"],
    }


def evaluation_summary_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of ``summaries.build_summary``: the evaluation and its summary rows."""
    return {"name": wildcards.evaluation, "rows": summary_runs(config, wildcards.evaluation)}


def report_settings(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Keyword arguments of ``html_report.write_page`` besides its output: the whole
    validated config (the page shows it and its hash) and the combined summaries."""
    return {"config": config, "summary_paths": report_summaries(config)}
