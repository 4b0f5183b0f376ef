# Helpers, validation, wildcard constraints and target lists; no rules here.

import os
import re
import sys
from pathlib import Path

_SRC = str(Path(workflow.basedir) / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
# Jobs run in fresh interpreters (and conda environments): let them import the package.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

from saliencybench import paths
from saliencybench.config import ConfigError, experiment_methods, load_schema
from saliencybench.config import validate as validate_config

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


def all_targets():
    """Every attribution store the experiments name."""
    targets = []
    for experiment in config["experiments"]:
        for recipe in experiment["recipes"]:
            for seed in experiment["seeds"]:
                for method in experiment_methods(config, experiment):
                    targets.append(
                        paths.attribution_store(
                            experiment["dataset"], experiment["model"], recipe, seed, method
                        )
                    )
    return targets


def dataset_entry(wildcards):
    return config["datasets"][wildcards.dataset]


def model_entry(wildcards):
    return config["models"][wildcards.model]


def recipe_entry(wildcards):
    return config["recipes"][wildcards.recipe]


def method_entry(wildcards):
    return config["methods"][wildcards.method]
