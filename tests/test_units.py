"""Baselines, fills and noise scales with their unit: the conversions, and each consumer
(integrated gradients, DeepLift, occlusion, the curves, the infidelity perturbations) checked
against a closed form or captum given the converted tensor."""

import numpy as np
import pytest
import torch
import yaml
from captum.attr import Occlusion
from support import ROOT, C, H, K, W, config_error, linear_classifier
from torch import nn

from saliencybench import units
from saliencybench.config import validate
from saliencybench.evaluations.curves.compute import perturbation_curves
from saliencybench.evaluations.robustness.compute import noisy_baseline
from saliencybench.inference import pixel_bounds
from saliencybench.methods import METHODS, AttributionContext, MethodError, normalized_fill

MEAN = (0.2, 0.5, 0.7)
STD = (0.3, 0.25, 0.1)
CONTEXT = AttributionContext(seed=0, input_range=(-3.0, 3.0), mean=MEAN, std=STD)


def per_channel(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


# ----------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, [0.0, 0.0, 0.0]),
        (0.5, [0.5, 0.5, 0.5]),
        ({"normalized": -1}, [-1.0, -1.0, -1.0]),
        ("mean", [0.0, 0.0, 0.0]),
        ("black", [-0.2 / 0.3, -0.5 / 0.25, -0.7 / 0.1]),
        ("white", [0.8 / 0.3, 0.5 / 0.25, 0.3 / 0.1]),
        ({"pixel": 0.5}, [0.3 / 0.3, 0.0, -0.2 / 0.1]),
    ],
)
def test_fill_values_in_the_normalized_space(value, expected):
    np.testing.assert_allclose(units.fill_values(value, MEAN, STD, 3), expected, rtol=1e-12)


def test_a_bare_number_stays_a_number_so_results_do_not_change():
    inputs = torch.zeros(2, 3, 4, 4)
    assert normalized_fill(0, inputs) == 0.0 and isinstance(normalized_fill(0, inputs), float)
    black = normalized_fill("black", inputs, MEAN, STD)
    assert black.shape == (1, 3, 4, 4)
    torch.testing.assert_close(black[0, :, 0, 0], torch.tensor([-2 / 3, -2.0, -7.0]))


def test_noise_scale_in_pixel_units_divides_by_each_channels_std():
    np.testing.assert_allclose(units.scale_values({"pixel": 0.2}, STD, 3), [2 / 3, 0.8, 2.0])
    np.testing.assert_allclose(units.scale_values(0.2, None, 3), [0.2] * 3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("grey", "must be 'black', 'white', 'mean'"),
        ({"pixel": 1.5}, r"v in \[0, 1\]"),
        ({"pixel": 0.1, "normalized": 0.0}, "one key, 'pixel' or 'normalized'"),
        (True, "must be a number"),
    ],
)
def test_bad_fill_values_are_refused(value, message):
    with pytest.raises(ValueError, match=message):
        units.check_fill(value)


def test_pixel_units_without_the_datasets_statistics_are_refused():
    with pytest.raises(ValueError, match="needs the dataset's channel mean and std"):
        units.fill_values("black", None, None, 3)
    method = METHODS.get("integrated_gradients")(
        nn.Sequential(nn.Flatten(), nn.Linear(C * H * W, K)),
        AttributionContext(seed=0, input_range=(-1.0, 1.0)),
        baseline="black",
    )
    with pytest.raises(MethodError, match="integrated_gradients: parameter 'baseline'"):
        method.attribute(torch.zeros(1, C, H, W), torch.zeros(1, dtype=torch.long), 0)


def test_descriptions_say_the_unit():
    assert units.describe_fill(0.0) == "0 in the normalized space"
    assert units.describe_fill("black") == "black (pixel value 0 in every channel)"
    assert units.describe_scale({"pixel": 0.2}) == "0.2 in pixel units"
    described = METHODS.get("noisy_baseline").parameter_units(
        METHODS.get("noisy_baseline").validate_params({"baseline": "black"})
    )
    assert described == {
        "noise_std": "0.2 in the normalized space",
        "baseline": "black (pixel value 0 in every channel)",
    }


def _config(**sections) -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text()) | sections


def test_config_names_the_key_and_the_accepted_forms():
    assert validate(_config(curves={"fill": "black"}))["curves"]["fill"] == "black"
    message = config_error(_config(curves={"fill": "grey"}))
    assert message.startswith("config key 'curves.fill': 'grey' is not valid; expected a")
    assert "black or white" in message and "road" in message
    assert validate(_config(curves={"fill": "road"}))["curves"]["fill"] == "road"
    message = config_error(_config(robustness={"infidelity": {"noise_std": {"pixel": 0}}}))
    assert "robustness.infidelity.noise_std" in message


# ----------------------------------------------------------------------------- consumers


@pytest.fixture(scope="module")
def linear() -> nn.Sequential:
    return linear_classifier()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(4, C, H, W, generator=torch.Generator().manual_seed(2))


def _weights(linear, targets):
    return linear[1].weight[targets].view(-1, C, H, W).detach()


@pytest.mark.parametrize("name", ["integrated_gradients", "deeplift"])
@pytest.mark.parametrize("baseline", ["black", "white", {"pixel": 0.5}])
def test_linear_model_gets_input_minus_the_converted_baseline(name, baseline, linear, images):
    targets = torch.tensor([0, 1, 2, 3])
    method = METHODS.get(name)(linear, CONTEXT, baseline=baseline)
    x0 = per_channel(units.fill_values(baseline, MEAN, STD, C))
    expected = (images - x0) * _weights(linear, targets)
    torch.testing.assert_close(method.attribute(images, targets, 0), expected, rtol=1e-4, atol=1e-5)


def test_occlusion_with_black_is_captums_occlusion_with_the_black_tensor(linear, images):
    targets = torch.tensor([0, 1, 2, 3])
    params = {"window_size": 3, "stride": 3, "baseline": "black"}
    ours = METHODS.get("occlusion")(linear, CONTEXT, **params).attribute(images, targets, 0)
    black = per_channel(units.fill_values("black", MEAN, STD, C)).expand(1, C, H, W)
    reference = Occlusion(linear).attribute(
        images, sliding_window_shapes=(C, 3, 3), strides=(C, 3, 3), baselines=black, target=targets
    )
    torch.testing.assert_close(ours.expand_as(reference), reference, rtol=1e-4, atol=1e-5)


def test_curves_fill_black_ends_at_the_logit_of_a_black_image(linear, images):
    targets = torch.tensor([0, 1, 2, 3])
    maps = torch.rand(4, H, W, generator=torch.Generator().manual_seed(3))
    black = normalized_fill("black", images, MEAN, STD)
    curves = perturbation_curves(linear, images, maps, targets, steps=4, fill_value=black)
    expected = linear(black.expand_as(images)).gather(1, targets[:, None]).squeeze(1)
    torch.testing.assert_close(curves[:, 0, -1], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(curves[:, 1, -1], expected, rtol=1e-5, atol=1e-5)


def test_clipped_noisy_baseline_stays_within_pixel_values(images):
    black = normalized_fill("black", images, MEAN, STD)
    scale = per_channel(units.scale_values({"pixel": 0.2}, STD, C))
    bounds = pixel_bounds(images, MEAN, STD)
    generator = torch.Generator().manual_seed(0)
    perturbation, noisy = noisy_baseline(scale, black, generator, bounds)(images)
    torch.testing.assert_close(perturbation, images - noisy)
    assert (noisy >= bounds[0]).all() and (noisy <= bounds[1]).all()
    # around black about half the draws are clipped to black itself
    at_black = (noisy == black.expand_as(noisy)).float().mean().item()
    assert 0.4 < at_black < 0.6
    unclipped = noisy_baseline(scale, black, torch.Generator().manual_seed(0))(images)[1]
    assert (unclipped < bounds[0]).float().mean().item() == pytest.approx(at_black, abs=0.01)


def test_noisy_baseline_method_with_clipped_pixel_noise_recovers_linear_weights(images):
    # Yeh et al.'s setting; a linear model's optimal explanation is its weights whatever
    # the distribution of the perturbations, clipped or not
    params = {"baseline": "black", "noise_std": {"pixel": 0.2}, "clip": True, "n_samples": 800}
    torch.manual_seed(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, K)).eval()
    context = AttributionContext(seed=0, input_range=(-3, 3), mean=MEAN[:1], std=STD[:1])
    method = METHODS.get("noisy_baseline")(model, context, **params)
    phi = method.attribute(images[:1, :1, :4, :4], torch.tensor([0]), 0)
    torch.testing.assert_close(phi.view(-1), model[1].weight[0].detach(), rtol=1e-3, atol=1e-3)
