"""Model registry: every architecture builds, and its activations are safe for captum."""

import copy
import logging
import re

import pytest
import torch
from captum.attr import DeepLift, GuidedBackprop
from torch import nn

from saliencybench.inference import DeviceError, resolve_device
from saliencybench.models import (
    MODELS,
    ModelError,
    build_model,
    classifier_layer,
    last_conv_layer,
    load_weights,
    make_activations_distinct,
    with_module_metadata,
)
from saliencybench.registry import UnknownNameError
from saliencybench.testing import ROOT


def _size(name: str) -> int:
    return 75 if name == "inception_v3" else 32


def _relu_calls(model: nn.Module, inputs: torch.Tensor) -> dict[nn.Module, int]:
    calls: dict[nn.Module, int] = {}
    handles = [
        module.register_forward_hook(lambda m, i, o: calls.__setitem__(m, calls.get(m, 0) + 1))
        for module in model.modules()
        if isinstance(module, nn.ReLU | nn.ReLU6)
    ]
    with torch.no_grad():
        model(inputs)
    for handle in handles:
        handle.remove()
    return calls


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("channels", [1, 3])
def test_every_architecture_builds_and_runs(name, channels):
    size = _size(name)
    model = build_model(name, in_channels=channels, num_classes=7, image_size=size).eval()
    with torch.no_grad():
        assert model(torch.randn(2, channels, size, size)).shape == (2, 7)


@pytest.mark.parametrize("name", MODELS.names())
def test_activations_are_distinct_and_outputs_unchanged(name):
    size = _size(name)
    torch.manual_seed(0)
    raw = MODELS.get(name)(in_channels=3, num_classes=4, image_size=size).eval()
    converted = make_activations_distinct(copy.deepcopy(raw)).eval()
    inputs = torch.randn(2, 3, size, size)
    calls = _relu_calls(converted, inputs)
    assert calls and max(calls.values()) == 1
    assert not any(getattr(m, "inplace", False) for m in converted.modules())
    if isinstance(converted, torch.fx.GraphModule):
        assert not any(
            n.op in ("call_function", "call_method") and "relu" in str(n.target)
            for n in converted.graph.nodes
        )
    with torch.no_grad():
        torch.testing.assert_close(converted(inputs), raw(inputs), rtol=1e-5, atol=1e-6)
    assert set(converted.state_dict()) == set(raw.state_dict())


def _deeplift_delta(model: nn.Module, inputs: torch.Tensor) -> float:
    _, delta = DeepLift(model).attribute(inputs, target=0, return_convergence_delta=True)
    return float(delta.abs().max())


def test_deeplift_is_complete_only_after_conversion():
    """torchvision's ResNet reuses self.relu: DeepLift's summation-to-delta breaks there."""
    torch.manual_seed(0)
    raw = MODELS.get("resnet18")(in_channels=3, num_classes=3, image_size=32).eval()
    inputs = torch.randn(2, 3, 32, 32)
    converted = make_activations_distinct(copy.deepcopy(raw)).eval()
    with torch.no_grad():
        scale = float(converted(inputs).abs().max())
    assert _deeplift_delta(converted, inputs) < 1e-3 * max(scale, 1.0)
    try:
        raw_delta = _deeplift_delta(raw, inputs)
    except Exception:  # captum may refuse a reused module outright
        return
    assert raw_delta > 10 * _deeplift_delta(converted, inputs) + 1e-4


def _guided_reference(model: nn.Module, inputs: torch.Tensor, target: int) -> torch.Tensor:
    """Guided backprop by hand: ReLU backward passes only positive gradients of active units."""
    clone = copy.deepcopy(model)
    handles = [
        m.register_full_backward_hook(lambda m, gi, go: (torch.clamp(gi[0], min=0.0),))
        for m in clone.modules()
        if isinstance(m, nn.ReLU)
    ]
    x = inputs.clone().requires_grad_(True)
    clone(x)[:, target].sum().backward()
    for handle in handles:
        handle.remove()
    return x.grad


@pytest.mark.parametrize("name", ["small_cnn", "cifar_resnet18", "resnet18", "vgg16"])
def test_guided_backprop_matches_a_hand_written_reference(name):
    torch.manual_seed(0)
    model = build_model(name, in_channels=3, num_classes=3, image_size=32).eval()
    inputs = torch.randn(2, 3, 32, 32)
    ours = GuidedBackprop(model).attribute(inputs, target=1)
    torch.testing.assert_close(ours, _guided_reference(model, inputs, 1), rtol=1e-4, atol=1e-6)
    plain = torch.autograd.grad(model(inputs.requires_grad_(True))[:, 1].sum(), inputs)[0]
    assert not torch.allclose(ours, plain)


def test_load_weights_round_trip_and_classifier_swap(tmp_path):
    torch.manual_seed(0)
    source = build_model("cifar_resnet18", in_channels=3, num_classes=10, image_size=32).eval()
    path = tmp_path / "w.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    same = build_model(
        "cifar_resnet18", in_channels=3, num_classes=10, image_size=32, weights=str(path)
    ).eval()
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(same(inputs), source(inputs))
    other = build_model(
        "cifar_resnet18", in_channels=3, num_classes=4, image_size=32, weights=str(path)
    )
    torch.testing.assert_close(
        other.state_dict()["conv1.weight"], source.state_dict()["conv1.weight"]
    )
    assert other.state_dict()["fc.weight"].shape == (4, 512)


def test_modules_that_read_their_version_load_a_rebuilt_state_dict(tmp_path):
    """MNASNet refuses a state_dict without version metadata, which a rebuilt dict lacks."""
    torch.manual_seed(0)
    source = build_model("mnasnet1_0", in_channels=3, num_classes=5, image_size=32).eval()
    plain = {k: v.clone() for k, v in source.state_dict().items()}
    assert not hasattr(plain, "_metadata")
    path = tmp_path / "w.pt"
    torch.save(plain, path)
    loaded = build_model("mnasnet1_0", in_channels=3, num_classes=5, image_size=32).eval()
    with pytest.raises(ValueError, match="version"):
        loaded.load_state_dict(plain)
    loaded.load_state_dict(with_module_metadata(plain, loaded))
    rebuilt = build_model(
        "mnasnet1_0", in_channels=3, num_classes=5, image_size=32, weights=str(path)
    ).eval()
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs), source(inputs))
        torch.testing.assert_close(rebuilt(inputs), source(inputs))


def test_load_weights_refuses_pickled_objects_and_mismatches(tmp_path):
    model = build_model("small_cnn", in_channels=1, num_classes=3, image_size=16)
    evil = tmp_path / "evil.pt"
    torch.save({"weights": model.state_dict(), "extra": _Arbitrary()}, evil)
    with pytest.raises(ModelError, match="evil.pt"):
        load_weights(model, str(evil))
    partial = tmp_path / "partial.pt"
    state = model.state_dict()
    del state["fc1.weight"]
    torch.save(state, partial)
    with pytest.raises(ModelError, match=r"partial\.pt: keys do not match.*fc1\.weight"):
        load_weights(model, str(partial))
    with pytest.raises(ModelError, match="does not exist"):
        load_weights(model, str(tmp_path / "none.pt"))


class _Arbitrary:
    """Not a tensor: torch.load(weights_only=True) must refuse to rebuild it."""


def test_errors_and_layer_lookup():
    with pytest.raises(UnknownNameError, match="resnet18"):
        build_model("resnet17", in_channels=3, num_classes=2, image_size=32)
    with pytest.raises(ModelError, match="75"):
        build_model("inception_v3", in_channels=3, num_classes=2, image_size=32)
    with pytest.raises(ModelError, match="channels"):
        build_model("resnet18", in_channels=2, num_classes=2, image_size=32)
    small = build_model("small_cnn", in_channels=1, num_classes=2, image_size=8)
    assert last_conv_layer(small) is small.conv2
    assert classifier_layer(small) is small.fc3
    resnet = build_model("cifar_resnet18", in_channels=3, num_classes=2, image_size=32)
    assert last_conv_layer(resnet) is resnet.get_submodule("layer4.1.conv2")
    air = build_model("airbench_cnn", in_channels=1, num_classes=2, image_size=28)
    assert last_conv_layer(air) is air.get_submodule("blocks.2.0")
    assert classifier_layer(air) is air.classifier
    with pytest.raises(ModelError, match="at least 8 px"):
        build_model("airbench_cnn", in_channels=3, num_classes=2, image_size=7)


def test_airbench_cnn_with_the_fast_recipe_learns_shapes_anywhere_in_the_image():
    """Shapes (2,000 images of 32 px, objects at random positions) and the config's fast
    recipe: at least 90 % on the test split (99 % measured, three seeds)."""
    import yaml

    from saliencybench.data import channel_stats, load_source
    from saliencybench.inference import accuracy, normalize, seed_everything
    from saliencybench.training import Recipe, train_model

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    options = {"image_size": 32, "n_train": 2000, "n_test": 500}
    arrays = load_source("shapes", options, seed=0)
    mean, std = channel_stats(arrays.train.images)
    cpu = torch.device("cpu")
    train = normalize(arrays.train.images, mean, std, cpu)
    test = normalize(arrays.test.images, mean, std, cpu)
    seed_everything(0)
    model = build_model(
        "airbench_cnn", in_channels=3, num_classes=len(set(arrays.train.labels)), image_size=32
    )
    labels = torch.as_tensor(arrays.train.labels)
    recipe = Recipe.from_config(config["recipes"]["fast"])
    train_model(model, train, labels, recipe, seed=0, log_every_epoch=lambda line: None)
    assert accuracy(model, test, torch.as_tensor(arrays.test.labels)) >= 0.9


# ----------------------------------------------------------------------- weights files


def _saved(tmp_path, name: str, obj) -> str:
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def _small(num_classes: int = 3, image_size: int = 16, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("small_cnn", in_channels=1, num_classes=num_classes, image_size=image_size)


def test_classifier_head_of_another_size_is_reinitialized_whole(tmp_path, caplog):
    """Weight and bias of the head keep the fresh init; every other tensor is loaded."""
    source = _small(num_classes=10, seed=0)
    path = _saved(tmp_path, "ten.pt", source.state_dict())
    fresh = _small(num_classes=3, seed=1).state_dict()
    with caplog.at_level(logging.INFO, logger="saliencybench.models"):
        torch.manual_seed(1)
        loaded = build_model(
            "small_cnn", in_channels=1, num_classes=3, image_size=16, weights=path
        ).state_dict()
    for key, value in source.state_dict().items():
        if key.startswith("fc3."):
            torch.testing.assert_close(loaded[key], fresh[key])
        else:
            torch.testing.assert_close(loaded[key], value)
    assert (
        f"weights {path}: classifier head fc3.weight and fc3.bias re-initialized "
        "(10 outputs in the file, 3 in small_cnn)" in caplog.text
    )


def test_weights_for_another_image_size_are_refused_not_half_loaded(tmp_path):
    """small_cnn's fc1 follows the image size: its weight differs, its bias does not."""
    path = _saved(tmp_path, "28px.pt", _small(num_classes=10, image_size=28).state_dict())
    with pytest.raises(ModelError) as caught:
        build_model("small_cnn", in_channels=1, num_classes=10, image_size=32, weights=path)
    assert str(caught.value) == (
        f"{path}: 1 tensor(s) of another shape than small_cnn's: "
        "fc1.weight (120, 784) in the file, (120, 1024) in the model"
    )
    # another number of classes as well: the head is listed after the tensors that block
    with pytest.raises(ModelError) as caught:
        build_model("small_cnn", in_channels=1, num_classes=3, image_size=32, weights=path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 3 tensor(s) of another shape than small_cnn's: ")
    assert message.index("fc1.weight") < message.index("fc3.weight (10, 84) in the file")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("key", "shape", "shown"),
    [
        ("fc3.bias", (5,), "fc3.bias (5,) in the file, (3,) in the model"),  # weight has 3
        ("fc3.weight", (3, 80), "fc3.weight (3, 80) in the file, (3, 84) in the model"),
        ("conv1.weight", (6, 3, 5, 5), "conv1.weight (6, 3, 5, 5) in the file, (6, 1, 5, 5)"),
    ],
)
def test_other_shape_differences_are_refused(tmp_path, key, shape, shown):
    """Only a head whose weight and bias agree on another output size is re-initialized."""
    state = _small().state_dict()
    state[key] = torch.zeros(shape)
    path = _saved(tmp_path, "w.pt", state)
    with pytest.raises(ModelError, match=re.escape(shown)):
        load_weights(_small(), path, architecture="small_cnn")


def test_weights_of_another_architecture(tmp_path):
    resnet = build_model("cifar_resnet18", in_channels=1, num_classes=3, image_size=32)
    path = _saved(tmp_path, "resnet.pt", resnet.state_dict())
    with pytest.raises(ModelError) as caught:
        build_model("small_cnn", in_channels=1, num_classes=3, image_size=16, weights=path)
    message = str(caught.value)
    assert message.startswith(f"{path}: keys do not match the architecture of small_cnn (")
    assert "missing 9: ['conv1.bias', 'conv2.bias', 'conv2.weight']" in message
    assert "unexpected 121: ['bn1.bias'," in message


def test_a_pickled_model_is_refused_with_the_validation_line(tmp_path):
    """The job reads the file as config validation does, before torch.load."""
    whole = _saved(tmp_path, "whole.pt", _small())
    with pytest.raises(ModelError) as caught:
        load_weights(_small(), whole)
    assert str(caught.value) == (
        f"{whole}: a pickled object (saliencybench.models.SmallCNN), not a plain state_dict; "
        "save model.state_dict() with torch.save"
    )
    arbitrary = _saved(tmp_path, "arbitrary.pt", {"fc": _Arbitrary()})
    with pytest.raises(ModelError, match=r"a pickled object \(test_models\._Arbitrary\)"):
        load_weights(_small(), arbitrary)


def test_bare_torchvision_weights_load_into_a_channel_adapter_and_back(tmp_path):
    torch.manual_seed(0)
    rgb = build_model("resnet18", in_channels=3, num_classes=4, image_size=32)
    gray = build_model(
        "resnet18",
        in_channels=1,
        num_classes=4,
        image_size=32,
        weights=_saved(tmp_path, "a", rgb.state_dict()),
    )
    torch.testing.assert_close(
        gray.state_dict()["net.conv1.weight"], rgb.state_dict()["conv1.weight"]
    )
    back = build_model(
        "resnet18",
        in_channels=3,
        num_classes=4,
        image_size=32,
        weights=_saved(tmp_path, "b", gray.state_dict()),
    )
    torch.testing.assert_close(back.state_dict()["fc.bias"], rgb.state_dict()["fc.bias"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_error_is_one_line():
    with pytest.raises(DeviceError) as caught:
        resolve_device("cuda")
    assert str(caught.value) == "device 'cuda' requested but CUDA is not available"


def test_the_config_schema_lists_every_registered_architecture():
    import yaml

    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    entry = schema["properties"]["models"]["additionalProperties"]["properties"]
    assert sorted(entry["architecture"]["enum"]) == sorted(MODELS.names())
