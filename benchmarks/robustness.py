"""Benchmark of infidelity and max-sensitivity against captum's defaults and against Quantus.

On a small CNN (1 x 16 x 16, the default digits model) and the same images, with the
``robustness`` settings of ``config.yaml`` and the integrated-gradients parameters of its
``methods`` section, times:

- **max-sensitivity of integrated gradients** as the ``robustness_metrics`` rule computes it
  (the registry method's local explanation, perturbed copies sent through it
  ``max_examples_per_batch`` at a time), against a plain ``captum.metrics.sensitivity_max``
  call with captum's default batching (every perturbed copy of every image in one call of
  ``IntegratedGradients.attribute``), against captum's loop of one perturbation per call,
  and against Quantus' ``MaxSensitivity`` with the same explanation function; target: at
  least 5x faster than the plain captum call;
- **infidelity** of a fixed explanation under the project's two perturbations (square
  removal and the noisy baseline) against Quantus' ``Infidelity`` with its defaults
  (4-pixel patches). The two draw different perturbations, so the ratio is of perturbed
  inputs evaluated per second, counted by a hook on the model.

Every case sees the same model, images and explained classes; every ratio is a time of the
reference divided by ours (above 1: ours is faster). Runs on CUDA when present, else on the
CPU. Quantus is a test reference only (the ``dev`` extra); without it its rows are skipped.

Usage: python benchmarks/robustness.py [--images N] [--device D] [--skip-plain]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from saliencybench.config import validate  # noqa: E402
from saliencybench.evaluations.robustness.compute import (  # noqa: E402
    Explanation,
    _examples_per_batch,
    noisy_baseline,
    square_removal,
    uniform_box,
)
from saliencybench.evaluations.robustness.spec import sized_for_device  # noqa: E402
from saliencybench.inference import resolve_device  # noqa: E402
from saliencybench.methods import METHODS, AttributionContext, square_side  # noqa: E402
from saliencybench.models import build_model  # noqa: E402
from saliencybench.planning import method_params  # noqa: E402

TARGET = 5.0


class ForwardCounter:
    """Counts the inputs a model evaluates (a forward hook on its top module)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.rows = 0
        model.register_forward_hook(self._count)

    def _count(self, module, inputs, output) -> None:
        self.rows += len(inputs[0])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device: torch.device) -> tuple[float, object]:
    synchronize(device)
    started = time.perf_counter()
    result = function()
    synchronize(device)
    return time.perf_counter() - started, result


def configured_settings() -> tuple[dict, dict]:
    """The validated ``robustness`` section and IG parameters of the default config."""
    with open(ROOT / "config.yaml") as handle:
        config = validate(yaml.safe_load(handle))
    entry = config["methods"]["integrated_gradients"]
    return config["robustness"], method_params(entry)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--skip-plain",
        action="store_true",
        help="leave out captum's all-at-once call (it holds images x samples x steps rows)",
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    settings, ig_params = configured_settings()
    settings = sized_for_device(settings, device.type)
    sensitivity_cfg = settings["sensitivity"]
    infidelity_cfg = settings["infidelity"]
    samples = sensitivity_cfg["n_samples"]

    torch.manual_seed(0)
    model = build_model("small_cnn", in_channels=1, num_classes=10, image_size=16)
    model = model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    counter = ForwardCounter(model)
    inputs = torch.randn(args.images, 1, 16, 16, device=device)
    with torch.no_grad():
        targets = model(inputs).argmax(1)
    span = float(inputs.max() - inputs.min())
    radius = sensitivity_cfg["radius"] * span
    print(
        f"device {device}, small_cnn 1x16x16, {args.images} images; max-sensitivity: "
        f"{samples} samples, radius {radius:.3g}; IG n_steps {ig_params['n_steps']}"
    )

    # -- max-sensitivity of integrated gradients
    from captum.attr import IntegratedGradients
    from captum.metrics import infidelity, sensitivity_max

    context = AttributionContext(seed=0, input_range=(float(inputs.min()), float(inputs.max())))
    method = METHODS.get("integrated_gradients")(model, context, **ig_params)
    explanation = Explanation(method, "local", settings["baseline"], seed=0)
    generator = torch.Generator(device=device).manual_seed(0)
    ours_batch = _examples_per_batch(settings, args.images, sensitivity_cfg, method.rows_per_input)
    ours_time, _ = timed(
        lambda: sensitivity_max(
            explanation,
            inputs,
            perturb_func=uniform_box(radius, generator),
            n_perturb_samples=samples,
            max_examples_per_batch=ours_batch,
            target=targets,
        ),
        device,
    )
    rows = args.images * samples
    print(
        f"  ours (max_examples_per_batch {ours_batch}): {ours_time:8.2f} s  "
        f"{rows / ours_time:8.1f} perturbed maps/s"
    )

    captum_ig = IntegratedGradients(model, multiply_by_inputs=False)
    plain_kwargs = {
        "target": targets,
        "n_steps": ig_params["n_steps"],
        "method": ig_params["integration"],
    }
    references = {}
    if not args.skip_plain:
        references["captum, default batching (one call)"] = lambda: sensitivity_max(
            captum_ig.attribute,
            inputs,
            perturb_radius=radius,
            n_perturb_samples=samples,
            **plain_kwargs,
        )
    references["captum, one perturbation per call"] = lambda: sensitivity_max(
        captum_ig.attribute,
        inputs,
        perturb_radius=radius,
        n_perturb_samples=samples,
        max_examples_per_batch=args.images,
        **plain_kwargs,
    )
    quantus = _quantus()
    if quantus is not None:

        def explain(model, inputs, targets, **kwargs) -> np.ndarray:
            x = torch.as_tensor(inputs, device=device)
            y = torch.as_tensor(targets, device=device)
            return (
                captum_ig.attribute(
                    x, target=y, n_steps=ig_params["n_steps"], method=ig_params["integration"]
                )
                .cpu()
                .numpy()
            )

        metric = quantus.MaxSensitivity(
            nr_samples=samples,
            lower_bound=radius,
            disable_warnings=True,
            display_progressbar=False,
        )
        references["Quantus MaxSensitivity"] = lambda: metric(
            model=model,
            x_batch=inputs.cpu().numpy(),
            y_batch=targets.cpu().numpy(),
            a_batch=None,
            explain_func=explain,
            device=str(device),
            batch_size=args.images,
        )
    for name, call in references.items():
        seconds, _ = timed(call, device)
        verdict = ""
        if name.startswith("captum, default"):
            verdict = "  ok" if seconds / ours_time >= TARGET else f"  below target {TARGET:g}"
        print(
            f"  {name:38s} {seconds:8.2f} s  {rows / seconds:8.1f} perturbed maps/s  "
            f"ratio {seconds / ours_time:6.2f}{verdict}"
        )

    # -- infidelity of a fixed explanation
    attributions = method.attribute_local(inputs, targets, 0).expand_as(inputs).contiguous()
    side = square_side(infidelity_cfg["square_side"], 16, 16)
    print(f"infidelity: {infidelity_cfg['n_samples']} perturbations per image")
    perturbations = {
        "square removal": square_removal(side, settings["baseline"], generator),
        "noisy baseline": noisy_baseline(
            infidelity_cfg["noise_std"], settings["baseline"], generator
        ),
    }
    ours_rate = {}
    for name, perturb in perturbations.items():
        batch = _examples_per_batch(settings, args.images, infidelity_cfg)
        before = counter.rows
        with torch.no_grad():
            seconds, _ = timed(
                lambda perturb=perturb, batch=batch: infidelity(
                    model,
                    perturb,
                    inputs,
                    attributions,
                    target=targets,
                    n_perturb_samples=infidelity_cfg["n_samples"],
                    max_examples_per_batch=batch,
                    normalize=infidelity_cfg["normalize"],
                ),
                device,
            )
        ours_rate[name] = (counter.rows - before) / seconds
        print(f"  ours, {name:31s} {seconds:8.2f} s  {ours_rate[name]:8.1f} inputs/s")
    if quantus is not None:
        metric = quantus.Infidelity(disable_warnings=True, display_progressbar=False)
        before = counter.rows
        seconds, _ = timed(
            lambda: metric(
                model=model,
                x_batch=inputs.cpu().numpy(),
                y_batch=targets.cpu().numpy(),
                a_batch=attributions.cpu().numpy(),
                device=str(device),
                batch_size=args.images,
            ),
            device,
        )
        rate = (counter.rows - before) / seconds
        ratios = ", ".join(f"{name} {ours / rate:.1f}" for name, ours in ours_rate.items())
        print(f"  Quantus Infidelity (patches of 4)     {seconds:8.2f} s  {rate:8.1f} inputs/s")
        print(f"  ratio of inputs per second, ours / Quantus: {ratios}")


def _quantus():
    try:
        import quantus
    except ImportError:
        print("  (Quantus is not installed: its rows are skipped; pip install -e '.[dev]')")
        return None
    return quantus


if __name__ == "__main__":
    main()
