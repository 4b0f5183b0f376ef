"""Benchmark of the hermitry ratio: batched distances and the cost of capturing queries.

1. Mahalanobis distances of M encodings to their classes' Gaussians: one matmul per class
   on the device (:func:`mahalanobis`) against a per-sample loop (``scipy.spatial.distance.
   mahalanobis``, one call per encoding). Prints both throughputs and the speed-up.
2. Capture overhead: the time of :func:`capture_method` (one image per method call, every
   query's encoding recorded, capped per image) over plain ``attribute_dataset`` with the
   attribute rule's batch size, and over plain attribution one image per call (the part of
   the overhead that is the per-image calls, not the recording). Ratios near 1 mean the
   recording costs nothing; LIME and Kernel SHAP explain one image per surrogate anyway.

Runs on CUDA when present, else on the CPU with ``--threads`` torch threads (1 by default:
on a shared machine more threads than free cores make small forward passes many times
slower and the ratios meaningless). The model has random weights and the images are noise,
the worst case of Anchor's search (no small anchor keeps the class, so every image spends
its query budget). Usage:
    python benchmarks/hermitry.py [--images N] [--encodings M] [--device D] [--threads T]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from saliencybench.evaluations.hermitry.compute import (  # noqa: E402
    capture_method,
    fit_classes,
    mahalanobis,
)
from saliencybench.inference import resolve_device  # noqa: E402
from saliencybench.methods import AttributionContext, attribute_dataset  # noqa: E402
from saliencybench.models import build_model  # noqa: E402

METHODS = {
    "occlusion": {"window_size": 2, "stride": 1},
    "lime": {"segmentation": "grid", "cell_size": 2, "n_samples": 100},
    "kernel_shap": {"segmentation": "grid", "cell_size": 2, "n_samples": 100},
    "anchor": {"segmentation": "grid", "cell_size": 2},
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def distances(encodings: int, features: int, classes: int, device: torch.device) -> None:
    from scipy.spatial.distance import mahalanobis as scipy_mahalanobis

    rng = np.random.default_rng(0)
    train = rng.normal(size=(classes * 200, features))
    labels = np.arange(len(train)) % classes
    fit = fit_classes(train, labels, list(range(classes)), "ledoit_wolf")
    queries = rng.normal(size=(encodings, features))
    query_classes = np.arange(encodings) % classes
    x = torch.as_tensor(queries, device=device)
    c = torch.as_tensor(query_classes, device=device)
    mahalanobis(x, c, fit)  # warm-up
    batched = timed(lambda: mahalanobis(x, c, fit), device)
    loop_rows = min(encodings, 5000)

    def loop() -> None:
        for row in range(loop_rows):
            k = query_classes[row]
            scipy_mahalanobis(queries[row], fit.means[k], fit.precisions[k])

    looped = timed(loop, device) * encodings / loop_rows
    print(
        f"distances of {encodings} encodings ({features} features, {classes} classes): "
        f"batched {encodings / batched:,.0f}/s, per-sample loop {encodings / looped:,.0f}/s, "
        f"speed-up {looped / batched:.0f}x"
    )


def capture_overhead(images: int, device: torch.device) -> None:
    model = build_model("small_cnn", in_channels=1, num_classes=10, image_size=16).to(device)
    model.eval()
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(images, 1, 16, 16, generator=generator).to(device)
    targets = torch.randint(0, 10, (images,), generator=generator).to(device)
    context = AttributionContext(seed=0, input_range=(-3.0, 3.0))
    print(f"capture overhead, small CNN, {images} images of 16 x 16 on {device}:")
    for method, params in METHODS.items():

        def plain(batch_size: int, method=method, params=params) -> None:
            attribute_dataset(
                model, inputs, targets, method, params, context=context, batch_size=batch_size
            )

        def captured(method=method, params=params) -> None:
            capture_method(
                model,
                inputs,
                targets,
                method=method,
                params=params,
                context=context,
                max_queries_per_image=100,
                seed=0,
            )

        batched = timed(lambda: plain(128), device)
        single = timed(lambda: plain(1), device)
        capture = timed(captured, device)
        print(
            f"  {method:12s} plain (batch 128) {batched:6.2f}s, plain (1 per call) "
            f"{single:6.2f}s, captured {capture:6.2f}s: captured / plain batched "
            f"{capture / batched:5.2f}, captured / plain 1 per call {capture / single:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--encodings", type=int, default=100_000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    distances(args.encodings, 84, 10, device)
    capture_overhead(args.images, device)


if __name__ == "__main__":
    main()
