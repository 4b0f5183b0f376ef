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
    if (
        error.validator == "oneOf"
        and "description" in error.schema
        and all(not cause.relative_path for cause in error.context)
    ):
        # no alternative got past the value itself: say what the alternatives are
        what = " ".join(error.schema["description"].split())
        return f"config key '{_key(error.absolute_path)}': {error.instance!r} is not valid; {what}"
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
    from saliencybench.evaluations import EVALUATIONS, ordered_evaluations

    checks = [EVALUATIONS.get(name).check for name in ordered_evaluations(EVALUATIONS)]
    # ROAR's check comes first: it adds the ROAR baselines, which experiments may name.
    for check in checks:
        if check is not None:
            check(config)
    _check_cross_references(config)
    _check_dataset_sources(config)
    _check_models(config)
    _check_reference(config)
    return config


def _check_reference(config: dict[str, Any]) -> None:
    from saliencybench.reproduction import ReferenceError, load_reference

    if config.get("reference"):
        try:
            load_reference(config["reference"])
        except ReferenceError as error:
            raise ConfigError(f"config key 'reference': {error}") from None


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


def _check_dataset_sources(config: dict[str, Any]) -> None:
    from saliencybench.data import DatasetError, check_source

    for name, entry in config["datasets"].items():
        try:
            check_source(entry["source"], dict(entry.get("options", {})))
        except DatasetError as error:
            raise ConfigError(f"config key 'datasets.{name}': {error}") from None


def _check_models(config: dict[str, Any]) -> None:
    """Each ``weights`` file exists and holds a plain state_dict, read without torch.

    Whether its tensors fit the architecture needs the built model (torch): the train job
    checks that first thing, in ``models.load_weights``.
    """
    from saliencybench.preflight import WeightsFileError, read_state_dict_shapes

    for name, entry in config["models"].items():
        weights = entry.get("weights")
        if not weights:
            continue
        try:
            read_state_dict_shapes(weights)
        except WeightsFileError as error:
            raise ConfigError(f"config key 'models.{name}.weights': {weights}: {error}") from None


def load_config_files(paths: list[str | Path]) -> dict[str, Any]:
    """Read config files as ``snakemake --configfile`` does (later files update earlier ones).

    Raises:
        ConfigError: one line naming the file, and the line and column of a YAML error.
    """
    from snakemake.utils import update_config

    config: dict[str, Any] = {}
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise ConfigError(f"{path}: cannot read the config file ({error.strerror})") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None
        if loaded is None:
            raise ConfigError(f"{path}: the config file is empty")
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path}: the top level is a {type(loaded).__name__}, expected a mapping of "
                "config keys (seed, datasets, models, ...)"
            )
        update_config(config, loaded)
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m saliencybench.config FILE...``: check config files without Snakemake.

    Snakemake reads ``--configfile`` itself and, for a YAML error, names neither the file
    nor the line; this names both, then runs the validation the workflow runs.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m saliencybench.config", description=main.__doc__.splitlines()[0]
    )
    parser.add_argument("files", nargs="+", help="config files, in --configfile order")
    args = parser.parse_args(argv)
    try:
        validate(load_config_files(args.files))
    except ConfigError as error:
        print(f"Invalid config: {error}")
        return 1
    print(f"{', '.join(args.files)}: valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
