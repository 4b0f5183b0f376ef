"""Config validation: JSON Schema with defaults, then checks across sections.

Runs when the Snakefile is parsed, before any job, so it must stay light: no torch import.
Every error is one line that names the config key and what was expected.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import validators

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """An invalid config; the message is one line naming the key."""


def _with_defaults(validator_class):
    """A validator that fills ``default`` values while it validates (jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema(path: str | Path | None = None) -> dict[str, Any]:
    with open(path or SCHEMA_PATH) as handle:
        return yaml.safe_load(handle)


def _key(path: Iterator[Any]) -> str:
    parts = [str(part) for part in path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line for a schema error, preferring the deepest, most specific cause."""
    if error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        where = f"'{key}'" if error.absolute_path else "the top level"
        return f"config key '{key + '.' if error.absolute_path else ''}{extra[0]}' is unknown in {where}; expected one of: {allowed}"  # noqa: E501
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"config key '{key}': {error.instance!r} is not one of: {allowed}"
    if error.validator == "required":
        return f"config key '{key}': {error.message}"
    return f"config key '{key}': {error.message}"


def _prefill_names(config: dict[str, Any]) -> None:
    """Entries keyed by name default their registry name to the key (``method``, ...)."""
    for section, field in (("methods", "method"), ("models", "architecture")):
        entries = config.get(section)
        if isinstance(entries, dict):
            for name, entry in list(entries.items()):
                if entry is None:
                    entries[name] = entry = {}
                if isinstance(entry, dict):
                    entry.setdefault(field, name)
    datasets = config.get("datasets")
    if isinstance(datasets, dict):
        for name, entry in list(datasets.items()):
            if entry is None:
                datasets[name] = entry = {}
            if isinstance(entry, dict):
                entry.setdefault("source", name)
    recipes = config.get("recipes")
    if isinstance(recipes, dict):
        for name, entry in list(recipes.items()):
            if entry is None:
                recipes[name] = {}


def canonical(value: Any) -> Any:
    """``value`` with the keys of every mapping in it sorted, recursively; lists keep order.

    Snakemake compares a job's params with those of the last run by their ``repr``, in
    which a dict's key order shows: without this, writing a config's keys in another order
    (or a tool that rewrites the file) would rerun every job whose params hold a config
    entry.
    """
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def validate(config: dict[str, Any], schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``config`` in place, fill defaults, and return it.

    Raises:
        ConfigError: one line naming the offending key and what was expected.
    """
    if not isinstance(config, dict):
        raise ConfigError("the config must be a mapping of keys to values")
    _prefill_names(config)
    validator = _Validator(schema or load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_describe(errors[0]))
    _check_roar(config)  # adds the ROAR baselines, which experiments may name
    _check_cross_references(config)
    _check_randomization(config)
    _check_robustness(config)
    _check_hermitry(config)
    _check_dataset_sources(config)
    return config


def _check_cross_references(config: dict[str, Any]) -> None:
    sections = {
        "dataset": "datasets",
        "model": "models",
        "recipes": "recipes",
        "methods": "methods",
    }
    for index, experiment in enumerate(config["experiments"]):
        for field, section in sections.items():
            wanted = experiment.get(field)
            if wanted is None or wanted == "all":
                continue
            for name in [wanted] if isinstance(wanted, str) else wanted:
                if name not in config[section]:
                    raise ConfigError(
                        f"config key 'experiments.{index}.{field}': {name!r} is not defined in "
                        f"'{section}'; defined: {', '.join(sorted(config[section])) or '(none)'}"
                    )


ROAR_BASELINES = ("random", "sobel")


def _check_roar(config: dict[str, Any]) -> None:
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
    for name in ROAR_BASELINES:
        # The baselines are model-free and cost nothing; ROAR always draws them.
        methods.setdefault(
            name, {"method": name, "reduction": None, "store_raw": False, "splits": None}
        )


def method_splits(config: Mapping[str, Any], name: str) -> list[str]:
    """The splits the attribute rule computes for method ``name``."""
    return list(config["methods"][name].get("splits") or config["attribution"]["splits"])


def roar_methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
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
    names = list(ROAR_BASELINES) + sorted(set(chosen) - set(ROAR_BASELINES))
    for name in ROAR_BASELINES:
        if "train" not in method_splits(config, name):
            raise ConfigError(
                f"config key 'methods.{name}': ROAR needs its train-split maps; "
                f"it attributes only {', '.join(method_splits(config, name))}"
            )
    return names


def _check_dataset_sources(config: dict[str, Any]) -> None:
    from saliencybench.data import DatasetError, check_source

    for name, entry in config["datasets"].items():
        try:
            check_source(entry["source"], dict(entry.get("options", {})))
        except DatasetError as error:
            raise ConfigError(f"config key 'datasets.{name}': {error}") from None


def experiment_methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
    """The method names an experiment uses (``all`` = every configured method)."""
    methods = experiment.get("methods", "all")
    return sorted(config["methods"]) if methods == "all" else list(methods)


WORKFLOW_METHOD_KEYS = ("method", "reduction", "store_raw", "splits")


def method_params(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a ``methods`` entry, without the keys the workflow itself reads."""
    return {k: v for k, v in entry.items() if k not in WORKFLOW_METHOD_KEYS}


# ----------------------------------------------------------------------- randomization


def _check_randomization(config: dict[str, Any]) -> None:
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


def randomization_methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
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


# ----------------------------------------------------------------------- robustness


def _check_robustness(config: dict[str, Any]) -> None:
    """Named robustness methods must exist; the square must fit the images it removes from."""
    methods = config["methods"]
    for name in config["robustness"]["methods"] or []:
        if name not in methods:
            raise ConfigError(
                f"config key 'robustness.methods': {name!r} is not defined in 'methods'; "
                f"defined: {', '.join(sorted(methods))}"
            )


def robustness_methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
    """Methods whose infidelity and sensitivity are measured for an experiment.

    ``robustness.methods`` null: every method of the experiment. The method is run afresh on
    the evaluated images, so it need not map the split in its attribution store.
    """
    chosen = config["robustness"]["methods"]
    return experiment_methods(config, experiment) if chosen is None else list(chosen)


# ----------------------------------------------------------------------- hermitry

HERMITRY_PERTURBATION_METHODS = ("occlusion", "lime", "kernel_shap", "anchor")


def _check_hermitry(config: dict[str, Any]) -> None:
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


def hermitry_methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
    """Methods whose queries are captured: ``hermitry.methods``, or those of the
    perturbation methods of the hermitry paper that the experiment uses."""
    chosen = config["hermitry"]["methods"]
    if chosen is not None:
        return list(chosen)
    return [
        name
        for name in experiment_methods(config, experiment)
        if config["methods"][name]["method"] in HERMITRY_PERTURBATION_METHODS
    ]


def hermitry_map_methods(config: Mapping[str, Any], experiment: Mapping[str, Any]) -> list[str]:
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


def hermitry_foreign(config: Mapping[str, Any], dataset: str) -> str | None:
    """The dataset of the foreign control of a model trained on ``dataset``, or None."""
    foreign = config["hermitry"]["foreign"]
    if foreign == "auto":
        others = [name for name in config["datasets"] if name != dataset]
        return others[0] if others else None
    return foreign
