"""Benchmark table: every evaluation stage beside its best peer and the model's ceiling.

On one model (default: the small CNN of the default digits experiment, 1 x 16 x 16, random
weights) and one set of seeded images (noise: throughput does not depend on the pixels),
times each stage as its workflow job runs it, with the settings of ``config.yaml``:

1. **attribution** with integrated gradients (``attribute_dataset``, the attribute rule)
   against captum's ``IntegratedGradients.attribute`` on the same batches of images, with
   its default ``internal_batch_size`` (every step of every image in one pass) and with the
   best of a few powers of two; images/s.
2. **perturbation curves** (``perturbation_curves``) against Quantus' ``PixelFlipping`` with
   the same number of steps K (the K nearest ``curves.steps`` that divides the pixel count,
   as Quantus needs) and the same fill. Ours sends MIF and LIF, 2 (K+1) copies per image,
   Quantus K: the rate is of perturbed inputs, counted by a forward hook on the model.
3. **infidelity** of integrated gradients under the job's square removal (global scope) and
   noisy baseline (local scope), as ``evaluate_method`` batches it, against
   ``captum.metrics.infidelity`` with its default batching (every copy of every image in
   one pass) and the best of a few ``max_examples_per_batch``, and against Quantus'
   ``Infidelity`` with its defaults; hook-counted perturbed inputs/s.
4. **max-sensitivity** of integrated gradients (the job's local explanation and batching)
   against ``captum.metrics.sensitivity_max`` of ``IntegratedGradients.attribute``, default
   and best ``max_examples_per_batch``, and Quantus' ``MaxSensitivity``; perturbed maps/s.
5. **model-parameter randomization** (``randomization_test``: cascading and independent
   re-initialization of every parameter layer, the data randomization test on a second
   model, three similarity metrics) of integrated gradients against Quantus' ``MPRT``
   (cascading from the top over the same five layers, captum's integrated gradients with the
   same steps); maps/s, each counting the maps it computes.
6. **ROAR retraining** (``train_model`` with the experiment's recipe, on as many images as
   the digits training split, for 5 epochs, ``--quick`` 2 on 320 images: the rate does not
   depend on the count) against a bare PyTorch loop on the same tensors
   (``benchmarks/roar.py``: ``torch.optim.SGD``, no schedule, no accounting); images/s.
7. **hermitry capture** (``capture_method`` of occlusion with its config parameters, many
   images per call as the capture job explains them, and the Mahalanobis distances of the
   captured encodings); no peer; queries/s; the ceiling runs forward passes of the mean
   number of rows of its passes.

The ceiling is the model's raw throughput at the batch size ours uses, on pre-built tensors:
forward only for the stages that only run the model (curves, infidelity, hermitry), forward
and backward (w.r.t. the inputs, parameters frozen as the package freezes them) for those
that explain (attribution, max-sensitivity, randomization: rows/s / n_steps), forward,
backward and an SGD step for retraining. Every figure is the better of two timings after a
warm-up, with ``torch.cuda.synchronize`` around them on CUDA. Quantus is a test reference
only (the ``dev`` extra): without it (or with ``--skip-quantus``) its columns say so.

Targets: on the CPU, ours/ceiling >= 0.7 and ours/peer >= 1 (peer: the best of the peers);
on CUDA, ours/Quantus >= 5 on the rows with a Quantus peer, the CPU targets on the others.
The CPU runs with ``--threads`` torch threads (1 by default, as the workflow jobs get one
thread each and the machine may be shared). Max-sensitivity and randomization use the
first images only (``--images`` / 16 and / 4; ``--randomization-images`` sets the
second): the first costs images x 50 samples x 50 steps gradient rows. The hermitry
capture takes all images (``--hermitry-images``), as its job captures hundreds. The
default run takes about 70 s on two CPU cores, ``--quick`` under 30 s; figures vary by
10-15 % from run to run on a shared machine.

Usage: python benchmarks/table.py [--device D] [--images N] [--batch-size B]
    [--architecture A] [--channels C] [--size S] [--quick] [--skip-quantus] [--threads T]
    [--csv PATH]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import yaml
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from saliencybench.config import validate  # noqa: E402
from saliencybench.evaluations.curves.compute import perturbation_curves  # noqa: E402
from saliencybench.evaluations.hermitry.compute import (  # noqa: E402
    CAPTURE_IMAGES_PER_CALL,
    capture_method,
    fit_classes,
    mahalanobis,
)
from saliencybench.evaluations.randomization.compute import (  # noqa: E402
    parameter_layers,
    randomization_test,
)
from saliencybench.evaluations.robustness.compute import (  # noqa: E402
    Explanation,
    _examples_per_batch,
    noisy_baseline,
    square_removal,
    uniform_box,
)
from saliencybench.evaluations.robustness.spec import sized_for_device  # noqa: E402
from saliencybench.inference import (  # noqa: E402
    normalized_fill,
    normalized_scale,
    resolve_device,
)
from saliencybench.methods import (  # noqa: E402
    METHODS,
    AttributionContext,
    attribute_dataset,
    square_sides,
)
from saliencybench.models import build_model, penultimate_encodings  # noqa: E402
from saliencybench.planning import method_params  # noqa: E402
from saliencybench.training import Recipe, train_model  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from roar import bare_training_loop  # noqa: E402

CEILING_TARGET = 0.7
PEER_TARGET = 1.0
QUANTUS_TARGET = 5.0
NUM_CLASSES = 10
DIGITS_TRAIN_IMAGES = 1347  # 1,797 digits x (1 - test_fraction 0.25), the ROAR training set
T = TypeVar("T")


# ----------------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_of(
    run: Callable[[], T], device: torch.device, *, repeats: int = 2, warm_up: bool = True
) -> tuple[float, T]:
    """The shortest of ``repeats`` timings of ``run()`` (after one untimed call), and the
    result of the last call."""
    if warm_up:
        run()
    best, result = math.inf, None
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        result = run()
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best, result


class RowCounter:
    """Counts the rows (and calls) a model evaluates, by a forward hook, while entered.

    The hook is removed on exit: models deep-copied later (randomization, Quantus' MPRT)
    must not carry it.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.rows = 0
        self.calls = 0

    def __enter__(self) -> RowCounter:
        self._handle = self.model.register_forward_hook(self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def _count(self, module: nn.Module, inputs: tuple, output: Tensor) -> None:
        self.rows += len(inputs[0])
        self.calls += 1

    def counted(self, run: Callable[[], object]) -> Callable[[], int]:
        """``run`` returning the rows it sent through the model."""

        def wrapped() -> int:
            self.rows = self.calls = 0
            run()
            return self.rows

        return wrapped


def powers_of_two(low: int, high: int, count: int) -> list[int]:
    """Up to ``count`` powers of two from the first >= ``low``, four times apart, < ``high``."""
    value = 1 << max(0, math.ceil(math.log2(max(1, low))))
    values = []
    while value < high and len(values) < count:
        values.append(value)
        value *= 4
    return values


# ----------------------------------------------------------------------- ceilings


def _pool(images: Tensor, rows: int) -> Tensor:
    """``rows`` inputs cycled from ``images``, contiguous."""
    repeats = -(-rows // len(images))
    return images.repeat(repeats, *([1] * (images.ndim - 1)))[:rows].contiguous()


def forward_ceiling(
    model: nn.Module, images: Tensor, rows_per_pass: int, passes: int, device: torch.device
) -> float:
    """Rows/s of bare ``model(x)`` passes of ``rows_per_pass`` rows."""
    pool = _pool(images, rows_per_pass)

    @torch.no_grad()
    def run() -> None:
        for _ in range(passes):
            model(pool)

    seconds, _ = best_of(run, device)
    return rows_per_pass * passes / seconds


def forward_backward_ceiling(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    rows_per_pass: int,
    passes: int,
    device: torch.device,
) -> float:
    """Rows/s of forward passes and gradients of the target logits w.r.t. the inputs: the
    work of one gradient row of captum's methods, without their bookkeeping."""
    pool = _pool(images, rows_per_pass).requires_grad_(True)
    classes = _pool(targets, rows_per_pass)[:, None]

    def run() -> None:
        for _ in range(passes):
            torch.autograd.grad(model(pool).gather(1, classes).sum(), pool)

    seconds, _ = best_of(run, device)
    return rows_per_pass * passes / seconds


def passes_for(total_rows: int, rows_per_pass: int, most: int = 8) -> int:
    """Passes of the ceiling: as many as ours makes, at most ``most`` (a rate, not a total)."""
    return max(1, min(most, -(-total_rows // rows_per_pass)))


# ----------------------------------------------------------------------- results


@dataclass
class Figure:
    """One throughput: ``rate`` in the stage's unit per second, or None with ``note``."""

    name: str
    rate: float | None
    note: str = ""
    quantus: bool = False


@dataclass
class Stage:
    name: str
    unit: str
    ours: Figure
    ceiling: Figure
    peers: list[Figure] = field(default_factory=list)
    settings: str = ""

    def best_peer(self) -> Figure | None:
        measured = [peer for peer in self.peers if peer.rate is not None]
        return max(measured, key=lambda peer: peer.rate) if measured else None

    def quantus(self) -> Figure | None:
        return next((peer for peer in self.peers if peer.quantus), None)


def ratio(ours: Figure, other: Figure | None) -> float | None:
    if other is None or other.rate is None or ours.rate is None:
        return None
    return ours.rate / other.rate


def verdict(stage: Stage, device: torch.device) -> str:
    """``ok`` or the targets missed (see the module docstring for which apply)."""
    quantus = stage.quantus()
    if device.type == "cuda" and quantus is not None:
        value = ratio(stage.ours, quantus)
        if value is None:
            return f"n/a (Quantus {quantus.note})"
        return "ok" if value >= QUANTUS_TARGET else f"MISS Quantus<{QUANTUS_TARGET:g}"
    missed = []
    to_ceiling = ratio(stage.ours, stage.ceiling)
    if to_ceiling is None or to_ceiling < CEILING_TARGET:
        missed.append(f"ceiling<{CEILING_TARGET:g}")
    to_peer = ratio(stage.ours, stage.best_peer())
    if to_peer is not None and to_peer < PEER_TARGET:
        missed.append(f"peer<{PEER_TARGET:g}")
    return "ok" if not missed else "MISS " + ", ".join(missed)


def rate_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def ratio_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


# ----------------------------------------------------------------------- the bench


@dataclass
class Bench:
    """What every stage shares: settings, the model, the images and their classes."""

    args: argparse.Namespace
    config: dict
    device: torch.device
    model: nn.Module
    images: Tensor
    targets: Tensor
    context: AttributionContext
    quantus: Any  # the module, or None
    quantus_note: str
    ig_params: dict
    attribute_batch: int
    ig_maps: Tensor | None = None

    @property
    def n_steps(self) -> int:
        return self.ig_params["n_steps"]

    def build(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return build_model(
            self.args.architecture,
            in_channels=self.args.channels,
            num_classes=NUM_CLASSES,
            image_size=self.args.size,
        ).to(self.device)

    def first(self, count: int) -> tuple[Tensor, Tensor]:
        count = max(1, min(count, len(self.images)))
        return self.images[:count], self.targets[:count]

    def numpy(self, tensor: Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    def peer(self, name: str, measure: Callable[[], float], quantus: bool = False) -> Figure:
        """A peer's figure; a peer that fails is reported, not fatal."""
        if quantus and self.quantus is None:
            return Figure(name, None, self.quantus_note, quantus=True)
        try:
            return Figure(name, measure(), quantus=quantus)
        except Exception as error:  # a reference's failure must not stop the table
            return Figure(name, None, f"error: {type(error).__name__}: {error}"[:120], quantus)


def _ig_explainer(model: nn.Module, params: dict, device: torch.device, local: bool = False):
    """Quantus' ``explain_func``: captum's integrated gradients with the job's parameters."""
    from captum.attr import IntegratedGradients

    def explain(model: nn.Module = model, inputs=None, targets=None, **kwargs) -> np.ndarray:
        x = torch.as_tensor(inputs, device=device)
        y = torch.as_tensor(targets, device=device)
        ig = IntegratedGradients(model, multiply_by_inputs=not local)
        attributions = ig.attribute(
            x, target=y, n_steps=params["n_steps"], method=params["integration"]
        )
        return attributions.detach().cpu().numpy()

    return explain


# ----------------------------------------------------------------------- stages


def attribution_stage(bench: Bench) -> Stage:
    from captum.attr import IntegratedGradients

    model, images, targets, device = bench.model, bench.images, bench.targets, bench.device
    entry = bench.config["methods"]["integrated_gradients"]
    batch, n_steps, n = bench.attribute_batch, bench.n_steps, len(images)

    def ours() -> np.ndarray:
        maps, _ = attribute_dataset(
            model,
            images,
            targets,
            "integrated_gradients",
            bench.ig_params,
            context=bench.context,
            batch_size=batch,
            keep_raw=bool(entry.get("store_raw")),
        )
        return maps

    seconds, maps = best_of(ours, device)
    bench.ig_maps = torch.as_tensor(maps, device=device)
    ig = IntegratedGradients(model)

    def captum(internal: int | None) -> float:
        def run() -> None:
            for start in range(0, n, batch):
                ig.attribute(
                    images[start : start + batch],
                    target=targets[start : start + batch],
                    n_steps=n_steps,
                    method=bench.ig_params["integration"],
                    internal_batch_size=internal,
                )

        seconds, _ = best_of(run, device, warm_up=internal is None)
        return n / seconds

    rows_per_call = min(n, batch) * n_steps
    peers = [bench.peer("captum IG, internal_batch_size None (default)", lambda: captum(None))]
    candidates = powers_of_two(max(256, min(n, batch)), rows_per_call, bench.args.candidates)
    best = max(
        (
            bench.peer(f"captum IG, internal_batch_size {c}", lambda c=c: captum(c))
            for c in candidates
        ),
        key=lambda figure: figure.rate or 0.0,
        default=None,
    )
    if best is not None:
        peers.append(best)
    ceiling = forward_backward_ceiling(
        model, images, targets, rows_per_call, passes_for(n * n_steps, rows_per_call), device
    )
    return Stage(
        "attribution (IG)",
        "images",
        Figure("attribute_dataset", n / seconds),
        Figure(f"fwd+bwd, {rows_per_call} rows/pass, / {n_steps} steps", ceiling / n_steps),
        peers,
        f"{n} images, batch {batch}, n_steps {n_steps}; "
        f"internal_batch_size tried: {', '.join(map(str, candidates)) or 'none'}",
    )


def matched_steps(steps: int, pixels: int) -> int:
    """The K nearest ``steps`` with ``pixels / K`` whole (Quantus' ``features_in_step``)."""
    divisors = [k for k in range(1, pixels + 1) if pixels % k == 0]
    return min(divisors, key=lambda k: (abs(k - steps), -k))


def curves_stage(bench: Bench) -> Stage:
    model, images, targets, device = bench.model, bench.images, bench.targets, bench.device
    settings = bench.config["curves"]
    batch = bench.args.batch_size or settings["batch_size"]
    _, _, height, width = images.shape
    pixels = height * width
    steps = matched_steps(settings["steps"], pixels)
    fill = normalized_fill(settings["fill"], images)
    maps = bench.ig_maps
    with RowCounter(model) as counter:
        run = counter.counted(
            lambda: perturbation_curves(
                model, images, maps, targets, steps=steps, fill_value=fill, batch_size=batch
            )
        )
        seconds, rows = best_of(run, device)
        ours = Figure("perturbation_curves", rows / seconds)

        def quantus() -> float:
            metric = bench.quantus.PixelFlipping(
                features_in_step=pixels // steps,
                perturb_baseline=float(fill) if isinstance(fill, float) else "mean",
                disable_warnings=True,
                display_progressbar=False,
            )
            call = counter.counted(
                lambda: metric(
                    model=model,
                    x_batch=bench.numpy(images),
                    y_batch=bench.numpy(targets),
                    a_batch=bench.numpy(maps)[:, None],
                    device=str(device),
                    batch_size=min(len(images), batch),
                )
            )
            seconds, rows = best_of(call, device)
            return rows / seconds

        peers = [bench.peer("Quantus PixelFlipping", quantus, quantus=True)]
    ceiling = forward_ceiling(model, images, batch, passes_for(rows, batch), device)
    return Stage(
        "perturbation curves",
        "perturbed inputs (hook)",
        ours,
        Figure(f"forward, {batch} rows/pass", ceiling),
        peers,
        f"{len(images)} images, K = {steps} (config {settings['steps']}; Quantus needs "
        f"{pixels} / K whole): ours MIF + LIF {2 * (steps + 1)} inputs/image, Quantus "
        f"{steps}; batch {batch}",
    )


def infidelity_stage(bench: Bench) -> Stage:
    from captum.metrics import infidelity

    model, images, targets, device = bench.model, bench.images, bench.targets, bench.device
    settings = sized_for_device(bench.config["robustness"], device.type)
    if bench.args.batch_size:
        settings["batch_size"] = bench.args.batch_size
    config = settings["infidelity"]
    samples, chunk, n = config["n_samples"], settings["batch_size"], len(images)
    _, _, height, width = images.shape
    baseline = normalized_fill(settings["baseline"], images)
    noise_std = normalized_scale(config["noise_std"], images)
    sides = square_sides(config["square_side"], height, width)
    method = METHODS.get("integrated_gradients")(model, bench.context, **bench.ig_params)
    # the explanations are the attribution stage's work, computed once outside the timings
    explained = {
        scope: torch.cat(
            [
                Explanation(method, scope, baseline, seed=0)(
                    images[start : start + chunk], targets[start : start + chunk]
                )
                for start in range(0, n, chunk)
            ]
        )
        for scope in ("global", "local")
    }

    def perturbations() -> dict[str, Callable]:
        generator = torch.Generator(device=device).manual_seed(0)
        return {
            "global": square_removal(sides, baseline, generator),
            "local": noisy_baseline(noise_std, baseline, generator),
        }

    def score(x, attributions, target, perturb, batch: int | None) -> Tensor:
        with torch.no_grad():
            return infidelity(
                model,
                perturb,
                x,
                attributions,
                target=target,
                n_perturb_samples=samples,
                max_examples_per_batch=batch,
                normalize=config["normalize"],
            )

    def ours() -> None:
        # evaluate_method's loop: chunks of batch_size images, its max_examples_per_batch
        for scope, perturb in perturbations().items():
            for start in range(0, n, chunk):
                x = images[start : start + chunk]
                batch = _examples_per_batch(settings, len(x), config)
                part = slice(start, start + chunk)
                score(x, explained[scope][part], targets[part], perturb, batch)

    def captum(batch: int | None, warm_up: bool) -> float:
        def run() -> None:
            for scope, perturb in perturbations().items():
                score(images, explained[scope], targets, perturb, batch)

        seconds, rows = best_of(counter.counted(run), device, warm_up=warm_up)
        return rows / seconds

    ours_batch = _examples_per_batch(settings, min(n, chunk), config)
    with RowCounter(model) as counter:
        seconds, rows = best_of(counter.counted(ours), device)
        ours_figure = Figure("captum.metrics.infidelity, job batching", rows / seconds)
        peers = [bench.peer("captum infidelity, default batching", lambda: captum(None, True))]
        candidates = powers_of_two(512, n * samples, bench.args.candidates)
        best = max(
            (
                bench.peer(
                    f"captum infidelity, max_examples_per_batch {c}", lambda c=c: captum(c, False)
                )
                for c in candidates
            ),
            key=lambda figure: figure.rate or 0.0,
            default=None,
        )
        if best is not None:
            peers.append(best)

        def quantus() -> float:
            metric = bench.quantus.Infidelity(disable_warnings=True, display_progressbar=False)
            call = counter.counted(
                lambda: metric(
                    model=model,
                    x_batch=bench.numpy(images),
                    y_batch=bench.numpy(targets),
                    a_batch=bench.numpy(explained["global"]),
                    device=str(device),
                    batch_size=n,
                )
            )
            seconds, rows = best_of(call, device)
            return rows / seconds

        peers.append(bench.peer("Quantus Infidelity (defaults)", quantus, quantus=True))
    ceiling = forward_ceiling(model, images, ours_batch, passes_for(rows, ours_batch), device)
    return Stage(
        "infidelity (IG)",
        "perturbed inputs (hook)",
        ours_figure,
        Figure(f"forward, {ours_batch} rows/pass", ceiling),
        peers,
        f"{n} images x {samples} samples x 2 perturbations (square removal, noisy baseline); "
        f"ours {chunk} images per call, max_examples_per_batch {ours_batch}; captum tried "
        f"{', '.join(map(str, candidates))}",
    )


def sensitivity_stage(bench: Bench) -> Stage:
    from captum.attr import IntegratedGradients
    from captum.metrics import sensitivity_max

    model, device = bench.model, bench.device
    images, targets = bench.first(bench.args.sensitivity_images)
    settings = sized_for_device(bench.config["robustness"], device.type)
    config = settings["sensitivity"]
    samples, chunk, n, n_steps = (
        config["n_samples"],
        settings["batch_size"],
        len(images),
        bench.n_steps,
    )
    baseline = normalized_fill(settings["baseline"], images)
    span = bench.context.input_range[1] - bench.context.input_range[0]
    radius = config["radius"] * span
    method = METHODS.get("integrated_gradients")(model, bench.context, **bench.ig_params)
    ours_batch = _examples_per_batch(settings, min(n, chunk), config, method.rows_per_input)

    def ours() -> None:
        # evaluate_method's call for the unsmoothed local explanation
        explanation = Explanation(method, "local", baseline, seed=0)
        box = uniform_box(radius, torch.Generator(device=device).manual_seed(0))
        for start in range(0, n, chunk):
            x = images[start : start + chunk]
            sensitivity_max(
                explanation,
                x,
                perturb_func=box,
                n_perturb_samples=samples,
                max_examples_per_batch=_examples_per_batch(
                    settings, len(x), config, method.rows_per_input
                ),
                target=targets[start : start + chunk],
            )

    maps = n * samples
    seconds, _ = best_of(ours, device)
    ig = IntegratedGradients(model, multiply_by_inputs=False)

    def captum(batch: int | None, warm_up: bool) -> float:
        def run() -> None:
            sensitivity_max(
                ig.attribute,
                images,
                perturb_radius=radius,
                n_perturb_samples=samples,
                max_examples_per_batch=batch,
                target=targets,
                n_steps=n_steps,
                method=bench.ig_params["integration"],
            )

        seconds, _ = best_of(run, device, warm_up=warm_up)
        return maps / seconds

    peers = [bench.peer("captum sensitivity_max, default batching", lambda: captum(None, True))]
    candidates = powers_of_two(n, n * samples, bench.args.candidates)
    best = max(
        (
            bench.peer(
                f"captum sensitivity_max, max_examples_per_batch {c}", lambda c=c: captum(c, False)
            )
            for c in candidates
        ),
        key=lambda figure: figure.rate or 0.0,
        default=None,
    )
    if best is not None:
        peers.append(best)

    def quantus() -> float:
        metric = bench.quantus.MaxSensitivity(
            nr_samples=samples,
            lower_bound=radius,
            disable_warnings=True,
            display_progressbar=False,
        )
        explain = _ig_explainer(model, bench.ig_params, device, local=True)
        seconds, _ = best_of(
            lambda: metric(
                model=model,
                x_batch=bench.numpy(images),
                y_batch=bench.numpy(targets),
                a_batch=None,
                explain_func=explain,
                device=str(device),
                batch_size=n,
            ),
            device,
        )
        return maps / seconds

    peers.append(bench.peer("Quantus MaxSensitivity", quantus, quantus=True))
    rows_per_pass = ours_batch * n_steps
    ceiling = forward_backward_ceiling(
        model,
        images,
        targets,
        rows_per_pass,
        passes_for(maps * n_steps, rows_per_pass),
        device,
    )
    return Stage(
        "max-sensitivity (IG)",
        "perturbed maps",
        Figure("captum.metrics.sensitivity_max, job batching", maps / seconds),
        Figure(f"fwd+bwd, {rows_per_pass} rows/pass, / {n_steps} steps", ceiling / n_steps),
        peers,
        f"first {n} images x {samples} samples, n_steps {n_steps}, radius {radius:.3g}; ours "
        f"max_examples_per_batch {ours_batch}; captum tried {', '.join(map(str, candidates))}",
    )


def randomization_stage(bench: Bench) -> Stage:
    model, device = bench.model, bench.device
    images, targets = bench.first(bench.args.randomization_images)
    settings = bench.config["randomization"]
    layers = parameter_layers(model, settings["layer_types"])
    permuted = bench.build(seed=1).eval()
    for parameter in permuted.parameters():
        parameter.requires_grad_(False)
    batch, n, n_steps = bench.attribute_batch, len(images), bench.n_steps

    def ours() -> int:
        result = randomization_test(
            model,
            images,
            targets,
            method="integrated_gradients",
            params=bench.ig_params,
            reduction=None,
            context=bench.context,
            batch_size=batch,
            layers=layers,
            seed=0,
            labels=targets,
            permuted_model=permuted if settings["data_randomization"] else None,
        )
        return n * int(result.attrs["models_evaluated"])

    seconds, maps = best_of(ours, device)

    def quantus() -> float:
        metric = bench.quantus.MPRT(
            layer_order="top_down", seed=0, disable_warnings=True, display_progressbar=False
        )
        explain = _ig_explainer(model, bench.ig_params, device)
        explained = [0]

        def counting(model: nn.Module, inputs, targets, **kwargs) -> np.ndarray:
            explained[0] += len(inputs)
            return explain(model, inputs, targets)

        def run() -> int:
            explained[0] = 0
            metric(
                model=model,
                x_batch=bench.numpy(images),
                y_batch=bench.numpy(targets),
                a_batch=None,
                explain_func=counting,
                device=str(device),
                batch_size=batch,
            )
            return explained[0]

        seconds, quantus_maps = best_of(run, device)
        return quantus_maps / seconds

    peers = [bench.peer("Quantus MPRT (top_down)", quantus, quantus=True)]
    rows_per_pass = min(n, batch) * n_steps
    ceiling = forward_backward_ceiling(
        model, images, targets, rows_per_pass, passes_for(maps * n_steps, rows_per_pass), device
    )
    return Stage(
        "randomization (IG)",
        "maps",
        Figure("randomization_test", maps / seconds),
        Figure(f"fwd+bwd, {rows_per_pass} rows/pass, / {n_steps} steps", ceiling / n_steps),
        peers,
        f"first {n} images, {len(layers)} layers ({', '.join(layers)}): ours {maps // n} "
        f"models (cascading, independent, data), Quantus 2 + {len(layers)} (original twice)",
    )


def retraining_stage(bench: Bench) -> Stage:
    device, args = bench.device, bench.args
    experiment = next(
        (e for e in bench.config["experiments"] if "roar" in e["evaluations"]),
        bench.config["experiments"][0],
    )
    entry = dict(bench.config["recipes"][experiment["recipes"][0]])
    if args.epochs:
        entry["epochs"] = args.epochs
    entry.update(args.recipe_options)
    recipe = Recipe.from_config(entry)
    generator = torch.Generator().manual_seed(2)
    shape = (args.train_images, args.channels, args.size, args.size)
    images = torch.randn(shape, generator=generator).to(device)
    labels = torch.randint(0, NUM_CLASSES, (args.train_images,), generator=generator).to(device)
    seen = recipe.epochs * len(images)

    def ours() -> None:
        train_model(bench.build(seed=0), images, labels, recipe, seed=0)

    def bare() -> None:
        # same model, tensors, batch size and optimizer
        bare_training_loop(bench.build(seed=0), images, labels, recipe)

    seconds, _ = best_of(ours, device)
    bare_seconds, _ = best_of(bare, device)
    # the ceiling: pre-sliced full batches, no permutation, no gather
    model = bench.build(seed=0).train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    loss_fn = nn.CrossEntropyLoss()
    size = min(recipe.batch_size, len(images))
    batches = [
        (images[start : start + size].contiguous(), labels[start : start + size].contiguous())
        for start in range(0, len(images) - size + 1, size)
    ]
    steps = min(len(batches) * recipe.epochs, 200)

    def ceiling() -> None:
        for step in range(steps):
            x, y = batches[step % len(batches)]
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    ceiling_seconds, _ = best_of(ceiling, device)
    return Stage(
        "ROAR retraining",
        "training images",
        Figure("train_model", seen / seconds),
        Figure(f"fwd+bwd+step, batch {size}", steps * size / ceiling_seconds),
        [Figure("bare PyTorch loop (roar.py)", seen / bare_seconds)],
        f"{len(images)} images x {recipe.epochs} epochs, batch {recipe.batch_size}, "
        f"schedule {recipe.schedule}"
        + "".join(f", {key} {value}" for key, value in args.recipe_options.items())
        + (" (ours only; the loop and the ceiling in float32)" if args.recipe_options else ""),
    )


def hermitry_stage(bench: Bench) -> Stage:
    model, device = bench.model, bench.device
    images, targets = bench.first(bench.args.hermitry_images)
    settings = bench.config["hermitry"]
    params = method_params(bench.config["methods"]["occlusion"])
    # class Gaussians of the encodings of all images, each image given a class in turn
    classes = np.arange(len(bench.images)) % NUM_CLASSES
    encodings = penultimate_encodings(model, bench.images).cpu().numpy()
    fit = fit_classes(encodings, classes, list(range(NUM_CLASSES)), settings["covariance"])
    owners_class = torch.as_tensor(classes[: len(images)], device=device)
    with RowCounter(model) as counter:

        def run() -> tuple[int, int]:
            counter.rows = counter.calls = 0
            captured, owner, _ = capture_method(
                model,
                images,
                targets,
                method="occlusion",
                params=params,
                context=bench.context,
                max_queries_per_image=settings["max_queries_per_image"],
                seed=0,
            )
            mahalanobis(captured, owners_class[torch.as_tensor(owner, device=device)], fit)
            return counter.rows, counter.calls

        seconds, (rows, calls) = best_of(run, device)
    rows_per_pass = max(1, round(rows / calls))
    ceiling = forward_ceiling(model, images, rows_per_pass, min(calls, 64), device)
    return Stage(
        "hermitry capture (occlusion)",
        "queries (hook)",
        Figure("capture_method + mahalanobis", rows / seconds),
        Figure(f"forward, {rows_per_pass} rows/pass", ceiling),
        [],
        f"first {len(images)} images, {CAPTURE_IMAGES_PER_CALL} per call as the job explains "
        f"them; occlusion "
        f"{params['window_size']}/{params['stride']}: {rows_per_pass} rows per pass",
    )


STAGES: dict[str, Callable[[Bench], Stage]] = {
    "attribution": attribution_stage,
    "curves": curves_stage,
    "infidelity": infidelity_stage,
    "sensitivity": sensitivity_stage,
    "randomization": randomization_stage,
    "retraining": retraining_stage,
    "hermitry": hermitry_stage,
}


# ----------------------------------------------------------------------- output

COLUMNS = (
    "stage",
    "unit /s",
    "ours",
    "best peer",
    "peer",
    "ceiling",
    "ours/peer",
    "ours/ceil",
    "ours/Quantus",
    "verdict",
)


def table_rows(stages: list[Stage], device: torch.device) -> list[list[str]]:
    rows = []
    for stage in stages:
        best = stage.best_peer()
        quantus = stage.quantus()
        if quantus is None:
            versus_quantus = "—"
        elif quantus.rate is None:
            versus_quantus = quantus.note.split(" (")[0].split(":")[0]  # the reason, short
        else:
            versus_quantus = ratio_text(ratio(stage.ours, quantus))
        rows.append(
            [
                stage.name,
                stage.unit,
                rate_text(stage.ours.rate),
                best.name if best else "—",
                rate_text(best.rate if best else None),
                rate_text(stage.ceiling.rate),
                ratio_text(ratio(stage.ours, best)),
                ratio_text(ratio(stage.ours, stage.ceiling)),
                versus_quantus,
                verdict(stage, device),
            ]
        )
    return rows


def print_details(stage: Stage) -> None:
    print(f"{stage.name}: {stage.settings}")
    figures = [("ours", stage.ours), *(("peer", peer) for peer in stage.peers)]
    figures.append(("ceiling", stage.ceiling))
    for kind, figure in figures:
        if figure.rate is None:
            print(f"  {kind:8s} {figure.name:52s} {figure.note}")
        else:
            print(f"  {kind:8s} {figure.name:52s} {rate_text(figure.rate):>12s} {stage.unit}/s")


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [list(COLUMNS), *rows]) for i in range(len(COLUMNS))]
    numeric = {2, 4, 5, 6, 7, 8}

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(cell).rjust(width) if i in numeric else str(cell).ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(list(COLUMNS)))
    print(line(["-" * width for width in widths]))
    for row in rows:
        print(line(row))


def write_csv(path: Path, stages: list[Stage], device: torch.device, header: dict) -> None:
    """One row per stage, with every peer's figure in ``peers`` and the run's settings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "stage",
                "unit",
                "ours",
                "best_peer",
                "peer",
                "ceiling",
                "ours_per_peer",
                "ours_per_ceiling",
                "ours_per_quantus",
                "verdict",
                "ceiling_kind",
                "peers",
                "settings",
                *header,
            ]
        )
        for stage in stages:
            best = stage.best_peer()
            quantus = stage.quantus()
            writer.writerow(
                [
                    stage.name,
                    f"{stage.unit}/s",
                    stage.ours.rate,
                    best.name if best else "",
                    best.rate if best else "",
                    stage.ceiling.rate,
                    ratio(stage.ours, best) or "",
                    ratio(stage.ours, stage.ceiling) or "",
                    (ratio(stage.ours, quantus) or quantus.note) if quantus else "",
                    verdict(stage, device),
                    stage.ceiling.name,
                    "; ".join(
                        f"{peer.name}={peer.rate if peer.rate is not None else peer.note}"
                        for peer in stage.peers
                    ),
                    stage.settings,
                    *header.values(),
                ]
            )


# ----------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, help="default 128 (--quick: 32)")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="images per call of the explaining stages and perturbed inputs per pass of the "
        "curves (default: config.yaml's attribution, robustness and curves batch sizes)",
    )
    parser.add_argument("--architecture", default="small_cnn")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="small sizes: under 2 minutes")
    parser.add_argument("--skip-quantus", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset")
    parser.add_argument("--csv", type=Path, help="also write the table here")
    parser.add_argument(
        "--randomization-images",
        type=int,
        help="images of the randomization stage (default: a quarter of --images, at least 4)",
    )
    parser.add_argument(
        "--hermitry-images",
        type=int,
        help="images of the hermitry stage (default: all of --images; the default config's "
        "hermitry job captures 200)",
    )
    parser.add_argument(
        "--recipe-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recipe key for the retraining stage, a YAML value (e.g. precision=bfloat16, "
        "channels_last=true); repeatable",
    )
    args = parser.parse_args()
    args.recipe_options = {}
    for option in args.recipe_option:
        key, separator, value = option.partition("=")
        if not separator:
            parser.error(f"--recipe-option takes KEY=VALUE, got {option!r}")
        args.recipe_options[key] = yaml.safe_load(value)
    if args.images is None:
        args.images = 32 if args.quick else 128
    # the stages whose work grows with images x samples x steps use the first images only
    args.sensitivity_images = max(2, args.images // 16)
    quarter = max(4, args.images // 4)
    if args.randomization_images is None:
        args.randomization_images = quarter
    if args.hermitry_images is None:
        args.hermitry_images = args.images
    args.train_images = 320 if args.quick else DIGITS_TRAIN_IMAGES
    args.epochs = 2 if args.quick else 5
    args.candidates = 2 if args.quick else 3
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; choose from {', '.join(STAGES)}")
    return args


def load_quantus(skip: bool) -> tuple[Any, str]:
    if skip:
        return None, "skipped (--skip-quantus)"
    try:
        import quantus
    except ImportError:
        return None, "not installed (pip install -e '.[dev]')"
    return quantus, ""


def main() -> None:
    started = time.perf_counter()
    args = parse_args()
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    with open(ROOT / "config.yaml") as handle:
        config = validate(yaml.safe_load(handle))
    quantus, quantus_note = load_quantus(args.skip_quantus)
    torch.manual_seed(0)
    model = build_model(
        args.architecture,
        in_channels=args.channels,
        num_classes=NUM_CLASSES,
        image_size=args.size,
    )
    model = model.to(device).eval()
    # frozen as attribute_dataset and the robustness job freeze them; the peers get the same
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.images, args.channels, args.size, args.size, generator=generator)
    images = images.to(device)
    with torch.no_grad():
        targets = model(images).argmax(1)  # attribution.target: predicted
    bench = Bench(
        args=args,
        config=config,
        device=device,
        model=model,
        images=images,
        targets=targets,
        context=AttributionContext(seed=0, input_range=(float(images.min()), float(images.max()))),
        quantus=quantus,
        quantus_note=quantus_note,
        ig_params=method_params(config["methods"]["integrated_gradients"]),
        attribute_batch=args.batch_size or config["attribution"]["batch_size"],
    )
    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    header = {
        "device": str(device),
        "model": f"{args.architecture} {args.channels}x{args.size}x{args.size}",
        "images": args.images,
        "threads": threads,
    }
    print(
        f"device {device} (threads {threads}), {header['model']}, {args.images} images, "
        f"Quantus {quantus.__version__ if quantus else quantus_note}"
    )
    stages = []
    selected = args.stages.split(",")
    if "curves" in selected and "attribution" not in selected:
        selected.insert(0, "attribution")  # the curves perturb by its maps
    for name in (name for name in STAGES if name in selected):
        stage_started = time.perf_counter()
        with warnings.catch_warnings():
            # captum's and Quantus' per-call warnings say nothing about throughput
            warnings.simplefilter("ignore")
            stage = STAGES[name](bench)
        stages.append(stage)
        print_details(stage)
        print(f"  ({time.perf_counter() - stage_started:.0f} s)", flush=True)
    print()
    targets_text = (
        f"ours/Quantus >= {QUANTUS_TARGET:g} (rows with Quantus), else the CPU targets"
        if device.type == "cuda"
        else f"ours/ceiling >= {CEILING_TARGET:g}, ours/peer >= {PEER_TARGET:g}"
    )
    print(f"throughput per second on {device}; targets: {targets_text}")
    print_table(table_rows(stages, device))
    print(f"wall time {time.perf_counter() - started:.0f} s")
    if args.csv:
        write_csv(args.csv, stages, device, header)
        print(f"written {args.csv}")


if __name__ == "__main__":
    main()
