"""Benchmark of the perturbation curves: throughput against the model's bare forward pass.

For each model, times ``perturbation_curves`` on a batch of images (every image gives
2 x (K+1) perturbed copies) and a bare ``model(x)`` loop over the same number of images
at the same batch size on pre-built tensors, and prints both throughputs and their ratio
(target: at least 0.7). Runs on CUDA when present, else on the CPU.

Usage: python benchmarks/curves.py [--images N] [--steps K] [--batch-size B] [--device D]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from saliencybench.evaluations.curves.compute import perturbation_curves  # noqa: E402
from saliencybench.inference import resolve_device  # noqa: E402
from saliencybench.models import build_model  # noqa: E402

TARGET = 0.7
CASES = (("small_cnn", 1, 16), ("small_cnn", 3, 32), ("cifar_resnet18", 3, 32))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def bare_forward(model, inputs: torch.Tensor, total: int, batch_size: int, device) -> float:
    """Seconds for ``total`` images through ``model`` in batches of ``batch_size``."""
    repeats = -(-batch_size // len(inputs))
    pool = inputs.repeat(repeats, 1, 1, 1)[:batch_size]
    sizes = [min(batch_size, total - start) for start in range(0, total, batch_size)]
    synchronize(device)
    started = time.perf_counter()
    for size in sizes:
        model(pool[:size])
    synchronize(device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device {device}, {args.images} images, K = {args.steps}, batch {args.batch_size}")
    for architecture, channels, size in CASES:
        torch.manual_seed(0)
        model = (
            build_model(architecture, in_channels=channels, num_classes=10, image_size=size)
            .to(device)
            .eval()
        )
        inputs = torch.randn(args.images, channels, size, size, device=device)
        maps = torch.randn(args.images, size, size, device=device)
        targets = torch.randint(0, 10, (args.images,), device=device)
        copies = args.images * 2 * (args.steps + 1)
        # warm-up, then the better of two timings each
        perturbation_curves(model, inputs[:8], maps[:8], targets[:8], steps=2)
        bare_forward(model, inputs, args.batch_size, args.batch_size, device)
        curve_seconds = bare_seconds = float("inf")
        for _ in range(2):
            synchronize(device)
            started = time.perf_counter()
            perturbation_curves(
                model, inputs, maps, targets, steps=args.steps, batch_size=args.batch_size
            )
            synchronize(device)
            curve_seconds = min(curve_seconds, time.perf_counter() - started)
            bare_seconds = min(
                bare_seconds, bare_forward(model, inputs, copies, args.batch_size, device)
            )
        ratio = bare_seconds / curve_seconds
        print(
            f"{architecture:15s} {channels}x{size}x{size}  curves {copies / curve_seconds:9.0f} "
            f"images/s  forward {copies / bare_seconds:9.0f} images/s  ratio {ratio:.2f}  "
            f"(ratio to {TARGET} target: {ratio / TARGET:.2f})"
        )


if __name__ == "__main__":
    main()
