# Helpers, validation, wildcard constraints and target lists; no rules here.

import os
import re
import sys
from pathlib import Path

_SRC = str(Path(workflow.basedir) / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
# Jobs run in fresh interpreters (and conda environments): let them import the package.
# PYTHONPATH is set here, not required from the user, so it is no `envvars` entry.
_PYTHONPATH = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
os.environ.update(PYTHONPATH=os.pathsep.join([_SRC] + _PYTHONPATH))

from saliencybench import paths
from saliencybench.config import (
    ConfigError,
    canonical,
    experiment_methods,
    load_schema,
    method_splits,
    roar_methods,
)
from saliencybench.config import validate as validate_config
from saliencybench.resources import gpus_for_device, scaled, store_size_mb

SCHEMA = str(Path(workflow.basedir) / "schemas" / "config.schema.yaml")


def validate(config, schema):
    """Validate the config against the JSON Schema, fill defaults, check cross-references."""
    try:
        validate_config(config, load_schema(schema))
    except ConfigError as error:
        raise WorkflowError(f"Invalid config: {error}") from None


validate(config, SCHEMA)


def _names(section):
    return "|".join(re.escape(name) for name in sorted(config[section]))


wildcard_constraints:
    dataset=_names("datasets"),
    model=_names("models"),
    recipe=_names("recipes"),
    method=_names("methods"),
    seed=r"\d+",
    mode="roar|kar",
    frac="|".join(re.escape(paths.fraction_label(f)) for f in config["roar"]["fractions"]),


def _experiment_models():
    """(experiment, recipe, seed) for every original model the experiments train."""
    for experiment in config["experiments"]:
        for recipe in experiment["recipes"]:
            for seed in experiment["seeds"]:
                yield experiment, recipe, seed


def all_targets():
    """Every attribution store the experiments name."""
    return [
        paths.attribution_store(experiment["dataset"], experiment["model"], recipe, seed, method)
        for experiment, recipe, seed in _experiment_models()
        for method in experiment_methods(config, experiment)
    ]


# Params that hold config entries go through canonical(): Snakemake compares params by their
# repr, so the key order of a config entry must not count as a change.


def dataset_entry(wildcards):
    return canonical(config["datasets"][wildcards.dataset])


def model_entry(wildcards):
    return canonical(config["models"][wildcards.model])


def recipe_entry(wildcards):
    return canonical(config["recipes"][wildcards.recipe])


def permuted_recipe_entry(wildcards):
    """The recipe of the permuted-label model: the experiment's, with its own epochs."""
    epochs = config["randomization"]["permuted_epochs"]
    recipe = config["recipes"][wildcards.recipe]
    return canonical(recipe if epochs is None else {**recipe, "epochs": epochs})


def method_entry(wildcards):
    return canonical(config["methods"][wildcards.method])


# ----------------------------------------------------------------------- ROAR / KAR


def roar_targets(wildcards):
    """Tables and figures of ROAR for every model of the experiments that ask for it, and
    the masked dataset stores when ``roar.keep_masked`` is set."""
    targets = []
    for experiment, recipe, seed in _experiment_models():
        if "roar" not in experiment["evaluations"]:
            continue
        names = (experiment["dataset"], experiment["model"], recipe, seed)
        targets.append(paths.roar_table(*names))
        targets.extend(paths.roar_figure(*names, suffix=suffix) for suffix in ("png", "pdf"))
        if config["roar"]["keep_masked"]:
            targets.extend(
                paths.masked_store(*names, *grid) for grid in _roar_grid(experiment)
            )
    return targets


def _roar_grid(experiment):
    """(method, mode, fraction label) of every retraining of one model."""
    try:
        methods = roar_methods(config, experiment)
    except ConfigError as error:
        raise WorkflowError(f"Invalid config: {error}") from None
    roar = config["roar"]
    return [
        (method, mode, paths.fraction_label(fraction))
        for method in methods
        for mode in roar["modes"]
        for fraction in roar["fractions"]
    ]


def _experiment_of(wildcards):
    for experiment, recipe, seed in _experiment_models():
        if (experiment["dataset"], experiment["model"], recipe, str(seed)) == (
            wildcards.dataset,
            wildcards.model,
            wildcards.recipe,
            wildcards.seed,
        ):
            return experiment
    raise WorkflowError(
        f"no experiment trains {wildcards.model} on {wildcards.dataset} with recipe "
        f"{wildcards.recipe} and seed {wildcards.seed}; add it to 'experiments'"
    )


def roar_results(wildcards):
    """Every retraining result of one model: method x mode x fraction."""
    names = (wildcards.dataset, wildcards.model, wildcards.recipe, wildcards.seed)
    return [
        paths.roar_result(*names, *grid) for grid in _roar_grid(_experiment_of(wildcards))
    ]


def roar_baselines(wildcards):
    """Sidecars of the unmasked models, one per retraining seed: the 0 % point."""
    return [
        paths.checkpoint_sidecar(wildcards.dataset, wildcards.model, wildcards.recipe, seed)
        for seed in config["roar"]["seeds"]
    ]


def roar_summary_attrs(wildcards):
    return {
        "dataset": wildcards.dataset,
        "model": wildcards.model,
        "recipe": wildcards.recipe,
        "model_seed": int(wildcards.seed),
        "fill": config["roar"]["fill"],
    }


# ----------------------------------------------------------------------- curves and fidelity


def curves_targets(wildcards):
    """Fidelity tables and curve figures of every model seed of the experiments asking."""
    targets = []
    for experiment in config["experiments"]:
        if "curves" not in experiment["evaluations"]:
            continue
        for seed in experiment["seeds"]:
            names = (experiment["dataset"], experiment["model"], seed)
            targets.append(paths.fidelity_table(*names))
            for kind in ("curves", "lif_example"):
                for suffix in ("png", "pdf"):
                    targets.append(paths.curves_figure(*names, suffix=suffix, kind=kind))
    return sorted(set(targets))


def curve_stores_by_recipe(wildcards):
    """Curve stores of one model seed, by recipe: every method that maps the curves split."""
    stores = {}
    split = config["curves"]["split"]
    for experiment in config["experiments"]:
        if "curves" not in experiment["evaluations"]:
            continue
        if (experiment["dataset"], experiment["model"]) != (wildcards.dataset, wildcards.model):
            continue
        if int(wildcards.seed) not in experiment["seeds"]:
            continue
        for recipe in experiment["recipes"]:
            for method in experiment_methods(config, experiment):
                if split in method_splits(config, method):
                    store = paths.curves_store(
                        wildcards.dataset, wildcards.model, recipe, wildcards.seed, method
                    )
                    stores.setdefault(recipe, [])
                    if store not in stores[recipe]:
                        stores[recipe].append(store)
    return stores


def curve_stores(wildcards):
    return [store for stores in curve_stores_by_recipe(wildcards).values() for store in stores]


# ----------------------------------------------------------------------- cluster resources
# Rules declare threads, mem_mb, runtime and gpu; profiles/slurm turns them into sbatch
# options (README, "Running on a cluster"). Nothing here imports torch: parsing stays quick.


def gpus_per_job():
    """The `gpu` resource of a model-running rule: 1 where `device` resolves to CUDA.

    `cuda` or `cuda:N` gives 1, `cpu` 0, `auto` 1 only where the machine running Snakemake
    sees an NVIDIA GPU (so a cluster whose login node has none needs `device: cuda`).
    For every rule whose job runs a model on `params.device`, as `gpu=gpus_per_job()`.
    """
    return gpus_for_device(config["device"])


def scaled_by_data(base, per_mb=0.0):
    """A resource (mem_mb, runtime) that grows with the job's dataset and with each retry.

    Returns a callable for `resources`, (base + per_mb x MB of the `data` input store) x
    attempt. The store may not exist while Snakemake builds the DAG (size 0 then);
    Snakemake evaluates the callable again when the job is ready, with the store in place.
    """

    def resource(wildcards, input, attempt):
        size = store_size_mb(input.data) if "data" in input.keys() else 0.0
        return scaled(base, per_mb, size, attempt)

    return resource


# ----------------------------------------------------------------------- randomization

from saliencybench.config import randomization_methods


def randomization_targets(wildcards):
    """Table and figures of the randomization tests of every model of the experiments asking."""
    targets = []
    for experiment, recipe, seed in _experiment_models():
        if "randomization" not in experiment["evaluations"]:
            continue
        names = (experiment["dataset"], experiment["model"], recipe, seed)
        targets.append(paths.randomization_table(*names))
        for kind in paths.RANDOMIZATION_FIGURES:
            for suffix in ("png", "pdf"):
                targets.append(paths.randomization_figure(*names, suffix=suffix, kind=kind))
    return targets


def randomization_stores(wildcards):
    """Randomization stores of one model, one per method tested, in the table's order."""
    try:
        methods = randomization_methods(config, _experiment_of(wildcards))
    except ConfigError as error:
        raise WorkflowError(f"Invalid config: {error}") from None
    return [
        paths.randomization_store(
            wildcards.dataset, wildcards.model, wildcards.recipe, wildcards.seed, method
        )
        for method in methods
    ]


def permuted_model(wildcards):
    """The model trained on permuted labels, when the data randomization test is on."""
    if not config["randomization"]["data_randomization"]:
        return {}
    names = (wildcards.dataset, wildcards.model, wildcards.recipe, wildcards.seed)
    return {
        "permuted_checkpoint": paths.permuted_checkpoint(*names),
        "permuted_sidecar": paths.permuted_sidecar(*names),
    }


def randomization_summary_attrs(wildcards):
    return {
        "dataset": wildcards.dataset,
        "model": wildcards.model,
        "recipe": wildcards.recipe,
        "model_seed": int(wildcards.seed),
        "split": config["randomization"]["split"],
        "layer_types": ",".join(config["randomization"]["layer_types"]),
    }


# ----------------------------------------------------------------------- robustness

from saliencybench.config import robustness_methods


def robustness_targets(wildcards):
    """Table and figure of infidelity and sensitivity of every model of the experiments asking."""
    targets = []
    for experiment, recipe, seed in _experiment_models():
        if "robustness" not in experiment["evaluations"]:
            continue
        names = (experiment["dataset"], experiment["model"], recipe, seed)
        targets.append(paths.robustness_table(*names))
        targets.extend(paths.robustness_figure(*names, suffix=suffix) for suffix in ("png", "pdf"))
    return targets


def robustness_stores(wildcards):
    """Robustness stores of one model, one per method evaluated, in the table's order."""
    methods = robustness_methods(config, _experiment_of(wildcards))
    return [
        paths.robustness_store(
            wildcards.dataset, wildcards.model, wildcards.recipe, wildcards.seed, method
        )
        for method in methods
    ]


def robustness_explained_classes(wildcards):
    """The method's attribution store, whose targets name the classes explained, if it maps
    the evaluated split; otherwise the evaluation explains the model's predictions."""
    split = config["robustness"]["split"]
    if split not in method_splits(config, wildcards.method):
        return {}
    return {
        "maps": paths.attribution_store(
            wildcards.dataset, wildcards.model, wildcards.recipe, wildcards.seed, wildcards.method
        )
    }


# ----------------------------------------------------------------------- hermitry

from saliencybench.config import hermitry_foreign, hermitry_map_methods, hermitry_methods


def hermitry_targets(wildcards):
    """Tables and figures of the hermitry ratio of every model of the experiments asking,
    and the comparison of recipes where an experiment trains more than one."""
    targets = []
    for experiment, recipe, seed in _experiment_models():
        if "hermitry" not in experiment["evaluations"]:
            continue
        names = (experiment["dataset"], experiment["model"], recipe, seed)
        for kind in ("hermitry", "hermitry_thresholds"):
            targets.append(paths.hermitry_table(*names, kind=kind))
        targets.extend(paths.hermitry_figure(*names, suffix=suffix) for suffix in ("png", "pdf"))
        if len(experiment["recipes"]) > 1:
            model = (experiment["dataset"], experiment["model"], seed)
            targets.append(paths.hermitry_recipes_table(*model))
            targets.extend(
                paths.hermitry_recipes_figure(*model, suffix=suffix) for suffix in ("png", "pdf")
            )
    return list(dict.fromkeys(targets))


def hermitry_foreign_input(wildcards):
    """The dataset store of the foreign control, if there is one."""
    name = hermitry_foreign(config, wildcards.dataset)
    return {} if name is None else {"foreign": paths.data_store(name)}


def hermitry_method_stores(wildcards):
    """Capture stores of one model, one per method whose queries are captured."""
    names = (wildcards.dataset, wildcards.model, wildcards.recipe, wildcards.seed)
    return [
        paths.hermitry_method_store(*names, method)
        for method in hermitry_methods(config, _experiment_of(wildcards))
    ]


def hermitry_map_names(wildcards):
    return hermitry_map_methods(config, _experiment_of(wildcards))


def hermitry_map_stores(wildcards):
    """Attribution stores whose maps rank the ROAR and MIF/LIF inputs, in name order."""
    names = (wildcards.dataset, wildcards.model, wildcards.recipe, wildcards.seed)
    return [paths.attribution_store(*names, method) for method in hermitry_map_names(wildcards)]


def hermitry_summaries_by_recipe(wildcards):
    """Hermitry summaries of one model seed, by recipe, for the recipe comparison."""
    summaries = {}
    for experiment in config["experiments"]:
        if "hermitry" not in experiment["evaluations"]:
            continue
        if (experiment["dataset"], experiment["model"]) != (wildcards.dataset, wildcards.model):
            continue
        if int(wildcards.seed) not in experiment["seeds"]:
            continue
        for recipe in experiment["recipes"]:
            summaries.setdefault(
                recipe,
                paths.hermitry_summary(wildcards.dataset, wildcards.model, recipe, wildcards.seed),
            )
    return summaries


def hermitry_summary_attrs(wildcards):
    return {
        "dataset": wildcards.dataset,
        "model": wildcards.model,
        "recipe": wildcards.recipe,
        "model_seed": int(wildcards.seed),
    }


# ----------------------------------------------------------------------- report

from saliencybench import html_report


def _report_config():
    try:
        html_report.configured_evaluations(config)
    except KeyError as error:
        raise WorkflowError(f"Invalid config: experiments.evaluations: {error}") from None
    return config


def evaluation_summary_inputs(wildcards):
    """Per-model summaries that results/summary/{evaluation}.nc combines."""
    return html_report.summary_inputs(_report_config(), wildcards.evaluation)


def evaluation_summary_runs(wildcards):
    return html_report.summary_runs(_report_config(), wildcards.evaluation)


def report_inputs(wildcards):
    """Combined summaries, tables, PNG figures and sidecars the report page shows."""
    return html_report.report_inputs(_report_config())


def report_summaries(wildcards):
    """Combined summary path of every evaluation the experiments list, by name."""
    return {
        name: paths.evaluation_summary(name)
        for name in html_report.configured_evaluations(_report_config())
    }
