"""Attribution methods: generic tests over every registered method, then closed forms.

The generic tests are a table over METHODS: registering a method adds it to all of them.
``SMALL`` shrinks the costly parameters so that the file runs in seconds on a CPU.
"""

import math

import jsonschema
import numpy as np
import pytest
import skimage.filters
import torch
from captum.attr import GuidedGradCam
from support import SMALL, C, ConvNet, H, K, W, linear_classifier
from torch import nn

from saliencybench.config import load_schema
from saliencybench.methods import (
    METHODS,
    REDUCTIONS,
    AttributionContext,
    MethodError,
    attribute_dataset,
    batch_seed,
    check_method,
    find_last_conv,
    grid_segments,
    slic_segments,
)

N = 5
CTX = AttributionContext(seed=3, input_range=(-2.0, 2.5))

NAMES = METHODS.names()


def small(name: str) -> dict:
    return dict(SMALL.get(name, {}))


class SquareNet(nn.Module):
    """f(x)_0 = sum(x^2), f(x)_1 = 0: the gradient 2x moves with the noise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.square().sum(dim=(1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], dim=1)


@pytest.fixture(scope="module")
def convnet() -> nn.Module:
    torch.manual_seed(0)
    return ConvNet().eval()


@pytest.fixture(scope="module")
def linear() -> nn.Sequential:
    return linear_classifier()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(N, C, H, W, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def targets() -> torch.Tensor:
    return torch.tensor([0, 1, 2, 3, 4])


def run(model, images, targets, name, params=None, **kwargs):
    kwargs.setdefault("context", CTX)
    kwargs.setdefault("batch_size", 2)
    return attribute_dataset(
        model, images, targets, name, small(name) if params is None else params, **kwargs
    )


def weights_of(linear: nn.Sequential, targets: torch.Tensor) -> torch.Tensor:
    return linear[1].weight.detach()[targets].reshape(-1, C, H, W)


# ----------------------------------------------------------------------------- generic


@pytest.mark.parametrize("name", NAMES)
def test_metadata_is_consistent_and_documented(name):
    cls = METHODS.get(name)
    assert cls.name == name
    assert cls.default_reduction in REDUCTIONS
    check_method(name, {})
    check_method(name, small(name))
    for param in cls.defaults:  # every parameter is documented in the class docstring
        assert param in cls.__doc__, f"{name}: parameter {param} undocumented"


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtype_and_finite(name, convnet, images, targets):
    cls = METHODS.get(name)
    maps, raw = run(convnet, images, targets, name, keep_raw=True)
    assert maps.shape == (N, H, W) and maps.dtype == np.float32
    assert raw.shape == (N, C if cls.channelwise else 1, H, W) and raw.dtype == np.float32
    assert np.isfinite(maps).all() and np.isfinite(raw).all()
    out = cls(convnet, CTX, **small(name)).attribute(images[:2], targets[:2], batch_seed=0)
    assert out.dtype == torch.float32 and out.device == images.device and not out.requires_grad
    _, no_raw = run(convnet, images, targets, name)
    assert no_raw is None


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_maps_and_seed_matters_only_when_random(name, convnet, images, targets):
    first, _ = run(convnet, images, targets, name)
    again, _ = run(convnet, images, targets, name)
    np.testing.assert_array_equal(first, again)
    other_ctx = AttributionContext(seed=CTX.seed + 1, input_range=CTX.input_range)
    other, _ = run(convnet, images, targets, name, context=other_ctx)
    if METHODS.get(name).deterministic:
        np.testing.assert_array_equal(first, other)
    else:
        assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", [n for n in NAMES if METHODS.get(n).deterministic])
def test_batch_size_does_not_change_deterministic_methods(name, convnet, images, targets):
    by_two, _ = run(convnet, images, targets, name, batch_size=2)
    all_at_once, _ = run(convnet, images, targets, name, batch_size=5)
    np.testing.assert_allclose(by_two, all_at_once, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_every_reduction_runs_or_is_refused_up_front(name, convnet, images, targets):
    cls = METHODS.get(name)
    for reduction in REDUCTIONS:
        if getattr(REDUCTIONS.get(reduction), "needs_channels", False) and not cls.channelwise:
            with pytest.raises(MethodError, match=reduction):
                check_method(name, small(name), reduction=reduction)
            with pytest.raises(MethodError, match=reduction):
                run(convnet, images, targets, name, reduction=reduction)
            continue
        check_method(name, small(name), reduction=reduction)
        maps, raw = run(convnet, images, targets, name, reduction=reduction, keep_raw=True)
        expected = REDUCTIONS.get(reduction)(torch.from_numpy(raw), images)
        assert maps.shape == (N, H, W) and np.isfinite(maps).all()
        np.testing.assert_allclose(maps, expected.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_single_channel_images(name, images, targets):
    torch.manual_seed(0)
    gray = images[:, :1]
    maps, raw = run(ConvNet(channels=1).eval(), gray, targets, name, keep_raw=True)
    assert maps.shape == (N, H, W) and raw.shape == (N, 1, H, W) and np.isfinite(maps).all()


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_frozen_during_and_restored_after(name, convnet, images, targets):
    convnet.fc.weight.requires_grad_(False)  # a mixed state must come back as it was
    before = [p.requires_grad for p in convnet.parameters()]
    try:
        run(convnet, images, targets, name)
        assert [p.requires_grad for p in convnet.parameters()] == before
        assert all(p.grad is None for p in convnet.parameters())
    finally:
        convnet.fc.weight.requires_grad_(True)


# ----------------------------------------------------------------------------- validation


def test_unknown_method_lists_valid_names():
    with pytest.raises(MethodError, match="integrated_gradients") as err:
        check_method("integrated_gradient", {})
    assert "saliency" in str(err.value) and "did you mean" in str(err.value)


def test_unknown_parameter_is_named_with_the_valid_ones():
    with pytest.raises(MethodError, match="'steps'") as err:
        check_method("integrated_gradients", {"steps": 10})
    assert "n_steps" in str(err.value) and "internal_batch_size" in str(err.value)
    with pytest.raises(MethodError, match="valid parameters: none"):
        check_method("saliency", {"abs": True})


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("integrated_gradients", {"n_steps": 0}),
        ("integrated_gradients", {"n_steps": 2.5}),
        ("integrated_gradients", {"n_steps": True}),
        ("integrated_gradients", {"integration": "simpson"}),
        ("integrated_gradients", {"internal_batch_size": 0}),
        ("integrated_gradients", {"n_steps": 1, "integration": "riemann_left"}),
        ("smoothgrad", {"noise_level": -0.1}),
        ("vargrad", {"nt_samples_batch_size": 0}),
        ("deeplift", {"baseline": "grey"}),
        ("deeplift", {"baseline": float("nan")}),
        ("occlusion", {"window_size": 4, "stride": 5}),
        ("occlusion", {"perturbations_per_eval": 0}),
        ("lime", {"segmentation": "quickshift"}),
        ("lime", {"kernel_width": 0.0}),
        ("kernel_shap", {"n_samples": 0}),
        ("kernel_shap", {"cell_size": -1}),
        ("gradcam", {"relu_attributions": "yes"}),
        ("gradcam", {"layer": ""}),
        ("guided_gradcam", {"relu_attributions": 1}),
        ("lime", {"n_segments": 1}),
    ],
)
def test_bad_values_are_refused(name, params):
    key = next(iter(params))
    with pytest.raises(MethodError, match=f"{name}: parameter '(stride|{key})'"):
        check_method(name, params)


def test_reduction_may_come_inside_the_config_entry():
    check_method("saliency", {"reduction": "input_sum"})
    check_method("saliency", {"reduction": "abs"}, reduction="abs")
    with pytest.raises(MethodError, match="'input_sum'"):
        check_method("gradcam", {"reduction": "input_sum"})
    with pytest.raises(MethodError, match="two reductions"):
        check_method("saliency", {"reduction": "abs"}, reduction="sum")


def test_unknown_reduction_and_bad_inputs_are_refused(convnet, images, targets):
    with pytest.raises(MethodError, match="unknown reduction 'mean'"):
        check_method("saliency", {}, reduction="mean")
    with pytest.raises(MethodError, match="mapping"):
        check_method("saliency", [1])
    with pytest.raises(MethodError, match="eval mode"):
        run(ConvNet().train(), images, targets, "saliency")
    with pytest.raises(MethodError, match="targets"):
        run(convnet, images, targets[:3], "saliency")
    with pytest.raises(MethodError, match="batch_size"):
        run(convnet, images, targets, "saliency", batch_size=0)
    with pytest.raises(MethodError, match="exceeds the image size"):
        run(convnet, images, targets, "occlusion", {"window_size": 13})
    with pytest.raises(MethodError, match="stride 5 exceeds window_size 2"):
        run(convnet, images, targets, "occlusion", {"stride": 5})  # default window: 2 px
    with pytest.raises(MethodError, match="channel-less"):
        REDUCTIONS.get("input_sum")(torch.ones(N, 1, H, W), images)


def test_context_is_validated():
    with pytest.raises(MethodError, match="input_range"):
        AttributionContext(seed=0, input_range=(1.0, -1.0))
    with pytest.raises(MethodError, match="seed"):
        AttributionContext(seed=-1, input_range=(0.0, 1.0))


def test_each_batch_gets_its_own_seed(convnet, images, targets):
    maps, _ = run(convnet, images, targets, "random", batch_size=2)
    assert not np.array_equal(maps[0:2], maps[2:4])
    method = METHODS.get("random")(convnet, CTX)
    second = method.attribute(images[2:4], targets[2:4], batch_seed(CTX.seed, 2))
    np.testing.assert_array_equal(maps[2:4], second[:, 0].numpy())


def test_empty_dataset_gives_empty_arrays(convnet, images, targets):
    maps, raw = run(convnet, images[:0], targets[:0], "gradcam", keep_raw=True)
    assert maps.shape == (0, H, W) and raw.shape == (0, 1, H, W)


def test_progress_bar_goes_to_stderr(convnet, images, targets, capsys):
    run(convnet, images, targets, "saliency", progress=True)
    captured = capsys.readouterr()
    assert "saliency" in captured.err and captured.out == ""


# ----------------------------------------------------------------------------- schema

# Values to try on every parameter. The schema is coarser than the class checks in three
# ways, all refused later by check_method with a named message: JSON Schema counts 10.0 as an
# integer and inf as a number, and its gradcam 'layer' is any string, "" included.
PROBES = [None, True, False, -1, 0, 1, 2, 3, 50, -0.5, 0.0, 0.5, 1.0, 1.5, 10.0, 0.999]
PROBES += [float("inf"), "auto", "slic", "grid", "riemann_left", "conv1", "", [1]]


def _schema_method_entry() -> dict:
    """The schema's ``method_entry`` as a schema of its own (its ``$ref``s still resolve)."""
    defs = load_schema()["$defs"]
    return {"$defs": defs, **defs["method_entry"]}


def _schema_parameters() -> dict[str, dict[str, dict]]:
    """Each method's parameter subschemas, from the ``allOf`` if/then branches of method_entry.

    The keys that every entry has (``method``, ``reduction``, ...) are the properties of the
    entry itself; the rest of a branch's properties are that method's parameters.
    """
    entry = _schema_method_entry()
    common = set(entry["properties"])
    found: dict[str, dict[str, dict]] = {}
    for rule in entry["allOf"]:
        condition = rule["if"]["properties"]["method"]
        names = condition["enum"] if "enum" in condition else [condition["const"]]
        then = rule["then"]
        assert then["additionalProperties"] is False, names  # unknown keys are refused
        assert common <= set(then["properties"]), names
        for name in names:
            assert name not in found, f"{name}: two branches in the schema"
            found[name] = {k: v for k, v in then["properties"].items() if k not in common}
    return found


def test_schema_lists_each_methods_declared_parameters_and_defaults():
    """The class (``defaults``) is the one declaration; the schema's branch must match it."""
    schema = _schema_parameters()
    assert set(schema) == set(NAMES)
    for name in NAMES:
        declared = METHODS.get(name).defaults
        assert set(schema[name]) == set(declared), name
        for key, spec in schema[name].items():
            if "default" in spec:
                assert spec["default"] == declared[key], f"{name}.{key}"


@pytest.mark.parametrize("name", NAMES)
def test_schema_and_class_checks_agree_on_parameter_values(name):
    """The schema never refuses what the class accepts, and the class refuses what the
    schema refuses; the only values the schema lets through are the three kinds above."""
    validator = jsonschema.Draft202012Validator(_schema_method_entry())
    for key in METHODS.get(name).defaults:
        for value in PROBES:
            by_schema = validator.is_valid({"method": name, key: value})
            try:
                check_method(name, {key: value})
                by_class = True
            except MethodError:
                by_class = False
            lenient = (
                isinstance(value, float) and (value.is_integer() or math.isinf(value))
            ) or value == ""
            assert by_schema == by_class or (by_schema and lenient), (key, value)


# ----------------------------------------------------------------------------- reductions


def test_reductions_by_hand():
    raw = torch.tensor([[[[1.0, -2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    x = torch.tensor([[[[2.0, 1.0]], [[-1.0, 0.5]]]])
    expected = {
        "abs": [4.0, 6.0],
        "sum": [4.0, 2.0],
        "input_sum": [2.0 - 3.0, -2.0 + 2.0],
        "input_abs": [2.0 + 3.0, 2.0 + 2.0],
    }
    assert set(expected) == set(REDUCTIONS)
    for name, values in expected.items():
        out = REDUCTIONS.get(name)(raw, x)
        assert out.shape == (1, 1, 2)
        torch.testing.assert_close(out, torch.tensor([[values]]))


# ----------------------------------------------------------------------------- closed forms


def raw_of(model, images, targets, name, params=None, seed=CTX.seed):
    cls = METHODS.get(name)
    method = cls(model, CTX, **(small(name) if params is None else params))
    return method.attribute(images, targets, batch_seed=seed)


@pytest.mark.parametrize("name", ["saliency", "smoothgrad"])
def test_gradient_of_linear_model_is_its_weights(name, linear, images, targets):
    # noise does not change the gradient of a linear model
    raw = raw_of(linear, images, targets, name)
    torch.testing.assert_close(raw, weights_of(linear, targets), rtol=1e-5, atol=1e-6)


def test_smoothgrad_sq_and_vargrad_of_linear_model(linear, images, targets):
    w = weights_of(linear, targets)
    sq = raw_of(linear, images, targets, "smoothgrad_sq")
    torch.testing.assert_close(sq, w.square(), rtol=1e-5, atol=1e-7)
    var = raw_of(linear, images, targets, "vargrad")
    torch.testing.assert_close(var, torch.zeros_like(var), rtol=0, atol=1e-6)


def test_vargrad_noise_scale_is_noise_level_times_input_range(images):
    # gradient of sum(x^2) is 2x, so vargrad = Var(2 eps) = 4 sigma^2 in every pixel
    params = {"nt_samples": 400, "noise_level": 0.1}
    raw = raw_of(SquareNet(), images[:2], torch.zeros(2, dtype=torch.long), "vargrad", params)
    sigma = 0.1 * (CTX.input_range[1] - CTX.input_range[0])
    assert raw.mean().item() == pytest.approx(4 * sigma**2, rel=0.03)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("input_x_gradient", {}),
        ("integrated_gradients", {"n_steps": 5}),
        ("integrated_gradients", {"n_steps": 3, "integration": "riemann_trapezoid"}),
        ("integrated_gradients", {"n_steps": 2, "integration": "riemann_middle"}),
        ("integrated_gradients", {"n_steps": 4, "baseline": 0.7, "internal_batch_size": 7}),
        ("deeplift", {}),
        ("deeplift", {"baseline": -0.4}),
    ],
)
def test_linear_model_gets_input_minus_baseline_times_weights(
    name, params, linear, images, targets
):
    raw = raw_of(linear, images, targets, name, params)
    baseline = params.get("baseline", 0.0)
    expected = (images - baseline) * weights_of(linear, targets)
    torch.testing.assert_close(raw, expected, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_is_complete_on_the_conv_net(convnet, images, targets):
    raw = raw_of(convnet, images, targets, "integrated_gradients", {"n_steps": 200})
    with torch.no_grad():
        gap = convnet(images) - convnet(torch.zeros_like(images))
    gap = gap.gather(1, targets[:, None])[:, 0]
    # the tiny net's logits differ by ~0.03; ReLU kinks leave a quadrature error of ~1e-4
    torch.testing.assert_close(raw.sum(dim=(1, 2, 3)), gap, rtol=0, atol=0.01 * gap.abs().max())


@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_occlusion_of_single_pixels_is_the_output_drop(baseline, linear, images, targets):
    params = {"window_size": 1, "stride": 1, "baseline": baseline}
    raw = raw_of(linear, images, targets, "occlusion", params)
    # reference: every pixel (all channels) set to the baseline, one perturbed copy each
    eye = torch.eye(H * W).reshape(H * W, 1, 1, H, W)  # (pixel, image, channel, H, W)
    perturbed = images[None] * (1 - eye) + baseline * eye
    with torch.no_grad():
        out = linear(perturbed.reshape(-1, C, H, W)).reshape(H * W, N, K)
        full = linear(images)
    idx = torch.arange(N)
    drop = full[idx, targets][None] - out[:, idx, targets]  # (pixel, image)
    torch.testing.assert_close(raw[:, 0], drop.T.reshape(N, H, W), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("window", "stride"), [(4, 2), (3, 3), (2, 1)])
def test_occlusion_averages_the_windows_covering_a_pixel(window, stride, linear, images, targets):
    params = {"window_size": window, "stride": stride, "baseline": -0.2}
    raw = raw_of(linear, images, targets, "occlusion", params)
    # linear model: a window's drop is the sum over it of w (x - b); windows tile exactly here
    contrib = (weights_of(linear, targets) * (images + 0.2)).sum(dim=1, keepdim=True)
    box = torch.ones(1, 1, window, window)
    drops = nn.functional.conv2d(contrib, box, stride=stride)
    total = nn.functional.conv_transpose2d(drops, box, stride=stride)
    count = nn.functional.conv_transpose2d(torch.ones_like(drops), box, stride=stride)
    torch.testing.assert_close(raw, total / count, rtol=1e-4, atol=1e-5)


def test_occlusion_default_window_follows_image_size(convnet):
    method = METHODS.get("occlusion")(convnet, CTX)
    assert method.window(224, 224) == (22, 11)  # the hermitry paper's setting
    assert method.window(32, 32) == (3, 1)
    assert method.window(12, 12) == (2, 1)


def test_sobel_equals_skimage_per_channel(images, targets):
    raw = raw_of(nn.Identity(), images, targets, "sobel")
    expected = np.stack(
        [np.stack([skimage.filters.sobel(ch) for ch in img]) for img in images.double().numpy()]
    )
    np.testing.assert_allclose(raw.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_random_is_uniform_and_channel_less(convnet, images, targets):
    raw = raw_of(convnet, images, targets, "random")
    assert raw.shape == (N, 1, H, W)
    assert raw.min() >= 0 and raw.max() < 1 and abs(raw.mean().item() - 0.5) < 0.05
    torch.testing.assert_close(raw, raw_of(convnet, images, targets, "random"))


def shapley_of_cells(linear, images, targets, cell, baseline):
    """Exact Shapley value per grid cell of a linear model: sum over the cell of w (x - b)."""
    contrib = (weights_of(linear, targets) * (images - baseline)).sum(dim=1)  # (N, H, W)
    cells = contrib.reshape(N, H // cell, cell, W // cell, cell).sum(dim=(2, 4))
    return cells.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2)


def test_kernel_shap_recovers_shapley_values_of_linear_model(linear, images, targets):
    params = {"segmentation": "grid", "cell_size": 6, "n_samples": 60, "baseline": 0.3}
    raw = raw_of(linear, images, targets, "kernel_shap", params)
    expected = shapley_of_cells(linear, images, targets, 6, 0.3)
    torch.testing.assert_close(raw[:, 0], expected, rtol=0.02, atol=0.02)


def test_lime_ranks_linear_model_features_like_shapley(linear, images, targets):
    params = {"segmentation": "grid", "cell_size": 4, "n_samples": 300, "alpha": 1e-4}
    raw = raw_of(linear, images, targets, "lime", params)
    expected = shapley_of_cells(linear, images, targets, 4, 0.0)
    coef = raw[:, 0, ::4, ::4].flatten(1)
    truth = expected[:, ::4, ::4].flatten(1)
    for a, b in zip(coef, truth, strict=True):
        assert np.corrcoef(a.numpy(), b.numpy())[0, 1] > 0.9


def test_gradcam_uses_the_last_conv_and_matches_a_manual_grad_cam(convnet, images, targets):
    method = METHODS.get("gradcam")(convnet, CTX)
    raw = method.attribute(images, targets, batch_seed=0)
    assert method.layer_name == "conv2"
    assert raw.shape == (N, 1, H, W) and (raw >= 0).all() and raw.max() > 0
    # manual Grad-CAM: ReLU(sum_k mean_hw(dy/dA_k) A_k), bilinear upsampling
    acts = []
    handle = convnet.conv2.register_forward_hook(lambda m, i, o: acts.append(o))
    out = convnet(images)
    handle.remove()
    grads = torch.autograd.grad(out.gather(1, targets[:, None]).sum(), acts[0])[0]
    cam = (grads.mean(dim=(2, 3), keepdim=True) * acts[0]).sum(dim=1, keepdim=True).relu()
    cam = nn.functional.interpolate(cam, size=(H, W), mode="bilinear")
    torch.testing.assert_close(raw, cam.detach(), rtol=1e-4, atol=1e-6)
    signed = raw_of(convnet, images, targets, "gradcam", {"relu_attributions": False})
    assert (signed < 0).any()
    first = METHODS.get("gradcam")(convnet, CTX, layer="conv1")
    assert first.layer_name == "conv1"
    assert not torch.allclose(first.attribute(images, targets, 0), raw)


def test_layer_names_are_checked_against_the_model(convnet):
    with pytest.raises(MethodError, match="conv1, conv2"):
        METHODS.get("guided_gradcam")(convnet, CTX, layer="features.3")


def test_last_conv_is_found_in_forward_order():
    class Reordered(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.late = nn.Conv2d(4, 2, 3)  # registered first, runs last
            self.early = nn.Conv2d(C, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.late(self.early(x)).mean(dim=(2, 3))

    assert find_last_conv(Reordered(), torch.zeros(1, C, H, W)) == "late"
    with pytest.raises(MethodError, match="no nn.Conv2d"):
        find_last_conv(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.zeros(1, 4))


@pytest.mark.filterwarnings("ignore:Setting backward hooks")
def test_guided_gradcam_is_captums_and_guided_backprop_times_gradcam(convnet, images, targets):
    ggc = raw_of(convnet, images, targets, "guided_gradcam")
    captum = GuidedGradCam(convnet, convnet.conv2).attribute(
        images.clone().requires_grad_(), target=targets, interpolate_mode="bilinear"
    )
    torch.testing.assert_close(ggc, captum.detach(), rtol=1e-4, atol=1e-7)
    signed = {"relu_attributions": False}
    gbp = raw_of(convnet, images, targets, "guided_backprop")
    cam = raw_of(convnet, images, targets, "gradcam", signed)
    ggc_signed = raw_of(convnet, images, targets, "guided_gradcam", signed)
    torch.testing.assert_close(ggc_signed, gbp * cam, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(ggc_signed, ggc)


def test_segmentations(images):
    grid = grid_segments(images, 5)  # 12 px in cells of 5: 3 x 3 cells, the last ones clipped
    assert grid.shape == (N, 1, H, W) and grid.dtype == torch.long
    assert grid[0, 0, 0].tolist() == [0] * 5 + [1] * 5 + [2] * 2
    assert grid[:, 0, 11, 11].tolist() == [8] * N
    # quadrants of distinct colors (SLIC merges pure noise into one segment at this size)
    quads = torch.zeros(2, C, H, W)
    quads[:, 0, :6, :6] = 2.0
    quads[:, 1, 6:, :6] = 2.0
    quads[:, 2, :, 6:] = -1.0
    quads[:, :, 6:, 6:] += 1.5
    quads += 0.1 * torch.randn(quads.shape, generator=torch.Generator().manual_seed(0))
    slic = slic_segments(quads, n_segments=8, compactness=10.0)
    assert slic.shape == (2, 1, H, W) and slic.dtype == torch.long
    for labels in slic[:, 0]:  # labels 0..k-1 in every image, following the colors
        values = labels.unique()
        assert values.tolist() == list(range(len(values))) and len(values) >= 3
        assert len(labels[1:5, 1:5].unique()) == 1 and len(labels[8:, 1:5].unique()) == 1
        assert labels[2, 2] != labels[9, 2] != labels[2, 9]


@pytest.mark.parametrize(
    "name",
    [
        "saliency",
        "input_x_gradient",
        "integrated_gradients",
        "smoothgrad",
        "guided_backprop",
        "deconvolution",
        "deeplift",
        "guided_gradcam",
    ],
)
def test_one_backward_pass_gives_captums_gradients_to_the_bit(name, monkeypatch, images, targets):
    """The batch's gradients in one backward pass equal captum's one-row-at-a-time seeds."""
    from captum._utils.gradient import compute_gradients

    from saliencybench.methods import base

    torch.manual_seed(0)
    model = ConvNet().eval()
    ours, _ = run(model, images, targets, name, batch_size=5)
    monkeypatch.setattr(base, "batched_gradients", compute_gradients)
    theirs, _ = run(model, images, targets, name, batch_size=5)
    np.testing.assert_array_equal(ours, theirs)


def test_batched_gradients_need_one_output_per_row(images):
    from saliencybench.methods.base import batched_gradients

    model = ConvNet().eval()
    with pytest.raises(ValueError, match="pass a target"):
        batched_gradients(model, (images.requires_grad_(),))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name, convnet, images, targets):
    cpu, _ = run(convnet, images, targets, name)
    model = ConvNet().eval()
    model.load_state_dict(convnet.state_dict())
    gpu, _ = run(model.cuda(), images.cuda(), targets.cuda(), name)
    if METHODS.get(name).deterministic or name == "random":
        np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-4)
    else:
        assert np.isfinite(gpu).all()


# ----------------------------------------------------------------------------- anchor


def test_kl_bounds_solve_the_kl_equation():
    from saliencybench.methods import kl_lower, kl_upper

    for mean, level in [(0.3, 0.05), (0.9, 0.2), (0.5, 1.0)]:
        up, low = kl_upper(mean, level), kl_lower(mean, level)
        assert low < mean < up

        def kl(q, p=mean):
            return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))

        assert kl(up) == pytest.approx(level, rel=1e-3)
        assert kl(low) == pytest.approx(level, rel=1e-3)


class TextureNet(nn.Module):
    """Class 0 iff the top-left 4 x 4 cell keeps its texture (sum of squares > 8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = x[:, :, :4, :4].square().sum(dim=(1, 2, 3)) - 8.0
        return torch.stack([energy, torch.zeros_like(energy)], dim=1)


def test_anchor_finds_the_one_superpixel_that_keeps_the_class():
    from saliencybench.methods import segment_means

    image = torch.zeros(1, 1, H, W)
    image[0, 0, :4, :4] = torch.tensor([[1.0, -1.0] * 2, [-1.0, 1.0] * 2] * 2)
    image[0, 0, 4:, 4:] = torch.randn(H - 4, W - 4, generator=torch.Generator().manual_seed(0))
    params = {"segmentation": "grid", "cell_size": 4, "batch_size": 20, "coverage_samples": 500}
    raw = raw_of(TextureNet(), image, torch.tensor([0]), "anchor", params)
    # the uniform-colour fill of that cell is its mean, 0: texture gone, class 1
    segments = grid_segments(image, 4)
    assert torch.equal(segment_means(image, segments)[0, 0, :4, :4], torch.zeros(4, 4))
    anchor = raw[0, 0] > 0
    assert anchor[:4, :4].all() and anchor.sum() == 16
