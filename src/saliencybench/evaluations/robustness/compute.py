"""Infidelity and max-sensitivity (Yeh et al. 2019) of one method and its SmoothGrad
variant on one model: the explanations, the perturbations and the metrics job."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from captum.attr import Attribution, NoiseTunnel
from captum.log import log_usage
from captum.metrics import infidelity, sensitivity_max
from torch import Tensor, nn

from saliencybench import units
from saliencybench.evaluations.robustness.spec import (
    PERTURBATION_OF_SCOPE,
    ROBUSTNESS_FORMAT,
    SMOOTHINGS,
    STORE_DIMS,
    UNSMOOTHED_METHODS,
    sized_for_device,
)
from saliencybench.inference import normalized_fill, normalized_scale, pixel_bounds
from saliencybench.methods import AttributionContext, Method, all_square_masks, square_sides

log = logging.getLogger("saliencybench")


def _seed_stream(seed: int) -> Callable[[], int]:
    """A deterministic sequence of batch seeds for the repeated calls of one explanation."""
    calls = 0

    def next_seed() -> int:
        nonlocal calls
        calls += 1
        return int(np.random.SeedSequence([seed, calls]).generate_state(1)[0] & 0x7FFFFFFF)

    return next_seed


def _spread_over_channels(attributions: Tensor, channels: int) -> Tensor:
    if attributions.shape[1] == channels:
        return attributions
    return attributions.expand(-1, channels, -1, -1) / channels


def has_scope(method: Method, scope: str) -> bool:
    """Whether ``method`` has an explanation in ``scope`` (every method has a global one)."""
    return scope == "global" or method.scope == "local" or _overrides_local(method)


def _overrides_local(method: Method) -> bool:
    return type(method).attribute_local is not Method.attribute_local


class Explanation:
    """The explanation function of one registry method in one scope, seeded per call.

    Args:
        method: a constructed registry method (model and parameters bound).
        scope: ``local`` or ``global``.
        baseline: x0 of the global explanation, in the normalized space (a number, or one
            value per channel shaped like one input).
        seed: seeds the batch seeds of successive calls.
    """

    def __init__(self, method: Method, scope: str, baseline: float | Tensor, seed: int) -> None:
        if not has_scope(method, scope):
            raise ValueError(f"{method.name} has no {scope} explanation")
        self.method = method
        self.scope = scope
        self.baseline = baseline
        self._next_seed = _seed_stream(seed)

    def __call__(self, inputs: Tensor | tuple[Tensor, ...], target: Tensor) -> Tensor | tuple:
        """Explanations of a batch; a 1-tuple for tuple inputs, as captum's metrics expect."""
        if isinstance(inputs, tuple):
            return (self(inputs[0], target),)
        x = inputs
        seed = self._next_seed()
        if self.scope == "global" and self.method.scope == "global":
            explanation = self.method.attribute(x, target, seed)
        else:
            explanation = self.method.attribute_local(x, target, seed)
            if self.scope == "global":
                explanation = _spread_over_channels(explanation, x.shape[1]) * (x - self.baseline)
        return _spread_over_channels(explanation, x.shape[1]).detach()


class _ExplanationAttribution(Attribution):
    """An :class:`Explanation` as a captum ``Attribution``, so ``NoiseTunnel`` can wrap it."""

    def __init__(self, model: nn.Module, explanation: Callable[..., Tensor]) -> None:
        super().__init__(model)
        self.explanation = explanation

    @log_usage()
    def attribute(self, inputs: Tensor, target: Tensor | None = None) -> Tensor:
        return self.explanation(inputs, target)


class SmoothedExplanation:
    """SmoothGrad of any explanation: its mean over noisy copies.

    Gaussian noise goes through captum's ``NoiseTunnel``; uniform noise in the L-infinity
    ball (Yeh et al.'s code, for their sensitivity table) is drawn here, in the same batches.

    Args:
        explanation: the explanation to smooth.
        model: the model it explains.
        nt_samples: noisy copies per image; stdev: their noise standard deviation, or with
            ``noise="uniform"`` the radius of the ball.
        nt_samples_batch_size: copies per image per call of the explanation; None = as
            many as ``row_budget`` allows.
        seed: seeds the noise of successive calls (NoiseTunnel draws from torch's global RNG).
        row_budget: rows per pass of the model that a call may send when
            ``nt_samples_batch_size`` is None (None = every copy at once).
        rows_per_input: rows the explanation sends per image (its method's ``rows_per_input``).
        noise: ``gaussian`` or ``uniform``.
    """

    def __init__(
        self,
        explanation: Explanation,
        model: nn.Module,
        *,
        nt_samples: int,
        stdev: float,
        nt_samples_batch_size: int | None,
        seed: int,
        row_budget: int | None = None,
        rows_per_input: int = 1,
        noise: str = "gaussian",
    ) -> None:
        if noise not in ("gaussian", "uniform"):
            raise ValueError(f"smoothing noise {noise!r}; expected 'gaussian' or 'uniform'")
        self.explanation = explanation
        self.noise = noise
        self._tunnel = NoiseTunnel(_ExplanationAttribution(model, explanation))
        self.nt_samples = nt_samples
        self.stdev = stdev
        self.nt_samples_batch_size = nt_samples_batch_size
        self.row_budget = row_budget
        self.rows_per_input = rows_per_input
        self._next_seed = _seed_stream(seed)

    def _copies_per_call(self, images: int) -> int | None:
        if self.nt_samples_batch_size is not None or self.row_budget is None:
            return self.nt_samples_batch_size
        # integrated gradients of 32 images and 10 copies is 16,000 rows in one pass, which
        # on a CPU runs at about two thirds of the speed per row of 1,600
        fitting = max(1, self.row_budget // (images * self.rows_per_input))
        return None if fitting >= self.nt_samples else fitting

    def __call__(self, inputs: Tensor | tuple[Tensor, ...], target: Tensor) -> Tensor | tuple:
        if isinstance(inputs, tuple):
            return (self(inputs[0], target),)
        x = inputs
        if self.noise == "uniform":
            return self._uniform(x, target)
        torch.manual_seed(self._next_seed())
        return self._tunnel.attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=self.nt_samples,
            nt_samples_batch_size=self._copies_per_call(len(x)),
            stdevs=self.stdev,
            target=target,
        ).detach()

    def _uniform(self, x: Tensor, target: Tensor) -> Tensor:
        """The mean explanation over copies x + u, u uniform in [-stdev, stdev] per value."""
        generator = torch.Generator(device=x.device).manual_seed(self._next_seed())
        per_call = self._copies_per_call(len(x)) or self.nt_samples
        total = None
        for start in range(0, self.nt_samples, per_call):
            copies = min(per_call, self.nt_samples - start)
            offsets = torch.rand((copies, *x.shape), generator=generator, device=x.device)
            noisy = (x[None] + (2.0 * offsets - 1.0) * self.stdev).reshape(-1, *x.shape[1:])
            explained = self.explanation(noisy, target.repeat(copies))
            part = explained.view(copies, len(x), *explained.shape[1:]).sum(0)
            total = part if total is None else total + part
        return (total / self.nt_samples).detach()


class _TimesInput:
    """A local explanation made global: multiplied by x - x0 (Yeh et al. 2019, Sec. 2.5)."""

    def __init__(self, local: Callable[..., Tensor], baseline: float | Tensor) -> None:
        self.local = local
        self.baseline = baseline

    def __call__(self, inputs: Tensor | tuple[Tensor, ...], target: Tensor) -> Tensor | tuple:
        if isinstance(inputs, tuple):
            return (self(inputs[0], target),)
        return self.local(inputs, target) * (inputs - self.baseline)


def _explanation(
    method: Method,
    scope: str,
    smoothed: str,
    model: nn.Module,
    smoothing: Mapping[str, Any],
    span: float,
    baseline: float | Tensor,
    seed: int,
    row_budget: int | None = None,
) -> Callable[..., Tensor]:
    """The explanation function evaluated for one scope and smoothing.

    The smoothed global explanation of a method with a local one is its smoothed local
    explanation times x - x0 (SmoothGrad of the gradient, then times the input), so that the
    noise does not enter the multiplication; global-only methods are smoothed as they are.
    """
    if smoothed == "none":
        return Explanation(method, scope, baseline, seed)
    inner_scope = "local" if has_scope(method, "local") else "global"
    smoothed_explanation = SmoothedExplanation(
        Explanation(method, inner_scope, baseline, seed),
        model,
        nt_samples=smoothing["nt_samples"],
        stdev=smoothing["noise_level"] * span,
        nt_samples_batch_size=smoothing["nt_samples_batch_size"],
        seed=seed,
        row_budget=row_budget,
        rows_per_input=method.rows_per_input,
        noise=smoothing.get("noise", "gaussian"),
    )
    if scope == "global" and inner_scope == "local":
        return _TimesInput(smoothed_explanation, baseline)
    return smoothed_explanation


# ----------------------------------------------------------------------- perturbations


def square_removal(
    sides: int | list[int], baseline: float | Tensor, generator: torch.Generator
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """Infidelity perturbation of global explanations: one uniform square per copy.

    With one side, its position is uniform; with several, every square of every side is
    equally likely (as in the exhaustive mode, :func:`every_square`).

    Returns:
        ``perturb(inputs) -> (I, x - I)`` for captum: I is the square's indicator (all
        channels), and the perturbed input has the square set to ``baseline``.
    """
    if isinstance(sides, list) and len(sides) > 1:
        return _square_table_removal(sides, baseline, generator)
    side = sides[0] if isinstance(sides, list) else sides

    def perturb(inputs: Tensor) -> tuple[Tensor, Tensor]:
        n, _, height, width = inputs.shape
        device = inputs.device
        tops = torch.randint(0, height - side + 1, (n,), generator=generator, device=device)
        lefts = torch.randint(0, width - side + 1, (n,), generator=generator, device=device)
        rows = torch.arange(height, device=device)
        cols = torch.arange(width, device=device)
        in_rows = (rows >= tops[:, None]) & (rows < tops[:, None] + side)
        in_cols = (cols >= lefts[:, None]) & (cols < lefts[:, None] + side)
        return _removed(in_rows[:, :, None] & in_cols[:, None, :], inputs, baseline)

    return perturb


def _removed(square: Tensor, inputs: Tensor, baseline: float | Tensor) -> tuple[Tensor, Tensor]:
    """``(I, x - I)`` of captum's infidelity for boolean (N, H, W) squares: the indicator
    in every channel, and the inputs with the square set to ``baseline``."""
    square = square[:, None]
    return square.expand_as(inputs).to(inputs.dtype), torch.where(square, baseline, inputs)


def _square_table_removal(
    sides: list[int], baseline: float | Tensor, generator: torch.Generator
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """Square removal with a square drawn uniformly from every square of every side."""
    tables: dict[tuple, Tensor] = {}

    def perturb(inputs: Tensor) -> tuple[Tensor, Tensor]:
        n, _, height, width = inputs.shape
        key = (height, width, str(inputs.device))
        if key not in tables:
            tables[key] = all_square_masks(height, width, sides, device=inputs.device).bool()
        masks = tables[key]
        chosen = torch.randint(0, len(masks), (n,), generator=generator, device=inputs.device)
        return _removed(masks[chosen], inputs, baseline)

    return perturb


def every_square(
    masks: Tensor, baseline: float | Tensor, images: int
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """Square removal with every square once per image, in order (Yeh et al.'s code):
    for captum's ``infidelity`` with ``n_perturb_samples = len(masks)``.

    Captum repeats each of the ``images`` inputs for the samples of one call, image by
    image, and calls in sample order; this counts the samples sent so far, so across calls
    image i meets square 0, 1, ..., P - 1 exactly once.

    Args:
        masks: (P, H, W) float, every square (:func:`saliencybench.methods.all_square_masks`).
        images: the number of images of the batch captum evaluates.
    """
    sent = 0

    def perturb(inputs: Tensor) -> tuple[Tensor, Tensor]:
        nonlocal sent
        samples = len(inputs) // images
        index = sent + torch.arange(samples, device=inputs.device).repeat(images)
        sent += samples
        return _removed(masks[index].bool(), inputs, baseline)

    return perturb


def noisy_baseline(
    noise_std: float | Tensor,
    baseline: float | Tensor,
    generator: torch.Generator,
    clip: tuple[Tensor, Tensor] | None = None,
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """Infidelity perturbation of local explanations: ``I = x - (x0 + e)``, e ~ N(0, std^2).

    Args:
        noise_std, baseline: in the normalized space, a number or one value per channel.
        clip: (low, high) per channel, (1, C, 1, 1): x0 + e is clipped to them.

    Returns:
        ``perturb(inputs) -> (I, x - I)``; the perturbed input is the noisy baseline itself.
    """

    def perturb(inputs: Tensor) -> tuple[Tensor, Tensor]:
        noise = torch.randn(inputs.shape, generator=generator, device=inputs.device)
        noisy = baseline + noise_std * noise
        if clip is not None:
            noisy = torch.clamp(noisy, *clip)
        return inputs - noisy, noisy

    return perturb


def uniform_box(radius: float, generator: torch.Generator) -> Callable[[Tensor], Tensor]:
    """Sensitivity perturbation: y uniform in the L-infinity box of ``radius`` around x."""

    def perturb(inputs: Tensor) -> Tensor:
        offset = torch.rand(inputs.shape, generator=generator, device=inputs.device)
        return inputs + (2.0 * offset - 1.0) * radius

    return perturb


# ----------------------------------------------------------------------- one method


def _examples_per_batch(
    settings: Mapping[str, Any], images: int, metric: Mapping, rows_per_example: int = 1
) -> int:
    """``max_examples_per_batch`` within the range captum accepts for this many images.

    ``rows_per_example`` is how many inputs one pass of the model sees per example sent to
    the explanation (``n_steps`` for integrated gradients, times ``nt_samples`` for a
    smoothed explanation): the budget ``max_examples_per_batch`` counts those rows, since
    a pass over tens of thousands of rows is several times slower per row on a CPU than
    one over a few thousand (captum's default sends every perturbed copy at once).
    """
    most = images * metric["n_samples"]
    return max(images, min(settings["max_examples_per_batch"] // rows_per_example, most))


def evaluate_method(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    method: Method,
    settings: Mapping[str, Any],
    *,
    seed: int,
    input_range: tuple[float, float],
    smoothings: Sequence[str] = SMOOTHINGS,
) -> dict[str, np.ndarray]:
    """Infidelity and max-sensitivity of one method, per image, scope and smoothing.

    Infidelity (Def. 2.1) is ``E_I[(I^T phi - (f(x) - f(x - I)))^2]`` and max-sensitivity
    (Def. 3.1) ``max_{|y - x| <= r} |phi(y) - phi(x)|``; both are Monte-Carlo estimates from
    ``captum.metrics.infidelity`` and ``captum.metrics.sensitivity_max``, with this project's
    perturbation functions and seeded generators. Following Sec. 2.5 of the paper, an
    explanation is evaluated in two scopes:

    - ``local`` (sensitivities, e.g. the gradient) under the **noisy baseline** perturbation
      ``I = x - (x0 + e)``, ``e ~ N(0, noise_std^2)``;
    - ``global`` (contributions, e.g. the gradient times ``x - x0``) under **square removal**:
      a uniformly placed square, all channels, set to ``x0``; then ``I`` is the square's
      indicator and ``I^T phi`` the attribution inside the square.

    A method's local explanation comes from ``Method.attribute_local``; its global one is its own
    attribution for global methods and the local one times ``x - x0`` otherwise. Channel-less
    attributions (N,1,H,W) are spread evenly over the channels, so that their channel sum is the
    pixel score. The ``smoothgrad`` variant (the paper's ``-SG``) averages an explanation over
    noisy copies of the input with captum's ``NoiseTunnel``.

    Sensitivity is captum's: the norm of the change divided by the norm of the explanation at
    ``x``, the largest over ``n_samples`` uniform draws in the L-infinity box of radius
    ``radius x (input range)``. Infidelity uses Yeh et al.'s beta scaling (``normalize``) by
    default, as the authors' code does: it measures the explanation's direction, not its scale.

    Args:
        model: classifier in eval mode, on the device of ``inputs``.
        inputs: (N, C, H, W) normalized images; targets: (N,) explained classes.
        method: the registry method, constructed on ``model``.
        settings: the ``robustness`` keys of ``spec.METRICS_KEYS`` (see the README); this
            reads all but ``split`` and ``max_images``.
        seed: seeds every Monte-Carlo draw.
        input_range: (min, max) of the normalized inputs; radius and noise are shares of it.
        smoothings: the entries of :data:`SMOOTHINGS` evaluated; each draws from its own
            seeded streams, so one job per smoothing gives the numbers of one job for all.

    Returns:
        ``infidelity`` and ``sensitivity``, float64 arrays (smoothing, scope, sample) over
        ``smoothings``, NaN where a method has no explanation in a scope or is not smoothed.
    """
    scopes = list(settings["scopes"])
    smoothing = settings["smoothing"]
    sensitivity_cfg = settings["sensitivity"]
    infidelity_cfg = settings["infidelity"]
    span = input_range[1] - input_range[0]
    mean, std = method.context.mean, method.context.std
    baseline = normalized_fill(settings["baseline"], inputs, mean, std)
    noise_std = normalized_scale(infidelity_cfg["noise_std"], inputs, std)
    # Yeh et al.'s code keeps the noisy baseline within pixel values [0, 1]
    clip = pixel_bounds(inputs, mean, std) if infidelity_cfg.get("clip", False) else None
    n, _, height, width = inputs.shape
    sides = square_sides(infidelity_cfg["square_side"], height, width)
    exhaustive = bool(infidelity_cfg.get("exhaustive", False))
    # every square of every side, each met once per image (Yeh et al.'s code)
    squares = all_square_masks(height, width, sides, device=inputs.device) if exhaustive else None
    unknown = sorted(set(smoothings) - set(SMOOTHINGS))
    if unknown:
        raise ValueError(f"smoothing {unknown[0]!r}; expected one of {', '.join(SMOOTHINGS)}")
    shape = (len(smoothings), len(scopes), n)
    results = {"infidelity": np.full(shape, np.nan), "sensitivity": np.full(shape, np.nan)}
    batch = settings["batch_size"]
    for row, smoothed in enumerate(smoothings):
        # the stream is seeded by the smoothing's place in SMOOTHINGS, not in this call's list
        s = SMOOTHINGS.index(smoothed)
        if smoothed == "smoothgrad" and method.name in UNSMOOTHED_METHODS:
            continue
        for k, scope in enumerate(scopes):
            if not has_scope(method, scope):
                continue
            stream = [seed, s, k]
            explanation = _explanation(
                method,
                scope,
                smoothed,
                model,
                smoothing,
                span,
                baseline,
                seed,
                row_budget=settings["max_examples_per_batch"],
            )
            generator = torch.Generator(device=inputs.device)
            generator.manual_seed(int(np.random.SeedSequence(stream).generate_state(1)[0]))
            infidelity_samples = infidelity_cfg["n_samples"]
            if scope == "global" and exhaustive:
                infidelity_samples = len(squares)
            elif scope == "global":
                perturb = square_removal(sides, baseline, generator)
            else:
                perturb = noisy_baseline(noise_std, baseline, generator, clip)
            box = uniform_box(sensitivity_cfg["radius"] * span, generator)
            rows_per_example = method.rows_per_input * (
                smoothing["nt_samples"] if smoothed == "smoothgrad" else 1
            )
            started = time.perf_counter()
            for start in range(0, n, batch):
                x = inputs[start : start + batch]
                target = targets[start : start + batch]
                attributions = explanation(x, target)
                if scope == "global" and exhaustive:
                    perturb = every_square(squares, baseline, len(x))
                infidelity_batch = _examples_per_batch(
                    settings, len(x), {"n_samples": infidelity_samples}
                )
                sensitivity_batch = _examples_per_batch(
                    settings, len(x), sensitivity_cfg, rows_per_example
                )
                with torch.no_grad():
                    infd = infidelity(
                        model,
                        perturb,
                        x,
                        attributions,
                        target=target,
                        n_perturb_samples=infidelity_samples,
                        max_examples_per_batch=infidelity_batch,
                        normalize=infidelity_cfg["normalize"],
                    )
                sens = sensitivity_max(
                    explanation,
                    x,
                    perturb_func=box,
                    n_perturb_samples=sensitivity_cfg["n_samples"],
                    max_examples_per_batch=sensitivity_batch,
                    target=target,
                )
                results["infidelity"][row, k, start : start + len(x)] = infd.cpu().double().numpy()
                results["sensitivity"][row, k, start : start + len(x)] = sens.cpu().double().numpy()
            log.info(
                "%s, %s scope, smoothing %s: INFD %.4g, SENS_MAX %.4g over %d images in %.1fs",
                method.name,
                scope,
                smoothed,
                np.nanmean(results["infidelity"][row, k]),
                np.nanmean(results["sensitivity"][row, k]),
                n,
                time.perf_counter() - started,
            )
    return results


# ----------------------------------------------------------------------- the stage


def compute(
    data_path,
    checkpoint,
    sidecar_path,
    *,
    method_name: str,
    method_entry: Mapping[str, Any],
    settings: Mapping[str, Any],
    smoothing: str | None = None,
    targets_path=None,
    seed: int,
    device: str,
    chance_margin: float | None = None,
    output,
) -> None:
    """Infidelity and max-sensitivity of one configured method on one model; write a store.

    Args:
        method_name, method_entry: the method's name and entry in ``methods``.
        smoothing: the one entry of :data:`SMOOTHINGS` evaluated; None: all of them.
        settings: the keys of the ``robustness`` section the job reads
            (``spec.METRICS_KEYS``), recorded in the store's attributes with the sizes
            resolved for the device (``spec.SIZES_PER_DEVICE``).
        targets_path: the method's attribution store, whose targets name the classes
            explained; None: the model's predictions.
        chance_margin: a model below chance + this test accuracy is refused; None: no check.

    The store holds ``infidelity`` and ``sensitivity`` over (smoothing, scope, sample).
    """
    smoothings = list(SMOOTHINGS) if smoothing is None else [smoothing]
    import xarray as xr

    from saliencybench import store
    from saliencybench.jobkit import (
        explained_classes,
        load_run,
        provenance,
        read_maps,
        resolve_method,
    )
    from saliencybench.methods import METHODS
    from saliencybench.stats import subset_indices

    choice = resolve_method(method_name, method_entry)
    run = load_run(data_path, checkpoint, sidecar_path, device, chance_margin=chance_margin)
    settings = sized_for_device(settings, run.device.type)
    model = run.model
    split = settings["split"]
    all_inputs = run.inputs(split)
    # radius and noise are shares of the range of this split's normalized images
    input_range = (float(all_inputs.min()), float(all_inputs.max()))
    indices = subset_indices(len(all_inputs), settings["max_images"], seed)
    inputs = all_inputs[torch.as_tensor(indices, device=run.device)]
    if targets_path is not None:
        maps = read_maps(targets_path, run, split, "the robustness job")
        targets = torch.as_tensor(maps[split].targets[indices], device=run.device)
    else:
        # without maps of the split, each image's explanation is for the predicted class
        labels = run.labels(split, indices)
        targets = explained_classes(run, inputs, labels, "predicted", settings["batch_size"])
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    context = AttributionContext(
        seed=seed,
        input_range=input_range,
        mean=tuple(run.dataset.mean),
        std=tuple(run.dataset.std),
    )
    method = METHODS.get(choice.registered)(model, context, **choice.params)
    log.info(
        "robustness of %s (%s), smoothing %s, on %d %s images of %s/%s",
        method_name,
        choice.registered,
        " and ".join(smoothings),
        len(inputs),
        split,
        run.sidecar.get("dataset"),
        run.sidecar.get("model"),
    )
    results = evaluate_method(
        model,
        inputs,
        targets,
        method,
        settings,
        seed=seed,
        input_range=input_range,
        smoothings=smoothings,
    )
    dataset_out = xr.Dataset(
        {name: (STORE_DIMS, values) for name, values in results.items()},
        coords={
            "smoothing": smoothings,
            "scope": list(settings["scopes"]),
            "sample": indices,
        },
        # the explanations are raw attributions: no reduction, so none is recorded
        attrs=provenance(
            run,
            format=ROBUSTNESS_FORMAT,
            method=choice.registered,
            name=method_name,
            method_scope=method.scope,
            parameters=choice.params,
            units={
                "baseline": units.describe_fill(settings["baseline"]),
                "noise_std": units.describe_scale(settings["infidelity"]["noise_std"]),
            },
            split=split,
            settings=dict(settings),
            perturbations={scope: PERTURBATION_OF_SCOPE[scope] for scope in settings["scopes"]},
            seed=seed,
        ),
    )
    store.write_xarray(dataset_out, output)
