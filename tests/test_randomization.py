"""Parameter-randomization sanity checks: metrics against references, layer discovery and
re-initialization on real architectures, the finding of Adebayo et al. on a trained model,
the extended IPR statistics, the store written by one job, and config errors."""

from __future__ import annotations

import copy
import inspect
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from support import ROOT, config_error
from torch import nn

from saliencybench.config import load_schema, validate
from saliencybench.evaluations.randomization import spec
from saliencybench.evaluations.randomization.compute import (
    LAYER_TYPES,
    RANDOMIZATION_MODES,
    RandomizationError,
    _SwitchableCopy,
    compute,
    parameter_layers,
    permute_labels,
    randomization_test,
    randomized_copy,
    scale_unit,
    similarities,
    spearman,
    ssim,
    train_permuted_labels,
)
from saliencybench.evaluations.randomization.report import write_report
from saliencybench.evaluations.randomization.spec import methods as randomization_methods
from saliencybench.evaluations.randomization.summary import (
    METRICS,
    MODES,
    bootstrap_interval,
    image_sensitivity,
    read_store,
    sensitive_images,
    summarize,
)
from saliencybench.jobkit import load_run
from saliencybench.methods import AttributionContext
from saliencybench.models import build_model
from saliencybench.pipeline import prepare_dataset, train

SMALL_CNN_LAYERS = ["fc3", "fc2", "fc1", "conv2", "conv1"]


def _pairs(shape, seed=0):
    """Random maps in [0, 1] and noisy copies of them: similar, but not equal."""
    rng = np.random.default_rng(seed)
    first = rng.random(shape)
    second = np.clip(first + 0.3 * rng.standard_normal(shape), 0.0, 1.0)
    return first, second


# ----------------------------------------------------------------------- metrics


@pytest.mark.parametrize("shape", [(6, 16, 16), (4, 8, 8), (3, 9, 13), (2, 32, 20)])
def test_ssim_matches_scikit_image(shape):
    first, second = _pairs(shape)
    ours = ssim(first, second, data_range=1.0)
    reference = [
        structural_similarity(a, b, data_range=1.0) for a, b in zip(first, second, strict=True)
    ]
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-10)
    assert (ours < 0.99).all()
    # another data range and window
    wide = ssim(2 * first, 2 * second, data_range=2.0, win_size=5)
    reference = [
        structural_similarity(2 * a, 2 * b, data_range=2.0, win_size=5)
        for a, b in zip(first, second, strict=True)
    ]
    np.testing.assert_allclose(wide, reference, rtol=0, atol=1e-10)


def test_ssim_of_small_maps_uses_the_largest_window_that_fits():
    first, second = _pairs((3, 5, 6))
    reference = [
        structural_similarity(a, b, data_range=1.0, win_size=5)
        for a, b in zip(first, second, strict=True)
    ]
    np.testing.assert_allclose(ssim(first, second, data_range=1.0), reference, atol=1e-10)


def test_ssim_of_a_map_with_itself_is_one():
    first, _ = _pairs((5, 16, 16))
    constant = np.zeros((1, 16, 16))
    maps = np.concatenate([first, constant])
    np.testing.assert_allclose(ssim(maps, maps, data_range=1.0), 1.0, rtol=0, atol=1e-12)
    signed = np.random.default_rng(1).standard_normal((4, 12, 12)) * 1e-3
    np.testing.assert_allclose(similarities(signed, signed)[:, 0], 1.0, atol=1e-12)


def test_ssim_sees_maps_scaled_to_the_unit_range():
    first, second = _pairs((4, 16, 16))
    scaled = scale_unit(3.0 * first - 7.0)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    np.testing.assert_allclose(scaled, scale_unit(first), atol=1e-12)
    # a positive affine change of either map leaves the similarity as it was
    np.testing.assert_allclose(
        similarities(first, 5.0 * second + 2.0)[:, 0], similarities(first, second)[:, 0]
    )
    assert (scale_unit(np.full((1, 4, 4), 3.0)) == 0).all()


def test_spearman_matches_scipy_with_ties_and_signs():
    rng = np.random.default_rng(2)
    first = np.round(rng.standard_normal((6, 10, 10)), 1)  # many ties
    second = first + rng.standard_normal(first.shape)
    reference = [
        spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(first, second, strict=True)
    ]
    np.testing.assert_allclose(spearman(first, second), reference, atol=1e-12)
    abs_reference = [
        spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic
        for a, b in zip(first, second, strict=True)
    ]
    table = similarities(first, second)
    np.testing.assert_allclose(table[:, METRICS.index("spearman_abs")], abs_reference, atol=1e-12)
    np.testing.assert_allclose(table[:, METRICS.index("spearman")], reference, atol=1e-12)
    # signed and absolute differ for signed maps
    assert not np.allclose(table[:, 1], table[:, 2])
    assert np.isnan(spearman(np.zeros((1, 3, 3)), first[:1, :3, :3]))[0]


# ----------------------------------------------------------------------- layers


def _forward_order(model: nn.Module, example: torch.Tensor, names: list[str]) -> list[str]:
    """Layers in the order the forward pass calls them, seen by hooks."""
    called = []
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_hook(lambda *_, name=name: called.append(name))
        for name in names
    ]
    with torch.no_grad():
        model(example)
    for handle in handles:
        handle.remove()
    return called


def test_layer_discovery_on_small_cnn():
    model = build_model("small_cnn", in_channels=1, num_classes=10, image_size=16)
    layers = parameter_layers(model)
    assert layers == SMALL_CNN_LAYERS
    assert _forward_order(model, torch.zeros(1, 1, 16, 16), layers) == layers[::-1]
    assert parameter_layers(model, ["conv"]) == ["conv2", "conv1"]
    assert parameter_layers(model, ["linear"]) == ["fc3", "fc2", "fc1"]
    with pytest.raises(RandomizationError, match="no parameter layer of the types norm"):
        parameter_layers(model, ["norm"])
    with pytest.raises(RandomizationError, match="unknown layer type 'pool'"):
        parameter_layers(model, ["pool"])


def test_layer_discovery_on_resnet18():
    import torchvision

    plain = torchvision.models.resnet18(num_classes=10)
    built = build_model("resnet18", in_channels=3, num_classes=10, image_size=32)
    layers = parameter_layers(plain)
    assert parameter_layers(built) == layers  # the fx-traced copy with distinct ReLUs
    assert len(layers) == 20 + 20 + 1  # 17 + 3 downsample convolutions, their norms, fc
    assert layers[:6] == [
        "fc",
        "layer4.1.bn2",
        "layer4.1.conv2",
        "layer4.1.bn1",
        "layer4.1.conv1",
        "layer4.0.downsample.1",
    ]
    assert layers[-3:] == ["layer1.0.conv1", "bn1", "conv1"]
    assert _forward_order(built.eval(), torch.zeros(1, 3, 32, 32), layers) == layers[::-1]
    without_norm = parameter_layers(plain, ["conv", "linear"])
    assert without_norm == [
        name for name in layers if "bn" not in name and "downsample.1" not in name
    ]
    assert len(without_norm) == 21


def test_norm_layers_without_parameters_are_not_parameter_layers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, affine=False), nn.GroupNorm(1, 2))
    assert parameter_layers(model) == ["2", "0"]


def test_schema_layer_types_match_the_registry():
    props = load_schema()["properties"]["randomization"]["properties"]
    assert set(props["layer_types"]["items"]["enum"]) == set(LAYER_TYPES.names())
    assert set(RANDOMIZATION_MODES.names()) == set(MODES)


# ----------------------------------------------------------------------- re-initialization


def _changed(before: dict, after: dict) -> set[str]:
    return {key for key in before if not torch.equal(before[key], after[key])}


def _layer_keys(model: nn.Module, layers) -> set[str]:
    return {
        f"{name}.{key}" for name in layers for key in dict(model.named_modules())[name].state_dict()
    }


@pytest.fixture
def resnet_with_stats():
    """resnet18 whose norm layers hold trained-looking values, so a reset changes them."""
    torch.manual_seed(0)
    model = build_model("resnet18", in_channels=3, num_classes=10, image_size=32)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_()
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(7)
    return model.eval()


def test_cascading_and_independent_touch_exactly_the_intended_parameters(resnet_with_stats):
    model = resnet_with_stats
    layers = parameter_layers(model)
    trained = copy.deepcopy(model.state_dict())
    switchable = _SwitchableCopy(model, layers, seed=5)
    # a few steps of each mode, in an order that makes the copy restore layers too
    for mode, step in [("cascading", 3), ("independent", 2), ("cascading", 0), ("independent", 6)]:
        chosen = [layers[i] for i in RANDOMIZATION_MODES.get(mode)(step)]
        randomized = switchable.select(chosen).state_dict()
        assert _changed(trained, randomized) == _layer_keys(model, chosen), (mode, step)
        reference = randomized_copy(model, chosen, seed=5).state_dict()
        assert all(torch.equal(reference[k], randomized[k]) for k in reference), (mode, step)
    # cascading step j re-initializes the top j + 1 layers, independent step j only layer j
    assert RANDOMIZATION_MODES.get("cascading")(3) == (0, 1, 2, 3)
    assert RANDOMIZATION_MODES.get("independent")(3) == (3,)
    # the trained model itself is never touched
    assert not _changed(trained, model.state_dict())


def test_a_layer_gets_the_same_random_weights_in_both_modes():
    model = build_model("small_cnn", in_channels=1, num_classes=10, image_size=16)
    cascade = randomized_copy(model, ["fc3", "fc2", "fc1"], seed=1).state_dict()
    alone = randomized_copy(model, ["fc2"], seed=1).state_dict()
    assert torch.equal(cascade["fc2.weight"], alone["fc2.weight"])
    assert not torch.equal(cascade["fc2.weight"], model.state_dict()["fc2.weight"])


def test_the_randomized_model_is_reproducible_under_a_seed():
    model = build_model("small_cnn", in_channels=1, num_classes=10, image_size=16)
    rng_state = torch.get_rng_state()
    first = randomized_copy(model, SMALL_CNN_LAYERS, seed=3).state_dict()
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's generator is left alone
    torch.manual_seed(123)  # whatever the global state, the same seed gives the same weights
    again = randomized_copy(model, SMALL_CNN_LAYERS, seed=3).state_dict()
    other = randomized_copy(model, SMALL_CNN_LAYERS, seed=4).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert _changed(first, other) == set(first)


def test_copies_keep_one_distinct_relu_per_use(resnet_with_stats):
    """GuidedBackprop and DeepLift hook nn.ReLU modules: each must be called once, not in place."""
    randomized = randomized_copy(resnet_with_stats, ["fc", "layer4.1.conv2"], seed=0)
    relus = {name: m for name, m in randomized.named_modules() if isinstance(m, nn.ReLU)}
    originals = {id(m) for m in resnet_with_stats.modules()}
    assert relus and not any(m.inplace for m in relus.values())
    assert not any(id(m) in originals for m in relus.values())
    calls = {name: 0 for name in relus}
    for name, module in relus.items():
        module.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    with torch.no_grad():
        randomized(torch.randn(2, 3, 32, 32))
    # the model's original shared `relu` modules stay registered but are no longer called
    assert max(calls.values()) == 1 and sum(calls.values()) == 17


# ----------------------------------------------------------------------- on a trained model


@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory):
    """A small CNN trained for a few epochs on digits, and a data store (seconds on a CPU)."""
    folder = tmp_path_factory.mktemp("randomization")
    data = folder / "digits.zarr"
    prepare_dataset(
        "digits",
        {"source": "digits", "options": {"image_size": 16, "max_train": 400, "max_test": 60}},
        seed=0,
        output=data,
    )
    model_entry = {"architecture": "small_cnn", "weights": None}
    recipe = {"epochs": 8, "batch_size": 32, "lr": 0.05}
    names = {"model_name": "small_cnn", "model_entry": model_entry, "recipe_name": "standard"}
    checkpoint, sidecar = folder / "seed0.pt", folder / "seed0.json"
    record = train(
        data,
        **names,
        recipe_entry=recipe,
        seed=0,
        device="cpu",
        checkpoint=checkpoint,
        sidecar_path=sidecar,
    )
    permuted = train_permuted_labels(
        data,
        **names,
        recipe_entry=recipe,
        seed=0,
        device="cpu",
        checkpoint=folder / "permuted.pt",
        sidecar_path=folder / "permuted.json",
    )
    return {
        "data": data,
        "checkpoint": checkpoint,
        "sidecar": sidecar,
        "record": record,
        "permuted": permuted,
        "permuted_checkpoint": folder / "permuted.pt",
        "permuted_sidecar": folder / "permuted.json",
        "folder": folder,
    }


def test_permuted_labels_model(trained_digits):
    labels = np.arange(100) % 10
    permuted = permute_labels(labels, seed=0)
    assert sorted(permuted) == sorted(labels) and (permuted != labels).mean() > 0.8
    assert np.array_equal(permute_labels(labels, seed=0), permuted)
    record, permuted = trained_digits["record"], trained_digits["permuted"]
    assert permuted["permuted_labels"]["share_changed"] > 0.8
    assert permuted["data_hash"] == record["data_hash"]
    assert permuted["checkpoint_sha256"] != record["checkpoint_sha256"]
    # no signal in permuted labels: the true test labels are at chance, the real model is not
    assert record["test_accuracy"] > 0.6 and permuted["test_accuracy"] < 0.35


def _run(trained_digits, method, params=None, permuted=True):
    run = load_run(
        trained_digits["data"], trained_digits["checkpoint"], trained_digits["sidecar"], "cpu"
    )
    permuted_model = None
    if permuted:
        permuted_model, _ = run.load_beside(
            trained_digits["permuted_checkpoint"], trained_digits["permuted_sidecar"]
        )
    inputs = run.inputs("test")
    targets = run.model(inputs).argmax(1)
    return randomization_test(
        run.model,
        inputs,
        targets,
        method=method,
        params=params,
        reduction=None,
        context=AttributionContext(seed=0, input_range=(float(inputs.min()), float(inputs.max()))),
        batch_size=32,
        layers=parameter_layers(run.model),
        seed=0,
        labels=run.labels("test"),
        permuted_model=permuted_model,
        examples=2,
    )


def test_gradient_maps_change_but_sobel_fails_the_test(trained_digits):
    """Adebayo et al. 2018: model-dependent maps change; an edge detector does not."""
    threshold = 0.99
    for method in ("saliency", "input_x_gradient"):
        result = _run(trained_digits, method)
        ssim_values = result["similarity"].sel(metric="ssim")
        top = ssim_values.sel(mode="independent", layer="fc3")
        assert float(top.mean()) < 0.9, method  # the output layer alone changes the maps
        assert np.allclose(ssim_values.sel(mode="cascading", layer="fc3"), top)
        per_image = image_sensitivity(ssim_values.sel(mode="independent").values)
        assert per_image.mean() >= 0.01, method  # passes
        assert float(result["data_similarity"].sel(metric="ssim").mean()) < 0.9, method
        # the randomized model no longer classifies
        assert float(result["accuracy"].sel(mode="cascading", layer="conv1")) < 0.35
    sobel = _run(trained_digits, "sobel")
    np.testing.assert_allclose(sobel["similarity"].values, 1.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sobel["data_similarity"].values, 1.0, rtol=0, atol=1e-9)
    ssim_sobel = sobel["similarity"].sel(mode="independent", metric="ssim").values
    assert image_sensitivity(ssim_sobel).mean() == pytest.approx(0.0, abs=1e-9)  # S^I = 0: fails
    assert not sensitive_images(ssim_sobel, threshold).any()


def test_stochastic_methods_draw_the_same_noise_for_every_model(trained_digits):
    """A model-free random map is the same under every randomization: it must fail too."""
    result = _run(trained_digits, "random", permuted=False)
    np.testing.assert_allclose(result["similarity"].values, 1.0, atol=1e-9)
    assert "data_similarity" not in result


def test_compute_writes_the_store(trained_digits):
    output = trained_digits["folder"] / "saliency.zarr"
    compute(
        trained_digits["data"],
        trained_digits["checkpoint"],
        trained_digits["sidecar"],
        method_name="saliency",
        method_entry={"method": "saliency", "reduction": None, "store_raw": False, "splits": None},
        permuted_checkpoint=None,
        permuted_sidecar=None,
        split="test",
        max_images=25,
        layer_types=["conv", "linear"],
        examples=2,
        target_rule="predicted",
        batch_size=16,
        seed=0,
        device="cpu",
        output=output,
    )
    stored = read_store(output)
    assert dict(stored["similarity"].sizes) == {"sample": 25, "mode": 2, "layer": 5, "metric": 3}
    assert list(stored["layer"].values) == SMALL_CNN_LAYERS
    assert list(stored["mode"].values) == list(MODES)
    indices = stored["sample"].values
    assert len(set(indices)) == 25 and indices.max() < 60 and (np.diff(indices) > 0).all()
    assert stored["example_maps"].shape == (2, 5, 2, 16, 16)
    assert stored["example_images"].dtype == np.uint8
    assert "data_similarity" not in stored
    assert stored.attrs["checkpoint_sha256"] == trained_digits["record"]["checkpoint_sha256"]
    assert stored.attrs["data_hash"] == trained_digits["record"]["data_hash"]
    assert stored.attrs["name"] == "saliency" and stored.attrs["target_rule"] == "predicted"
    assert stored.attrs["models_evaluated"] == 1 + 2 * 5 - 1  # first cascading step reused


# ----------------------------------------------------------------------- extended IPR


def test_sensitivity_statistics_by_hand():
    ssim_by_layer = np.array([[0.5, 0.98], [0.995, 0.2], [1.0, 1.0]])
    np.testing.assert_allclose(image_sensitivity(ssim_by_layer), [0.26, 0.4025, 0.0])
    assert sensitive_images(ssim_by_layer, 0.99).tolist() == [True, False, False]
    assert sensitive_images(ssim_by_layer, 0.999).tolist() == [True, True, False]


def test_bootstrap_interval_contains_the_mean_and_is_seeded():
    values = np.random.default_rng(0).exponential(size=400)
    low, high = bootstrap_interval(values, confidence=0.9, samples=2000, seed=1)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_interval(values, confidence=0.9, samples=2000, seed=1)
    assert (low, high) != bootstrap_interval(values, confidence=0.9, samples=2000, seed=2)
    # about the normal interval mean ± 1.645 sd / sqrt(n) for a sample this large
    half = 1.6449 * values.std(ddof=1) / np.sqrt(len(values))
    assert high - low == pytest.approx(2 * half, rel=0.1)
    wider = bootstrap_interval(values, confidence=0.99, samples=2000, seed=1)
    assert wider[0] < low and wider[1] > high
    constant = bootstrap_interval(np.zeros(10), confidence=0.9, samples=100, seed=0)
    assert constant == (0.0, 0.0)
    assert np.isnan(
        bootstrap_interval(np.array([np.nan]), confidence=0.9, samples=100, seed=0)
    ).all()


# ----------------------------------------------------------------------- config


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "configs" / "digits.yaml").read_text())


def test_randomization_defaults(config):
    default_methods = config["randomization"]["methods"]
    del config["randomization"]
    validate(config)
    assert config["randomization"]["methods"] is None
    settings = config["randomization"]
    assert settings["layer_types"] == ["conv", "linear", "norm"]
    assert settings["ssim_threshold"] == 0.99 and settings["pass_threshold"] == 0.01
    assert settings["confidence"] == 0.9 and settings["data_randomization"] is True
    # null methods: every method of the experiment that maps the split
    experiment = {**config["experiments"][0], "methods": ["saliency", "lime", "sobel"]}
    assert randomization_methods(config, experiment) == ["saliency", "lime", "sobel"]
    config["methods"]["saliency"]["splits"] = ["train"]
    assert randomization_methods(config, experiment) == ["lime", "sobel"]
    config["randomization"]["methods"] = default_methods  # the default config's own choice
    assert randomization_methods(config, experiment) == default_methods


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"layer_types": ["conv", "pool"]},
            "config key 'randomization.layer_types.1': 'pool' is not one of: conv, linear, norm",
        ),
        (
            {"ssim_threshold": 1.5},
            "config key 'randomization.ssim_threshold': 1.5 is greater than the maximum of 1",
        ),
        ({"ssim_threshold": 0}, "config key 'randomization.ssim_threshold'"),
        ({"pass_threshold": -0.1}, "config key 'randomization.pass_threshold'"),
        ({"confidence": 1.0}, "config key 'randomization.confidence'"),
        ({"bootstrap_samples": 10}, "config key 'randomization.bootstrap_samples'"),
        ({"layer_types": []}, "config key 'randomization.layer_types'"),
        (
            {"methods": ["smoothgrad_sqq"]},
            "config key 'randomization.methods': 'smoothgrad_sqq' is not defined in 'methods'",
        ),
        (
            {"split": "train", "methods": ["lime"]},
            "config key 'randomization.methods': 'lime' attributes only the test split",
        ),
        ({"seed": 1}, "config key 'randomization.seed' is unknown in 'randomization'"),
    ],
)
def test_bad_randomization_settings(config, change, expected):
    config["randomization"] = change
    assert expected in config_error(config)


def test_randomization_is_an_evaluation(config):
    config["experiments"][0]["evaluations"] = ["randomization"]
    validate(config)
    config["experiments"][0]["evaluations"] = ["randomisation"]
    assert "config key 'experiments.0.evaluations.0'" in config_error(config)


# ----------------------------------------------------------------------- job settings

WILDCARDS = SimpleNamespace(
    dataset="digits", model="small_cnn", recipe="standard", seed="0", method="saliency"
)


def _keywords(function, *given) -> set[str]:
    """Keyword-only parameters of a job function, less those its adapter passes itself."""
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind is p.KEYWORD_ONLY} - set(given)


def test_train_permuted_labels_settings(config):
    validate(config)
    settings = spec.train_permuted_labels_settings(config, WILDCARDS)
    assert set(settings) == {
        "model_name",
        "model_entry",
        "recipe_name",
        "recipe_entry",
        "seed",
        "device",
    }
    # train_permuted_labels passes everything but its relabelling on to pipeline.train
    assert set(settings) == _keywords(train, "checkpoint", "sidecar_path", "relabel")
    recipe = config["recipes"]["standard"]
    assert settings["recipe_entry"] == {**recipe, "epochs": 150}  # permuted_epochs
    assert recipe["epochs"] == 15  # the experiment's recipe is left as it was
    assert settings["seed"] == 0 and settings["model_entry"] == config["models"]["small_cnn"]
    config["randomization"]["permuted_epochs"] = None
    assert spec.train_permuted_labels_settings(config, WILDCARDS)["recipe_entry"] == recipe


def test_parameter_randomization_settings(config):
    validate(config)
    settings = spec.parameter_randomization_settings(config, WILDCARDS)
    assert set(settings) == {
        "method_name",
        "method_entry",
        "split",
        "max_images",
        "layer_types",
        "examples",
        "target_rule",
        "batch_size",
        "seed",
        "device",
    }
    given = ("permuted_checkpoint", "permuted_sidecar", "output", "chance_margin")
    assert set(settings) == _keywords(compute, *given)
    assert settings["method_name"] == "saliency"
    assert settings["method_entry"] == config["methods"]["saliency"]
    # another method's entry or the list of methods tested do not touch this job
    config["randomization"]["methods"] = ["saliency"]
    config["methods"]["sobel"]["splits"] = ["test"]
    assert spec.parameter_randomization_settings(config, WILDCARDS) == settings


def test_randomization_summary_settings(config):
    validate(config)
    settings = spec.randomization_summary_settings(config, WILDCARDS)
    assert set(settings) == {
        "ssim_threshold",
        "pass_threshold",
        "confidence",
        "bootstrap_samples",
        "seed",
        "attrs",
    }
    assert set(settings) == _keywords(summarize)
    assert settings["attrs"] == {
        "dataset": "digits",
        "model": "small_cnn",
        "recipe": "standard",
        "model_seed": 0,
        "split": "test",
        "layer_types": "conv,linear,norm",
    }


def test_randomization_report_settings(config):
    validate(config)
    settings = spec.randomization_report_settings(config, WILDCARDS)
    assert settings == {"title": "digits / small_cnn / standard / seed 0"}
    assert set(settings) == _keywords(write_report, "table", "layers", "sensitivity", "examples")
