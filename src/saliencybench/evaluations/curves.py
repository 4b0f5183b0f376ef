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

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

ORDERS = ("mif", "lif")


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


@torch.no_grad()
def perturbation_curves(
    model: nn.Module,
    inputs: Tensor,
    maps: Tensor,
    targets: Tensor,
    *,
    steps: int = 20,
    fill_value: float = 0.0,
    batch_size: int = 256,
    seed: int = 0,
) -> Tensor:
    """Logits of the target class along the MIF and LIF perturbation paths.

    Args:
        model: classifier in eval mode, on the device of ``inputs``.
        inputs: (N, C, H, W) normalized images.
        maps: (N, H, W) importance scores of the same images.
        targets: (N,) the class whose logit is recorded.
        steps: K; the curve has K+1 points at fractions k/K.
        fill_value: value of perturbed pixels in the normalized space (0 = training mean).
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
        batch = torch.where(perturbed, fill_value, inputs[image])
        logits = model(batch)
        flat_curves[start : start + len(copy)] = logits.gather(1, targets[image, None]).squeeze(1)
    return curves


def normalize_curves(curves: np.ndarray) -> np.ndarray:
    """Curves divided by their unperturbed value (point 0), image by image.

    An image whose unperturbed logit is not positive has no meaningful ratio (dividing
    would flip or blow up its curve): its normalized curve is NaN, and means skip it.
    """
    curves = np.asarray(curves, dtype=np.float64)
    base = curves[..., :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base > 0, curves / np.where(base > 0, base, 1.0), np.nan)


def fidelity_areas(curves: np.ndarray) -> np.ndarray:
    """Per-image fidelity A: ∫ LIF − ∫ MIF of the normalized curves over [0, 1], x100.

    Args:
        curves: (..., 2, K+1) raw logit curves (MIF first).
    """
    normalized = normalize_curves(curves)
    steps = normalized.shape[-1] - 1
    # Trapezoid rule on the even grid k / K.
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] = 0.5 / steps
    integrals = normalized @ weights
    return 100.0 * (integrals[..., 1] - integrals[..., 0])


@dataclass(frozen=True)
class Interval:
    """A mean with the half-width of its 95 % confidence interval."""

    mean: float
    half_width: float
    count: int


def mean_interval(values: np.ndarray, z: float = 1.959963984540054) -> Interval:
    """Mean and 95 % normal-approximation half-width ``z * sd / sqrt(n)`` over finite values.

    The normal approximation is what the FPA paper's "±" reports over thousands of images;
    it needs only the per-image areas that the curve stores keep.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Interval(math.nan, math.nan, 0)
    if len(values) == 1:
        return Interval(float(values[0]), math.nan, 1)
    return Interval(
        float(values.mean()), float(z * values.std(ddof=1) / math.sqrt(len(values))), len(values)
    )


# ----------------------------------------------------------------------- the curves stage

# The 2-D reductions a method is evaluated with when its store keeps the raw attributions
# (FPA paper, Sec. 3 and 4.3): gradient maps unsigned (|g|), and signed and unsigned after
# multiplying by the input (the "prime" estimators VG', SG'); squared and variance maps are
# already unsigned; every other method signed (its own sum) and unsigned.
SIGNED_AND_UNSIGNED: dict[str, tuple[str, ...]] = {
    "random": ("sum",),
    "sobel": ("sum",),
    "smoothgrad_sq": ("sum",),
    "vargrad": ("sum",),
    "saliency": ("abs", "input_sum", "input_abs"),
    "smoothgrad": ("abs", "input_sum", "input_abs"),
    "guided_backprop": ("abs", "input_sum", "input_abs"),
    "deconvolution": ("abs", "input_sum", "input_abs"),
}
DEFAULT_REDUCTIONS = ("sum", "abs")

# Column labels of the FPA paper's Table 1 by (method, reduction), in the paper's order.
FPA_ESTIMATORS: dict[tuple[str, str], str] = {
    ("random", "sum"): "Random",
    ("integrated_gradients", "sum"): "IG_sum",
    ("integrated_gradients", "abs"): "IG_abs",
    ("saliency", "abs"): "VG_abs",
    ("saliency", "input_sum"): "VG'_sum",
    ("input_x_gradient", "sum"): "VG'_sum",
    ("saliency", "input_abs"): "VG'_abs",
    ("input_x_gradient", "abs"): "VG'_abs",
    ("smoothgrad", "abs"): "SG_abs",
    ("smoothgrad", "input_sum"): "SG'_sum",
    ("smoothgrad", "input_abs"): "SG'_abs",
    ("smoothgrad_sq", "sum"): "SQ-SG_sum",
}


def curve_reductions(method: str, stored: str, has_raw: bool) -> list[str]:
    """Reductions to evaluate: the stored map's, plus the method's others when raw is kept."""
    if not has_raw:
        return [stored]
    wanted = SIGNED_AND_UNSIGNED.get(method, DEFAULT_REDUCTIONS)
    return [stored] + [name for name in wanted if name != stored]


CURVES_FORMAT = "saliencybench.curves/1"
FIDELITY_FORMAT = "saliencybench.fidelity/1"


def subset_indices(n: int, max_images: int | None, seed: int) -> np.ndarray:
    """A seeded, sorted subset of ``range(n)`` of size ``max_images`` (all when None)."""
    if max_images is None or max_images >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 2]).choice(n, size=max_images, replace=False))


def compute(
    data_path,
    checkpoint,
    sidecar_path,
    attribution_path,
    *,
    split: str,
    steps: int,
    fill_value: float,
    batch_size: int,
    max_images: int | None,
    seed: int,
    device: str,
    output,
) -> None:
    """MIF and LIF curves of one attribution store, for each of its reductions; write a store.

    The store holds ``logits`` (reduction, sample, order, fraction), the raw target logits;
    ``area`` (reduction, sample), the fidelity A of each image (NaN where the unperturbed
    logit is not positive); and ``example_scores`` (reduction, pixel), the first image's
    scores in LIF order. ``sample`` indexes the images of ``split`` used.
    """
    import logging
    import time

    import xarray as xr

    from saliencybench import store
    from saliencybench.methods import REDUCTIONS
    from saliencybench.pipeline import load_trained_model, software_versions
    from saliencybench.training import normalize, resolve_device

    log = logging.getLogger("saliencybench")
    target_device = resolve_device(device)
    dataset = store.read_dataset(data_path)
    attributions = store.read_attributions(attribution_path)
    if split not in attributions.splits:
        raise store.StoreError(
            f"{attribution_path}: no maps of the {split} split; curves need them "
            "(add the split to the method's 'splits')"
        )
    model, sidecar = load_trained_model(checkpoint, sidecar_path, target_device)
    if attributions.attrs.get("checkpoint_sha256") != sidecar.get("checkpoint_sha256"):
        raise store.StoreError(
            f"{attribution_path}: maps of another checkpoint than {checkpoint}; rerun attribute"
        )
    indices = subset_indices(len(dataset[split].labels), max_images, seed)
    inputs = normalize(dataset[split].images[indices], dataset.mean, dataset.std, target_device)
    part = attributions[split]
    targets = torch.as_tensor(part.targets[indices], device=target_device)
    stored = attributions.attrs["reduction"]
    method = attributions.attrs["method"]
    reductions = curve_reductions(method, stored, part.raw is not None)
    logits, areas, example_scores = [], [], []
    for reduction in reductions:
        started = time.perf_counter()
        if reduction == stored:
            maps = torch.as_tensor(part.maps[indices], device=target_device)
        else:
            raw = torch.as_tensor(part.raw[indices], device=target_device)
            maps = REDUCTIONS.get(reduction)(raw, inputs)
        curves = (
            perturbation_curves(
                model,
                inputs,
                maps,
                targets,
                steps=steps,
                fill_value=fill_value,
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
        attrs={
            "format": CURVES_FORMAT,
            "method": method,
            "name": attributions.attrs.get("name", method),
            "split": split,
            "steps": steps,
            "fill_value": fill_value,
            "seed": seed,
            "model": sidecar.get("model"),
            "recipe": sidecar.get("recipe"),
            "model_seed": sidecar.get("seed"),
            "checkpoint_sha256": sidecar.get("checkpoint_sha256"),
            "versions": software_versions(),
        },
    )
    store.write_xarray(result, output)


def estimator_label(method: str, name: str, reduction: str) -> str:
    """The FPA paper's name of an estimator, else ``{config name}_{reduction}``."""
    return FPA_ESTIMATORS.get((method, reduction)) or f"{name}_{reduction}"


def _estimator_rank(label: str) -> tuple[int, str]:
    order = list(dict.fromkeys(FPA_ESTIMATORS.values()))
    return (order.index(label), "") if label in order else (len(order), label)


def summarize(stores: dict[str, list]):
    """Fidelity A and mean normalized curves of every estimator, one row per recipe.

    Args:
        stores: curve stores by recipe name.

    Returns:
        ``xarray.Dataset`` with ``area`` and ``area_ci`` (95 % half-width, normal
        approximation) and ``images`` over (recipe, estimator), ``curve`` (mean normalized
        logit) over (recipe, estimator, order, fraction), and ``example_scores`` and
        ``example_curve`` (the first image) for the figure of one image's LIF curve.
        Estimators are in the column order of the FPA paper's Table 1, then by name.
    """
    import xarray as xr

    from saliencybench import store

    rows: dict[tuple[str, str], dict] = {}
    fractions = None
    for recipe, paths in stores.items():
        for path in paths:
            opened = store.read_xarray(path, CURVES_FORMAT, "curves store")
            fractions = opened["fraction"].values
            for reduction in opened["reduction"].values:
                part = opened.sel(reduction=reduction)
                label = estimator_label(opened.attrs["method"], opened.attrs["name"], reduction)
                normalized = normalize_curves(part["logits"].values)
                interval = mean_interval(part["area"].values)
                usable = np.isfinite(normalized).all(axis=(1, 2))
                curve = (
                    normalized[usable].mean(axis=0)
                    if usable.any()
                    else np.full(normalized.shape[1:], np.nan)
                )
                rows[(recipe, label)] = {
                    "area": interval.mean,
                    "area_ci": interval.half_width,
                    "images": interval.count,
                    "curve": curve,
                    "example_curve": normalized[0],
                    "example_scores": part["example_scores"].values,
                }
    if not rows:
        raise ValueError("no curve stores to summarize")
    recipes = list(stores)
    estimators = sorted({label for _, label in rows}, key=_estimator_rank)
    pixels = max(len(row["example_scores"]) for row in rows.values())
    shape = (len(recipes), len(estimators))
    variables = {
        "area": np.full(shape, np.nan),
        "area_ci": np.full(shape, np.nan),
        "images": np.zeros(shape, dtype=np.int64),
        "curve": np.full((*shape, len(ORDERS), len(fractions)), np.nan),
        "example_curve": np.full((*shape, len(ORDERS), len(fractions)), np.nan),
        "example_scores": np.full((*shape, pixels), np.nan),
    }
    for (recipe, label), row in rows.items():
        index = (recipes.index(recipe), estimators.index(label))
        for key, array in variables.items():
            value = row[key]
            if key == "example_scores":
                array[index][: len(value)] = value
            else:
                array[index] = value
    dims = ("recipe", "estimator")
    return xr.Dataset(
        {
            "area": (dims, variables["area"], {"long_name": "fidelity A (x100)"}),
            "area_ci": (dims, variables["area_ci"], {"long_name": "95 % CI half-width of A"}),
            "images": (dims, variables["images"]),
            "curve": ((*dims, "order", "fraction"), variables["curve"]),
            "example_curve": ((*dims, "order", "fraction"), variables["example_curve"]),
            "example_scores": ((*dims, "pixel"), variables["example_scores"]),
        },
        coords={
            "recipe": recipes,
            "estimator": estimators,
            "order": list(ORDERS),
            "fraction": fractions,
        },
        attrs={"format": FIDELITY_FORMAT, "interval": "normal approximation, 95 %"},
    )


def read_fidelity(path):
    """Open a fidelity summary (NetCDF written by ``store.write_netcdf``) into memory."""
    from saliencybench import store

    return store.read_netcdf(path, FIDELITY_FORMAT, "fidelity summary")
