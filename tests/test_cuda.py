"""The evaluations on a CUDA device give the CPU's numbers, and training there is repeatable.

Skipped without CUDA (``benchmarks/gpu.sh`` runs them where a GPU is). Setting
``SALIENCYBENCH_TEST_DEVICE=cpu`` runs every comparison with the CPU on both sides, which
checks the tests themselves on a machine without a GPU.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from saliencybench.evaluations.curves.compute import perturbation_curves
from saliencybench.evaluations.hermitry.compute import EncodingCapture
from saliencybench.evaluations.randomization.compute import parameter_layers, randomization_test
from saliencybench.evaluations.robustness.compute import evaluate_method
from saliencybench.inference import resolve_device, seed_everything
from saliencybench.methods import METHODS, AttributionContext
from saliencybench.models import build_model
from saliencybench.training import Recipe, accuracy, train_model

_NAME = os.environ.get("SALIENCYBENCH_TEST_DEVICE", "cuda")
AVAILABLE = _NAME == "cpu" or torch.cuda.is_available()
# as the jobs resolve it: on CUDA, in full float32
DEVICE = resolve_device(_NAME) if AVAILABLE else torch.device(_NAME)

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs a CUDA device")


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model("small_cnn", in_channels=1, num_classes=10, image_size=16).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _on_device(model: nn.Module) -> nn.Module:
    copy = _model()
    copy.load_state_dict(model.state_dict())
    return copy.to(DEVICE)


@pytest.fixture(scope="module")
def problem():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(12, 1, 16, 16, generator=generator)
    model = _model()
    with torch.no_grad():
        targets = model(inputs).argmax(1)
    return model, inputs, targets


def test_curves_match_the_cpu(problem):
    model, inputs, targets = problem
    maps = torch.randn(12, 16, 16, generator=torch.Generator().manual_seed(1))
    kwargs = {"steps": 10, "batch_size": 50, "fill_value": -0.5}
    with torch.no_grad():
        cpu = perturbation_curves(model, inputs, maps, targets, **kwargs)
        device = perturbation_curves(
            _on_device(model), inputs.to(DEVICE), maps.to(DEVICE), targets.to(DEVICE), **kwargs
        )
    np.testing.assert_allclose(device.cpu().numpy(), cpu.numpy(), rtol=1e-4, atol=1e-4)


def test_exhaustive_infidelity_and_attribution_match_the_cpu(problem):
    """Every square once: no random draw, so the two devices must agree on the unsmoothed
    explanation. The smoothed one averages noise from the device's own generator (captum's
    NoiseTunnel draws on the input's device), which on CUDA is another stream than the
    CPU's: its numbers differ by the draw, not by the arithmetic."""
    model, inputs, targets = problem
    settings = {
        "scopes": ["global"],
        "baseline": 0.0,
        "infidelity": {
            "exhaustive": True,
            "square_side": [1, 2, 4],
            "normalize": True,
            "noise_std": 0.2,
            "n_samples": 1,
        },
        "sensitivity": {"radius": 0.02, "n_samples": 4},
        "smoothing": {"nt_samples": 4, "noise_level": 0.1, "nt_samples_batch_size": None},
        "batch_size": 16,
        "max_examples_per_batch": 512,
    }
    results = []
    for net, x, y in ((model, inputs, targets), (_on_device(model), *_to(inputs, targets))):
        context = AttributionContext(seed=0, input_range=(-3.0, 3.0))
        method = METHODS.get("integrated_gradients")(net, context, n_steps=16)
        results.append(
            evaluate_method(net, x, y, method, settings, seed=0, input_range=(-3.0, 3.0))
        )
    # infidelity is a mean of squared differences of nearly equal logits: float32 rounding
    # moves its smallest values by a share of their size, not of the largest
    cpu, device = results[0]["infidelity"], results[1]["infidelity"]
    np.testing.assert_allclose(device[0], cpu[0], rtol=1e-3, atol=1e-3 * np.abs(cpu[0]).max())
    assert np.isfinite(device[1]).all()


def _to(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(tensor.to(DEVICE) for tensor in tensors)


def test_randomization_matches_the_cpu(problem):
    """Re-initialized weights are drawn on the CPU, so both devices randomize alike."""
    model, inputs, targets = problem
    outcomes = []
    for net, x, y in ((model, inputs, targets), (_on_device(model), *_to(inputs, targets))):
        outcomes.append(
            randomization_test(
                net,
                x,
                y,
                method="saliency",
                params={},
                reduction=None,
                context=AttributionContext(seed=0, input_range=(-3.0, 3.0)),
                batch_size=8,
                layers=parameter_layers(net),
                seed=0,
                examples=2,
            )
        )
    cpu, device = outcomes
    np.testing.assert_allclose(
        device["example_maps"].values, cpu["example_maps"].values, rtol=1e-3, atol=1e-6
    )
    np.testing.assert_allclose(
        device["similarity"].values, cpu["similarity"].values, rtol=1e-3, atol=1e-3
    )


def test_captured_encodings_match_the_cpu(problem):
    model, inputs, _ = problem
    encodings = []
    for net, x in ((model, inputs), (_on_device(model), inputs.to(DEVICE))):
        capture = EncodingCapture(net)
        with torch.no_grad():
            capture(x)
        encodings.append(capture.take().cpu().numpy())
    np.testing.assert_allclose(encodings[1], encodings[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("architecture", ["small_cnn", "cifar_resnet18"])
def test_training_on_the_device_is_repeatable(architecture):
    """As the train job runs it (seed_everything first): the same seed, the same weights,
    also through the adaptive pooling whose CUDA backward adds with atomics."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(256, 3, 16, 16, generator=generator).to(DEVICE)
    labels = (images[:, 0, :8].mean((1, 2)) > 0).long()
    recipe = Recipe(epochs=2, batch_size=32, lr=0.05, augmentation={"name": "fpa", "p": 0.5})
    states = []
    for _ in range(2):
        seed_everything(0, DEVICE)
        model = build_model(architecture, in_channels=3, num_classes=2, image_size=16)
        model = model.to(DEVICE)
        train_model(model, images, labels, recipe, seed=3, log_every_epoch=lambda line: None)
        states.append({key: value.cpu() for key, value in model.state_dict().items()})
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), f"{key} differs between two runs"


def test_training_on_the_device_learns():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(512, 1, 8, 8, generator=generator)
    labels = (images[:, 0, :4].mean((1, 2)) > 0).long()  # the top half decides the class
    images, labels = images.to(DEVICE), labels.to(DEVICE)
    recipe = Recipe(epochs=6, batch_size=32, lr=0.05)
    seed_everything(0, DEVICE)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 2)
    ).to(DEVICE)
    train_model(model, images, labels, recipe, seed=3, log_every_epoch=lambda line: None)
    assert accuracy(model, images, labels) > 0.9


def test_the_device_runs_in_full_float32():
    if DEVICE.type != "cuda":
        pytest.skip("TF32 exists on CUDA only")
    assert not torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32
