"""Config validation: the default config passes; every error class is one clear line."""

import copy

import numpy as np
import pytest
import yaml
from fakes import write_mnist
from support import ROOT, config_error, fresh_python

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
    del config["experiments"][0]["methods"]
    assert validate(config)["experiments"][0]["methods"] == "all"


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
    bad["datasets"]["mnist_sample"]["options"]["test_fraction"] = 1.5
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
        (
            {"fill": "gray"},
            "config key 'roar.fill': 'gray' is not one of: mean, black, zero, white",
        ),
        ({"methods": ["integrated_gradient"]}, "'integrated_gradient' is not defined in 'methods'"),
        ({"methods": ["lime"]}, "config key 'roar.methods': 'lime' attributes only the test split"),
        ({"seed": [0]}, "config key 'roar.seed' is unknown in 'roar'"),
    ],
)
def test_bad_roar_settings(config, change, expected):
    config["roar"].update(change)
    assert expected in config_error(config)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"cpu": 2048}, "max_examples_per_batch"),
        ({"cpu": 2048, "gpu": 4096}, "max_examples_per_batch"),
        (0, "max_examples_per_batch"),
    ],
)
def test_bad_size_per_device(config, value, expected):
    config["robustness"]["max_examples_per_batch"] = value
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


# ----------------------------------------------------------------------- weights files


def _save(path, obj, **options):
    """``torch.save(obj, path)``; returns the path as a string."""
    import torch

    torch.save(obj, path, **options)
    return str(path)


def _tiny_state():
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(4, 3)).state_dict()


class _Pickled:
    """A class of this test module: a file that pickles it is more than a state_dict."""


def _weights_error(config, weights) -> str:
    config["models"]["small_cnn"]["weights"] = str(weights)
    return config_error(config)


def test_readable_weights_files_pass_validation(config, tmp_path):
    """torch.save's zip and legacy formats, bare or wrapped, with DataParallel's prefix."""
    state = _tiny_state()
    for weights in (
        _save(tmp_path / "plain.pt", state),
        _save(tmp_path / "legacy.pt", state, _use_new_zipfile_serialization=False),
        _save(tmp_path / "wrapped.pt", {"epoch": 3, "state_dict": state}),
        _save(tmp_path / "prefixed.pt", {"model": {f"module.{k}": v for k, v in state.items()}}),
    ):
        entry = copy.deepcopy(config)
        entry["models"]["small_cnn"]["weights"] = weights
        validate(entry)


def test_weights_file_is_read_without_torch_into_shapes(tmp_path):
    from saliencybench.preflight import read_state_dict_shapes

    state = _tiny_state()
    expected = {key: tuple(value.shape) for key, value in state.items()}
    assert read_state_dict_shapes(_save(tmp_path / "a.pt", state)) == expected
    legacy = _save(tmp_path / "b.pt", state, _use_new_zipfile_serialization=False)
    assert read_state_dict_shapes(legacy) == expected
    wrapped = _save(tmp_path / "c.pt", {"model": {f"module.{k}": v for k, v in state.items()}})
    assert read_state_dict_shapes(wrapped) == expected


def test_missing_weights_file(config, tmp_path):
    missing = tmp_path / "resnet50.pth"
    message = _weights_error(config, missing)
    assert message == f"config key 'models.small_cnn.weights': {missing}: does not exist"
    assert "relative to" in _weights_error(config, "no-such-weights.pth")
    assert _weights_error(config, tmp_path).endswith(": is a directory, not a state_dict file")


def test_weights_file_of_a_pickled_model(config, tmp_path):
    from torch import nn

    whole = _save(tmp_path / "whole.pt", nn.Sequential(nn.Linear(2, 3)))
    message = _weights_error(config, whole)
    assert message.startswith(f"config key 'models.small_cnn.weights': {whole}: ")
    assert "a pickled object (torch.nn.modules.container.Sequential), not a plain state_dict" in (
        message
    )
    assert "save model.state_dict()" in message
    legacy = _save(tmp_path / "legacy.pt", nn.Linear(2, 3), _use_new_zipfile_serialization=False)
    assert "a pickled object (torch.nn.modules.linear.Linear)" in _weights_error(config, legacy)


def test_weights_file_with_an_arbitrary_object_is_refused_by_name(config, tmp_path):
    arbitrary = _save(tmp_path / "a.pt", {"state_dict": _tiny_state(), "extra": _Pickled()})
    assert "a pickled object (test_config._Pickled)" in _weights_error(config, arbitrary)
    callable_ = _save(tmp_path / "b.pt", {"run": print})
    assert "a pickled object (builtins.print)" in _weights_error(config, callable_)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([1, 2], "holds a list, not a state_dict"),
        ({"epoch": 3}, "entry 'epoch' is an int, not a tensor"),
        ({}, "holds an empty state_dict"),
    ],
)
def test_weights_file_that_holds_no_state_dict(config, tmp_path, content, expected):
    assert expected in _weights_error(config, _save(tmp_path / "w.pt", content))


def test_weights_file_not_written_by_torch_save(config, tmp_path):
    import pickle
    import zipfile

    text = tmp_path / "notes.txt"
    text.write_text("weights")
    assert "not a file written by torch.save" in _weights_error(config, text)
    pickled = tmp_path / "plain.pkl"
    pickled.write_bytes(pickle.dumps({"w": [1.0]}, protocol=2))
    assert "not a file written by torch.save" in _weights_error(config, pickled)
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("other/readme.txt", "hello")
    assert "a zip archive without data.pkl" in _weights_error(config, archive)
    truncated = tmp_path / "truncated.pt"
    legacy = _save(tmp_path / "l.pt", _tiny_state(), _use_new_zipfile_serialization=False)
    truncated.write_bytes(open(legacy, "rb").read()[:200])
    assert "a damaged pickle" in _weights_error(config, truncated)


def test_torchscript_archive_is_not_a_state_dict(config, tmp_path):
    import warnings

    import torch
    from torch import nn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, and that is the point
        path = tmp_path / "scripted.pt"
        torch.jit.save(torch.jit.script(nn.Linear(2, 3)), path)
    assert "a TorchScript archive (torch.jit.save)" in _weights_error(config, path)


def test_weights_check_loads_no_torch(tmp_path):
    """The check runs when the Snakefile is parsed: it reads the file without torch."""
    path = _save(tmp_path / "w.pt", _tiny_state())
    code = (
        "import sys\n"
        "from saliencybench.preflight import read_state_dict_shapes\n"
        f"print(len(read_state_dict_shapes({path!r})), "
        "sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    assert fresh_python(code, timeout=60).strip() == "9 []"


# ----------------------------------------------------------------------- device: cuda


def test_cuda_device_problem_on_a_machine_without_cuda():
    from saliencybench.preflight import CudaProbe, cuda_device_problem

    def none():
        return CudaProbe(0, "no NVIDIA driver: libcuda.so.1 not found")

    message = cuda_device_problem("cuda", probe=none)
    assert message == (
        "'cuda', but this machine has no CUDA device (no NVIDIA driver: libcuda.so.1 not "
        "found) and the jobs run here; use 'auto' or 'cpu'"
    )
    assert "'cuda:1', but this machine has no CUDA device" in cuda_device_problem("cuda:1", none)
    # auto falls back to the CPU and cpu needs nothing: neither is probed
    for device in ("auto", "cpu"):
        assert cuda_device_problem(device, probe=lambda: pytest.fail("probed")) is None


def test_cuda_device_problem_counts_devices():
    from saliencybench.preflight import CudaProbe, cuda_device_problem

    def two():
        return CudaProbe(2)

    assert cuda_device_problem("cuda", two) is None
    assert cuda_device_problem("cuda:1", two) is None
    assert cuda_device_problem("cuda:2", two) == (
        "'cuda:2', but this machine has 2 CUDA device(s), cuda:0 to cuda:1"
    )
    # a machine the probe cannot judge (ROCm runs 'cuda' through HIP) is let through
    assert cuda_device_problem("cuda", lambda: CudaProbe(None, "an AMD ROCm machine")) is None


class _FakeDriver:
    """libcuda through ctypes: cuInit's status and the count cuDeviceGetCount writes."""

    def __init__(self, init_status: int, count: int = 0) -> None:
        self.init_status, self.count = init_status, count

    def cuInit(self, flags):  # noqa: N802 (the driver's name)
        return self.init_status

    def cuDeviceGetCount(self, pointer):  # noqa: N802
        pointer._obj.value = self.count  # ctypes.byref keeps the c_int in _obj
        return 0


def test_probe_cuda_asks_the_driver(tmp_path, monkeypatch):
    from saliencybench.preflight import probe_cuda

    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    absent = tmp_path / "kfd"
    found = probe_cuda(("libcuda.so.1",), absent, load=missing)
    assert (found.devices, found.reason) == (0, "no NVIDIA driver: libcuda.so.1 not found")
    absent.touch()  # an AMD ROCm machine: no verdict
    assert probe_cuda(("libcuda.so.1",), absent, load=missing).devices is None
    assert probe_cuda(load=lambda name: _FakeDriver(0, 3)).devices == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    hidden = probe_cuda(load=lambda name: _FakeDriver(100))
    assert hidden.devices == 0
    assert hidden.reason == (
        "the NVIDIA driver reports CUDA_ERROR_NO_DEVICE with CUDA_VISIBLE_DEVICES=''"
    )


def test_probe_cuda_agrees_with_torch():
    """The real driver probe, here: as many devices as torch sees (none without a GPU)."""
    import torch

    from saliencybench.preflight import probe_cuda

    if torch.version.cuda is None:
        pytest.skip("torch is built without CUDA")
    found = probe_cuda()
    assert found.devices == torch.cuda.device_count(), found.reason
