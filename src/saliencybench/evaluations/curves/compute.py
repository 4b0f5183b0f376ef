"""Perturbation curves (MIF / LIF) and fidelity A (Brocki & Chung 2023, Sec. 3).

Pixels are perturbed most-important-first (MIF) or least-important-first (LIF): at step
``k = 0..K`` the first ``k/K`` share of pixels in that order (all channels) is set to a fill
value, and the logit of the explained class is recorded. For signed maps MIF runs from the
largest positive to the most negative score, LIF the reverse. Fidelity A is the area between
the LIF and the MIF curve of logits normalized by the unperturbed logit, x100.

All K+1 perturbed copies of a batch of images, for both orders, go through the model
together: masks are built by comparing each pixel's rank with the step's pixel count, never
by a Python loop over steps or images.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from saliencybench import store, units
from saliencybench.evaluations.curves.spec import CURVES_FORMAT, ORDERS, curve_reductions
from saliencybench.evaluations.curves.summary import fidelity_areas
from saliencybench.jobkit import load_run, provenance, read_maps
from saliencybench.masking import ROAD_NOISE, road_impute
from saliencybench.stats import mean_interval, subset_indices


def step_counts(steps: int, n_pixels: int, device=None) -> Tensor:
    """Pixels perturbed at each step ``k = 0..steps``: ``floor(k / steps * n_pixels + 0.5)``."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    fractions = torch.arange(steps + 1, dtype=torch.float64, device=device) / steps
    return torch.floor(fractions * n_pixels + 0.5).long().clamp(max=n_pixels)


def mif_ranks(maps: Tensor, generator: torch.Generator) -> Tensor:
    """Position of every pixel in the MIF order (0 = most important), ties in random order.

    Args:
        maps: (B, H, W) importance scores.
        generator: draws the tie-breaking key, on the maps' device.

    Returns:
        (B, H*W) int64 ranks, a permutation of ``0..H*W-1`` per image.
    """
    scores = maps.reshape(len(maps), -1)
    if not torch.isfinite(scores).all():
        raise ValueError("attribution maps contain NaN or infinite values")
    # Shuffle first, then a stable sort by score: equal scores keep their random order.
    shuffle = torch.rand(scores.shape, generator=generator, device=scores.device).argsort(dim=1)
    by_score = scores.gather(1, shuffle).argsort(dim=1, descending=True, stable=True)
    order = shuffle.gather(1, by_score)
    ranks = torch.empty_like(order)
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    ranks.scatter_(1, order, positions)
    return ranks


ROAD_DESCRIPTION = (
    f"road (noisy linear imputation, Rong et al. 2022; noise {ROAD_NOISE:g} in the "
    "normalized space)"
)


@torch.no_grad()
def perturbation_curves(
    model: nn.Module,
    inputs: Tensor,
    maps: Tensor,
    targets: Tensor,
    *,
    steps: int = 20,
    fill_value: float | Tensor | str = 0.0,
    batch_size: int = 256,
    seed: int = 0,
    road_noise: float = ROAD_NOISE,
) -> Tensor:
    """Logits of the target class along the MIF and LIF perturbation paths.

    Args:
        model: classifier in eval mode, on the device of ``inputs``.
        inputs: (N, C, H, W) normalized images.
        maps: (N, H, W) importance scores of the same images.
        targets: (N,) the class whose logit is recorded.
        steps: K; the curve has K+1 points at fractions k/K.
        fill_value: value of perturbed pixels in the normalized space (0 = training mean):
            a number, or one value per channel shaped like one input (1, C, H, W); or
            ``"road"``: each perturbed copy's removed pixels imputed from their neighbours
            (Rong et al. 2022), one sparse solve per batch of copies on the CPU.
        road_noise: standard deviation of the road fill's noise, in the normalized space.
        batch_size: perturbed images per forward pass.
        seed: seeds the tie-breaking among equal scores.

    Returns:
        (N, 2, K+1) float32 logits; index 0 of dim 1 is MIF, 1 is LIF; point 0 is the
        unperturbed image.
    """
    n, channels, height, width = inputs.shape
    if maps.shape != (n, height, width):
        raise ValueError(
            f"maps of shape {tuple(maps.shape)} do not match inputs {tuple(inputs.shape)}"
        )
    device = inputs.device
    n_pixels = height * width
    counts = step_counts(steps, n_pixels, device)
    n_points = len(ORDERS) * (steps + 1)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    ranks = mif_ranks(maps.to(device), generator)
    road = isinstance(fill_value, str)
    if road and fill_value != "road":
        raise ValueError(f"unknown fill {fill_value!r}: a value, or 'road'")
    # the road fill's noise: its own stream, so the ranks do not depend on the fill
    road_rng = np.random.default_rng([seed, 1])
    curves = torch.empty((n, len(ORDERS), steps + 1), dtype=torch.float32, device=device)
    flat_curves = curves.view(-1)
    # Every (image, order, step) triple is one perturbed copy; copies are built chunk by
    # chunk so memory stays at batch_size images whatever K is.
    total = n * n_points
    for start in range(0, total, batch_size):
        copy = torch.arange(start, min(start + batch_size, total), device=device)
        image = copy // n_points
        order = (copy % n_points) // (steps + 1)
        step = copy % (steps + 1)
        rank = ranks[image]
        # LIF ranks are MIF ranks reversed.
        rank = torch.where(order[:, None] == 1, n_pixels - 1 - rank, rank)
        perturbed = (rank < counts[step][:, None]).view(-1, 1, height, width)
        if road:
            imputed = road_impute(
                inputs[image].double().cpu().numpy(),
                perturbed[:, 0].cpu().numpy(),
                road_rng,
                road_noise,
            )
            batch = torch.as_tensor(imputed, dtype=inputs.dtype, device=device)
        else:
            batch = torch.where(perturbed, fill_value, inputs[image])
        logits = model(batch)
        flat_curves[start : start + len(copy)] = logits.gather(1, targets[image, None]).squeeze(1)
    return curves


# ----------------------------------------------------------------------- the curves job


def compute(
    data_path,
    checkpoint,
    sidecar_path,
    attribution_path,
    *,
    split: str,
    steps: int,
    fill_value: Any,
    batch_size: int,
    max_images: int | None,
    seed: int,
    device: str,
    chance_margin: float | None = None,
    output,
) -> None:
    """MIF and LIF curves of one attribution store, for each of its reductions; write a store.

    The store holds ``logits`` (reduction, sample, order, fraction), the raw target logits;
    ``area`` (reduction, sample), the fidelity A of each image (NaN where the unperturbed
    logit is not positive); and ``example_scores`` (reduction, pixel), the first image's
    scores in LIF order. ``sample`` indexes the images of ``split`` used. ``fill_value`` is
    the config's ``curves.fill`` (:mod:`saliencybench.units`). A model below chance +
    ``chance_margin`` test accuracy is refused (None: no check).
    """
    import xarray as xr

    from saliencybench.methods import REDUCTIONS, normalized_fill

    log = logging.getLogger("saliencybench")
    run = load_run(data_path, checkpoint, sidecar_path, device, chance_margin=chance_margin)
    attributions = read_maps(attribution_path, run, split, "the curves job")
    indices = subset_indices(len(run.dataset[split].labels), max_images, seed)
    inputs = run.inputs(split, indices)
    if fill_value == "road":
        fill = fill_value
    else:
        fill = normalized_fill(fill_value, inputs, run.dataset.mean, run.dataset.std)
    part = attributions[split]
    # The class each map explains, as the attribute job chose it.
    targets = torch.as_tensor(part.targets[indices], device=run.device)
    stored = attributions.attrs["reduction"]
    method = attributions.attrs["method"]
    reductions = curve_reductions(method, stored, part.raw is not None)
    logits, areas, example_scores = [], [], []
    for reduction in reductions:
        started = time.perf_counter()
        if reduction == stored:
            maps = torch.as_tensor(part.maps[indices], device=run.device)
        else:
            raw = torch.as_tensor(part.raw[indices], device=run.device)
            maps = REDUCTIONS.get(reduction)(raw, inputs)
        curves = (
            perturbation_curves(
                run.model,
                inputs,
                maps,
                targets,
                steps=steps,
                fill_value=fill,
                batch_size=batch_size,
                seed=seed,
            )
            .cpu()
            .numpy()
        )
        seconds = time.perf_counter() - started
        logits.append(curves)
        areas.append(fidelity_areas(curves))
        # The first image's scores in LIF order, for the figure that sets them beside its curve.
        example_scores.append(np.sort(maps[0].flatten().cpu().numpy()))
        interval = mean_interval(areas[-1])
        log.info(
            "%s (%s): A = %.1f ± %.1f over %d images; %d perturbed images in %.1fs (%.0f/s)",
            attributions.attrs.get("name", method),
            reduction,
            interval.mean,
            interval.half_width,
            interval.count,
            curves.size,
            seconds,
            curves.size / max(seconds, 1e-9),
        )
    fractions = np.arange(steps + 1) / steps
    result = xr.Dataset(
        {
            "logits": (("reduction", "sample", "order", "fraction"), np.stack(logits)),
            "area": (("reduction", "sample"), np.stack(areas)),
            "example_scores": (("reduction", "pixel"), np.stack(example_scores)),
        },
        coords={
            "reduction": list(reductions),
            "sample": indices,
            "order": list(ORDERS),
            "fraction": fractions,
        },
        attrs=provenance(
            run,
            format=CURVES_FORMAT,
            method=method,
            name=attributions.attrs.get("name", method),
            split=split,
            steps=steps,
            fill_value=fill_value,
            fill=ROAD_DESCRIPTION if fill_value == "road" else units.describe_fill(fill_value),
            seed=seed,
        ),
    )
    store.write_xarray(result, output)
