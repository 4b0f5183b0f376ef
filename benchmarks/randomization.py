"""Benchmark of the randomization tests: maps per second against plain attribution.

For each model and method, times ``attribute_dataset`` over a batch of images (the maps of
the ``attribute`` rule) and ``randomization_test`` over the same images, which computes the
maps of the trained model, of every cascading and independent randomization and of a
second model (the data randomization test), compares them and switches layers between
trained and re-initialized weights. Prints both throughputs in maps per second and their
ratio (target: at least 0.8; the gap is the overhead of switching layers and of the
similarity metrics, which for the cheapest method, a plain gradient of a small CNN, cost
about as much as the maps themselves). Runs on CUDA when present, else on the CPU, where
only the small CNN is timed by default (the ResNet's 83 models of 64 images take about ten
minutes per method on two cores; ``--models small_cnn,cifar_resnet18`` runs it anyway).

Usage: python benchmarks/randomization.py [--images N] [--batch-size B] [--device D]
    [--models NAMES]
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from saliencybench.evaluations.randomization.compute import (  # noqa: E402
    parameter_layers,
    randomization_test,
)
from saliencybench.inference import resolve_device  # noqa: E402
from saliencybench.methods import AttributionContext, attribute_dataset  # noqa: E402
from saliencybench.models import build_model  # noqa: E402

TARGET = 0.8
METHODS = {
    "saliency": {},
    "integrated_gradients": {"n_steps": 16},
    "guided_backprop": {},
    "smoothgrad": {"nt_samples": 8},
}
# (architecture, channels, side, methods): the ResNet has 41 parameter layers, so its
# job evaluates 82 models; the cheap methods show the overhead there.
CASES = (
    ("small_cnn", 1, 16, tuple(METHODS)),
    ("cifar_resnet18", 3, 32, ("saliency", "guided_backprop")),
)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_maps(model, inputs, targets, method, params, context, batch_size) -> int:
    """The attribute rule's work: one map per image."""
    attribute_dataset(
        model, inputs, targets, method, params, context=context, batch_size=batch_size
    )
    return len(inputs)


def randomization_maps(model, other, layers, inputs, targets, method, params, context, batch_size):
    """The randomization job's work: maps of every randomized model, compared."""
    result = randomization_test(
        model,
        inputs,
        targets,
        method=method,
        params=params,
        reduction=None,
        context=context,
        batch_size=batch_size,
        layers=layers,
        seed=0,
        permuted_model=other,
    )
    return len(inputs) * int(result.attrs["models_evaluated"])


def maps_per_second(run, device: torch.device) -> float:
    """Maps per second of ``run()`` (which returns its map count), after a warm-up."""
    run()
    synchronize(device)
    started = time.perf_counter()
    maps = run()
    synchronize(device)
    return maps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", help="comma-separated; default: all on CUDA, small_cnn on CPU")
    args = parser.parse_args()
    device = resolve_device(args.device)
    default_models = [case[0] for case in CASES] if device.type == "cuda" else ["small_cnn"]
    models = args.models.split(",") if args.models else default_models
    print(f"device {device}, {args.images} images, batch {args.batch_size}")
    context = AttributionContext(seed=0, input_range=(-3.0, 3.0))
    for architecture, channels, size, methods in CASES:
        if architecture not in models:
            print(f"{architecture}: skipped (--models {','.join(models)})")
            continue
        torch.manual_seed(0)
        model, other = (
            build_model(architecture, in_channels=channels, num_classes=10, image_size=size)
            .to(device)
            .eval()
            for _ in range(2)
        )
        layers = parameter_layers(model)
        inputs = torch.randn(args.images, channels, size, size, device=device)
        targets = torch.randint(0, 10, (args.images,), device=device)
        print(f"{architecture} {channels}x{size}x{size}: {len(layers)} parameter layers")
        for method in methods:
            work = (inputs, targets, method, METHODS[method], context, args.batch_size)
            plain = maps_per_second(partial(plain_maps, model, *work), device)
            randomized = maps_per_second(
                partial(randomization_maps, model, other, layers, *work), device
            )
            ratio = randomized / plain
            print(
                f"  {method:22s} attribute {plain:9.0f} maps/s  randomization "
                f"{randomized:9.0f} maps/s  ratio {ratio:.2f}  "
                f"(ratio to {TARGET} target: {ratio / TARGET:.2f})"
            )


if __name__ == "__main__":
    main()
