# Helpers, validation, wildcard constraints and target lists; no rules here. Each
# evaluation's rule inputs and job settings live in its spec module
# (src/saliencybench/evaluations/<name>/spec.py); the functions below adapt them to rules.

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

from saliencybench import paths, planning
from saliencybench.config import ConfigError, canonical, load_schema
from saliencybench.config import validate as validate_config
from saliencybench.evaluations import EVALUATIONS
from saliencybench.evaluations.curves import spec as curves_spec
from saliencybench.evaluations.hermitry import spec as hermitry_spec
from saliencybench.evaluations.randomization import spec as randomization_spec
from saliencybench.evaluations.roar import spec as roar_spec
from saliencybench.evaluations.robustness import spec as robustness_spec
from saliencybench.masking import MODES
from saliencybench.resources import gpus_for_device, scaled, store_size_mb

SCHEMA = str(Path(workflow.basedir) / "schemas" / "config.schema.yaml")


def validate(config, schema):
    """Validate the config against the JSON Schema, fill defaults, check cross-references."""
    try:
        validate_config(config, load_schema(schema))
    except ConfigError as error:
        raise WorkflowError(f"Invalid config: {error}") from None


validate(config, SCHEMA)


# `device: cuda` on a machine without CUDA would fail in the first model job. Checked only
# where the jobs run on this machine: under a cluster executor the login node may have no
# GPU while the nodes do. Snakemake names the executor only after parsing, so the check is
# an onstart handler: in the main process, before the first job (not in a dry run).
onstart:
    from saliencybench.preflight import cuda_device_problem

    _executor = workflow.executor_plugin.common_settings
    if workflow.is_main_process and _executor.local_exec and not _executor.touch_exec:
        _problem = cuda_device_problem(config["device"])
        if _problem:
            raise WorkflowError(f"Invalid config: config key 'device': {_problem}")


def _names(section):
    return "|".join(re.escape(name) for name in sorted(config[section]))


wildcard_constraints:
    dataset=_names("datasets"),
    model=_names("models"),
    recipe=_names("recipes"),
    method=_names("methods"),
    seed=r"\d+",
    mode="|".join(MODES),
    smoothing="|".join(robustness_spec.SMOOTHINGS),
    frac="|".join(re.escape(paths.fraction_label(f)) for f in config["roar"]["fractions"]),
    reference=r"[A-Za-z0-9_-]+",


def _planned(function, *args):
    """``function(config, *args)``; a config the plan cannot use is a WorkflowError."""
    try:
        return function(config, *args)
    except (ConfigError, KeyError, planning.NoExperimentError) as error:
        raise WorkflowError(f"Invalid config: {error}") from None


def of_config(function):
    """A rule input function of the wildcards from a spec function of (config, wildcards)."""

    def of_wildcards(wildcards):
        return _planned(function, wildcards)

    return of_wildcards


def settings(function):
    """The `settings` param of a job: exactly the config keys the job reads, built by a
    spec function of (config, wildcards). It goes through canonical(): Snakemake compares
    params by their repr, so the key order of a config entry must not count as a change."""

    def of_wildcards(wildcards):
        return canonical(_planned(function, wildcards))

    return of_wildcards


def targets_of(name):
    """Every file `snakemake <name>` builds for evaluation `name`."""
    return lambda wildcards: _planned(EVALUATIONS.get(name).targets)


def all_targets():
    """Every attribution store the experiments name."""
    return planning.attribution_targets(config)


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


# ----------------------------------------------------------------------- report


def evaluation_summary_inputs(wildcards):
    """Per-model summaries that results/summary/{evaluation}.nc combines."""
    return _planned(planning.summary_inputs, wildcards.evaluation)


def report_inputs(wildcards):
    """Combined summaries, tables, PNG figures and sidecars the report page shows."""
    return _planned(planning.report_inputs)


def reproduction_inputs(wildcards):
    """The reference file and the combined summaries it reads."""
    from saliencybench.reproduction import reference_path

    return {
        "reference": str(reference_path(wildcards.reference)),
        "summaries": list(_planned(planning.reproduction_summaries).values()),
    }


def output_patterns(exclude=()):
    """``{rule: [regular expression of each output]}``, to name the rule that rebuilds a
    result (`snakemake verify`). Called at job time, when every rule is defined."""
    return {
        each.name: [output.regex().pattern for output in each.products()]
        for each in workflow.rules
        if each.name not in exclude
    }
