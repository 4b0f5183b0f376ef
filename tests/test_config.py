"""Config validation: the default config passes; every error class is one clear line."""

import copy

import numpy as np
import pytest
import yaml
from fakes import write_mnist
from support import ROOT, config_error

from saliencybench.config import canonical, load_schema, validate
from saliencybench.planning import WORKFLOW_METHOD_KEYS


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_config_is_valid_and_defaults_are_filled(config):
    validate(config)
    assert config["methods"]["integrated_gradients"]["method"] == "integrated_gradients"
    assert config["methods"]["integrated_gradients"]["internal_batch_size"] is None
    assert config["recipes"]["standard"]["augmentation"] == {"name": "none"}
    assert config["models"]["small_cnn"] == {"architecture": "small_cnn", "weights": None}
    assert config["experiments"][0]["methods"] == "all"


LOCAL_FILES = {"mnist": write_mnist}


def test_every_preset_is_valid(tmp_path):
    """Presets validate; real-data presets against tiny files in the expected format."""
    presets = sorted((ROOT / "configs").glob("*.yaml"))
    assert presets
    for path in presets:
        preset = yaml.safe_load(path.read_text())
        for name, entry in preset["datasets"].items():
            if "path" in entry.get("options", {}):
                folder = tmp_path / path.stem / name
                LOCAL_FILES[entry["source"]](folder, np.random.default_rng(0), True)
                entry["options"]["path"] = str(folder)
        validate(preset)


def test_unknown_top_level_key(config):
    config["seeed"] = 1
    assert "'seeed' is unknown" in config_error(config)


def test_unknown_method(config):
    config["methods"]["integrated_gradient"] = {}
    message = config_error(config)
    assert "methods.integrated_gradient.method" in message
    assert "integrated_gradients" in message


def test_unknown_method_parameter(config):
    config["methods"]["integrated_gradients"]["steps"] = 10
    message = config_error(config)
    assert "'methods.integrated_gradients.steps' is unknown" in message
    assert "n_steps" in message


def test_bad_method_parameter_value(config):
    config["methods"]["integrated_gradients"]["n_steps"] = 0
    assert "methods.integrated_gradients.n_steps" in config_error(config)


def test_unknown_model_architecture(config):
    config["models"]["resnet17"] = {}
    message = config_error(config)
    assert "models.resnet17.architecture" in message and "resnet18" in message


def test_unknown_dataset_source(config):
    config["datasets"]["imagenet"] = {"options": {}}
    message = config_error(config)
    assert "datasets.imagenet.source" in message and "image_folder" in message


def test_bad_fractions(config):
    bad = copy.deepcopy(config)
    bad["recipes"]["standard"]["augmentation"] = {"name": "fpa", "p1_max": 1.5}
    assert "recipes.standard.augmentation.p1_max" in config_error(bad)
    bad = copy.deepcopy(config)
    bad["datasets"]["digits"]["options"]["test_fraction"] = 1.5
    assert "test_fraction" in config_error(bad)


def test_missing_dataset_path(config, tmp_path):
    missing = tmp_path / "no-such-mnist"
    config["datasets"]["mnist"] = {"options": {"path": str(missing)}}
    message = config_error(config)
    assert "datasets.mnist" in message and str(missing) in message


def test_roar_section(config):
    validate(config)
    roar = config["roar"]
    assert roar["fill"] == "mean" and roar["keep_masked"] is False
    # the baselines get entries even when the config does not define them
    bare = yaml.safe_load((ROOT / "config.yaml").read_text())
    del bare["methods"]["sobel"]
    validate(bare)
    assert bare["methods"]["sobel"]["method"] == "sobel"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"fractions": [0.5, 1.0]}, "config key 'roar.fractions.1'"),
        ({"fractions": [0.0]}, "config key 'roar.fractions.0'"),
        ({"modes": ["remove"]}, "config key 'roar.modes.0': 'remove' is not one of: roar, kar"),
        ({"fill": "gray"}, "config key 'roar.fill': 'gray' is not one of: mean, zero"),
        ({"methods": ["integrated_gradient"]}, "'integrated_gradient' is not defined in 'methods'"),
        ({"methods": ["lime"]}, "config key 'roar.methods': 'lime' attributes only the test split"),
        ({"seed": [0]}, "config key 'roar.seed' is unknown in 'roar'"),
    ],
)
def test_bad_roar_settings(config, change, expected):
    config["roar"].update(change)
    assert expected in config_error(config)


def test_experiment_names_undefined_entry(config):
    config["experiments"][0]["recipes"] = ["standard", "fpa"]
    message = config_error(config)
    assert "experiments.0.recipes" in message and "'fpa' is not defined" in message


def test_bad_wildcard_name(config):
    config["methods"]["ig/50"] = {"method": "integrated_gradients"}
    assert "ig/50" in config_error(config)


def test_schema_names_match_registries():
    """The schema lists registry names so validation can run without importing torch."""
    from saliencybench.data import SOURCES
    from saliencybench.methods import METHODS, REDUCTIONS
    from saliencybench.models import MODELS
    from saliencybench.training import AUGMENTATIONS, SCHEDULES

    schema = load_schema()
    props = schema["properties"]
    entry = schema["$defs"]["method_entry"]
    assert set(entry["properties"]["method"]["enum"]) == set(METHODS.names())
    assert set(schema["$defs"]["reduction"]["enum"]) == set(REDUCTIONS.names())
    model_props = props["models"]["additionalProperties"]["properties"]
    assert set(model_props["architecture"]["enum"]) == set(MODELS.names())
    source_props = props["datasets"]["additionalProperties"]["properties"]
    assert set(source_props["source"]["enum"]) == set(SOURCES.names())
    recipe_props = props["recipes"]["additionalProperties"]["properties"]
    assert set(recipe_props["schedule"]["enum"]) == set(SCHEDULES.names())
    assert set(recipe_props["augmentation"]["properties"]["name"]["enum"]) == set(
        AUGMENTATIONS.names()
    )


def test_schema_method_parameters_match_registry():
    """Each method's parameters and defaults in the schema are those of its class."""
    from saliencybench.methods import METHODS

    entry = load_schema()["$defs"]["method_entry"]
    workflow_keys = set(WORKFLOW_METHOD_KEYS)
    seen = set()
    for rule in entry["allOf"]:
        condition = rule["if"]["properties"]["method"]
        names = condition.get("enum") or [condition["const"]]
        properties = rule["then"]["properties"]
        schema_defaults = {
            key: spec.get("default") for key, spec in properties.items() if key not in workflow_keys
        }
        for name in names:
            assert METHODS.get(name).defaults == schema_defaults, name
            seen.add(name)
    assert seen == set(METHODS.names())


def test_schema_augmentation_parameters_match_registry():
    from saliencybench.training import AUGMENTATIONS

    augmentation = load_schema()["properties"]["recipes"]["additionalProperties"]["properties"][
        "augmentation"
    ]
    for rule in augmentation["allOf"]:
        name = rule["if"]["properties"]["name"]["const"]
        properties = rule["then"]["properties"]
        defaults = {k: v.get("default") for k, v in properties.items() if k != "name"}
        assert AUGMENTATIONS.get(name).defaults == defaults, name


def test_canonical_sorts_every_mapping_and_keeps_list_order():
    entry = {"source": "digits", "options": {"size": 16, "max_train": 200}, "splits": ["b", "a"]}
    reordered = {
        "splits": ["b", "a"],
        "options": {"max_train": 200, "size": 16},
        "source": "digits",
    }
    assert repr(canonical(entry)) == repr(canonical(reordered))
    assert canonical(entry)["splits"] == ["b", "a"]
    assert list(canonical(entry)) == ["options", "source", "splits"]
