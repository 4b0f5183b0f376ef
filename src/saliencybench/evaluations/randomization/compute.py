"""The model jobs of the randomization tests (Adebayo et al. 2018): layers re-initialized
cascading and independently, a model trained on permuted labels, their maps compared."""

from __future__ import annotations

import copy
import logging
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saliencybench import store
from saliencybench.evaluations.randomization.summary import (
    METRICS,
    MODES,
    RANDOMIZATION_FORMAT,
    SSIM,
)
from saliencybench.inference import accuracy as top1_accuracy
from saliencybench.jobkit import (
    dataset_input_range,
    explained_classes,
    load_run,
    provenance,
    resolve_method,
)
from saliencybench.registry import Registry, UnknownNameError
from saliencybench.stats import subset_indices

log = logging.getLogger("saliencybench")

SSIM_WINDOW = 7
# Streams of numpy generators seeded [seed, stream]: 2 is the image subset
# (saliencybench.stats, shared on purpose so the evaluations look at the same images),
# 4 the bootstrap of the summary.
LABEL_STREAM = 3


class RandomizationError(ValueError):
    """A model, layer choice or input the randomization tests cannot use; one line."""


# ----------------------------------------------------------------------- layers

LAYER_TYPES: Registry[tuple[type[nn.Module], ...]] = Registry("layer type")
"""Module classes that count as parameter layers, by the name used in config."""
LAYER_TYPES.register("conv")(
    (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
)
LAYER_TYPES.register("linear")((nn.Linear, nn.Bilinear))
LAYER_TYPES.register("norm")(
    (
        nn.modules.batchnorm._BatchNorm,
        nn.modules.instancenorm._InstanceNorm,
        nn.GroupNorm,
        nn.LayerNorm,
    )
)
DEFAULT_LAYER_TYPES = ("conv", "linear", "norm")


def parameter_layers(
    model: nn.Module, layer_types: Sequence[str] = DEFAULT_LAYER_TYPES
) -> list[str]:
    """Module paths of the parameter layers of ``model``, from the output towards the input.

    A parameter layer is a module of one of ``layer_types`` that holds parameters of its own
    (a normalization layer without affine parameters has none). The order is the module
    tree's, reversed; for the registered architectures the tree lists layers in the order
    the forward pass calls them (fx-traced models keep the call order as well).

    Args:
        model: the classifier.
        layer_types: names in :data:`LAYER_TYPES`.

    Returns:
        Module paths such as ``["fc3", "fc2", "fc1", "conv2", "conv1"]``.
    """
    try:
        classes = tuple(cls for name in layer_types for cls in LAYER_TYPES.get(name))
    except UnknownNameError as error:
        raise RandomizationError(str(error)) from None
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, classes) and next(module.parameters(recurse=False), None) is not None
    ]
    if not names:
        raise RandomizationError(
            f"the model has no parameter layer of the types {', '.join(layer_types)}"
        )
    return names[::-1]


def layer_seed(seed: int, layer: str) -> int:
    """The seed of one layer's re-initialization: depends on the job seed and the layer's
    name only, so a layer gets the same random weights in every mode and layer selection."""
    sequence = np.random.SeedSequence([int(seed), zlib.crc32(layer.encode())])
    return int(sequence.generate_state(1, np.uint64)[0] % 2**63)


def reinitialize_(module: nn.Module, seed: int) -> None:
    """Re-initialize one layer in place with its own ``reset_parameters``, seeded.

    The new values are drawn on the CPU from a forked global generator (``reset_parameters``
    draws from the global one), so they do not depend on the device and leave the caller's
    random state alone; then they are copied into the layer's tensors. Normalization layers
    reset deterministically (weight 1, bias 0, running statistics 0 and 1).
    """
    if not callable(getattr(module, "reset_parameters", None)):
        raise RandomizationError(f"{type(module).__name__} has no reset_parameters()")
    fresh = copy.deepcopy(module).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh.reset_parameters()
    module.load_state_dict(fresh.state_dict())


def randomized_copy(model: nn.Module, layers: Sequence[str], seed: int) -> nn.Module:
    """A deep copy of ``model`` with the named layers re-initialized (see :func:`reinitialize_`).

    The copy keeps the model's distinct, non-inplace activation modules (``copy.deepcopy``
    copies each module once), so modified-backprop methods stay exact on it.
    """
    copied = copy.deepcopy(model)
    modules = dict(copied.named_modules())
    for name in layers:
        if name not in modules:
            raise RandomizationError(f"the model has no module {name!r}")
        reinitialize_(modules[name], layer_seed(seed, name))
    return copied


RANDOMIZATION_MODES: Registry[Callable[[int], tuple[int, ...]]] = Registry("randomization mode")
"""Layer indices (0 = the output layer) that step ``j`` of a mode re-initializes."""
RANDOMIZATION_MODES.register("cascading")(lambda step: tuple(range(step + 1)))
RANDOMIZATION_MODES.register("independent")(lambda step: (step,))


class _SwitchableCopy:
    """One copy of a model whose layers are switched between trained and re-initialized.

    Switching writes only the layers that change, so all randomized models of a job cost
    one copy of the model instead of one per (mode, layer).
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], seed: int) -> None:
        self.model = copy.deepcopy(model)
        self.seed = seed
        self.modules = dict(self.model.named_modules())
        originals = dict(model.named_modules())
        # References to the trained tensors: load_state_dict copies their values back.
        self.trained = {name: originals[name].state_dict() for name in layers}
        self.randomized: set[str] = set()

    def select(self, names: Sequence[str]) -> nn.Module:
        """The copy with exactly ``names`` re-initialized and every other layer trained."""
        wanted = set(names)
        for name in self.randomized - wanted:
            self.modules[name].load_state_dict(self.trained[name])
        for name in sorted(wanted - self.randomized):
            reinitialize_(self.modules[name], layer_seed(self.seed, name))
        self.randomized = wanted
        return self.model


# ----------------------------------------------------------------------- similarity


def scale_unit(maps: np.ndarray) -> np.ndarray:
    """Each map min-max scaled to [0, 1]; a constant map becomes all zeros."""
    maps = np.asarray(maps, dtype=np.float64)
    low = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.0)


def ssim(
    first: np.ndarray,
    second: np.ndarray,
    *,
    data_range: float,
    win_size: int = SSIM_WINDOW,
) -> np.ndarray:
    """Mean SSIM of each pair of 2-D maps, batched; scikit-image's ``structural_similarity``.

    The same definition as ``skimage.metrics.structural_similarity(a, b,
    data_range=data_range, win_size=win_size)``: a uniform ``win_size`` window, sample
    covariance, K1 = 0.01, K2 = 0.03, averaged over the pixels whose window lies inside the
    image (scikit-image crops the filter radius). Maps smaller than the window use the
    largest odd window that fits.

    Args:
        first, second: (N, H, W) maps.
        data_range: max - min of the values the maps can take (1 for maps in [0, 1]).
        win_size: odd side of the window.

    Returns:
        (N,) float64.
    """
    a = torch.as_tensor(np.asarray(first), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(second), dtype=torch.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise RandomizationError(
            f"SSIM needs two (N, H, W) arrays of one shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    side = min(a.shape[-2:])
    win = min(win_size, side if side % 2 else side - 1)
    if win < 1 or win % 2 == 0:
        raise RandomizationError(f"SSIM window must be odd and >= 1, got {win}")
    # Valid-region box filter: the windows scikit-image keeps after cropping its border.
    stacked = torch.stack([a, b, a * a, b * b, a * b], dim=1)
    mean_a, mean_b, mean_aa, mean_bb, mean_ab = F.avg_pool2d(stacked, win, stride=1).unbind(1)
    cov_norm = win * win / (win * win - 1) if win > 1 else 1.0
    var_a = cov_norm * (mean_aa - mean_a * mean_a)
    var_b = cov_norm * (mean_bb - mean_b * mean_b)
    cov = cov_norm * (mean_ab - mean_a * mean_b)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / (
        (mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2)
    )
    return index.mean(dim=(-2, -1)).numpy()


def spearman(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of maps over their pixels (ties: mean rank).

    Args:
        first, second: (N, ...) arrays; everything after the first axis is one sample.

    Returns:
        (N,) float64; NaN where a map is constant (no ranking), as ``scipy.stats.spearmanr``.
    """
    from scipy.stats import rankdata

    a = rankdata(np.asarray(first, dtype=np.float64).reshape(len(first), -1), axis=1)
    b = rankdata(np.asarray(second, dtype=np.float64).reshape(len(second), -1), axis=1)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=1) / denominator, np.nan)


SIMILARITIES: Registry[Callable[[np.ndarray, np.ndarray], np.ndarray]] = Registry(
    "similarity metric"
)
"""Similarity of the original and the randomized maps, ``(N,H,W), (N,H,W) -> (N,)``."""


@SIMILARITIES.register(SSIM)
def ssim_unit(original: np.ndarray, randomized: np.ndarray) -> np.ndarray:
    """SSIM of the maps min-max scaled to [0, 1], data range 1."""
    return ssim(scale_unit(original), scale_unit(randomized), data_range=1.0)


@SIMILARITIES.register("spearman_abs")
def spearman_abs(original: np.ndarray, randomized: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of the absolute maps (Adebayo et al.: "with abs")."""
    return spearman(np.abs(original), np.abs(randomized))


@SIMILARITIES.register("spearman")
def spearman_signed(original: np.ndarray, randomized: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of the signed maps."""
    return spearman(original, randomized)


def similarities(original: np.ndarray, randomized: np.ndarray) -> np.ndarray:
    """Every metric of :data:`METRICS` per image: (N, len(METRICS)) float64."""
    return np.stack([SIMILARITIES.get(name)(original, randomized) for name in METRICS], axis=1)


# ----------------------------------------------------------------------- the test


def _accuracy(model: nn.Module, inputs: Tensor, labels: Tensor | None, batch_size: int) -> float:
    return float("nan") if labels is None else top1_accuracy(model, inputs, labels, batch_size)


def randomization_test(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    method: str,
    params: Mapping[str, Any] | None,
    reduction: str | None,
    context,
    batch_size: int,
    layers: Sequence[str],
    seed: int,
    labels: Tensor | None = None,
    permuted_model: nn.Module | None = None,
    examples: int = 3,
):
    """Maps of one method on the trained model and on every randomized model, compared.

    Args:
        model: the trained classifier in eval mode, on the device of ``inputs``.
        inputs: (N, C, H, W) normalized images.
        targets: (N,) the class each map explains, the same for every model.
        method, params, reduction: a registered method with its parameters and reduction.
        context: the :class:`~saliencybench.methods.AttributionContext` of every call, so that
            a stochastic method draws the same noise for the trained and the randomized model.
        batch_size: images per call of the method.
        layers: module paths from the output towards the input (:func:`parameter_layers`).
        seed: seeds the re-initializations.
        labels: (N,) true labels, to record the accuracy of each randomized model.
        permuted_model: a model trained on permuted labels: the data randomization test.
        examples: how many of the first images keep their maps for the figures.

    Returns:
        ``xarray.Dataset`` with ``similarity`` (sample, mode, layer, metric),
        ``accuracy`` (mode, layer), ``example_original`` (example, y, x), ``example_maps``
        (mode, layer, example, y, x) and, with ``permuted_model``, ``data_similarity``
        (sample, metric) and ``example_data_maps`` (example, y, x). ``sample`` is the
        position of the image in ``inputs``.
    """
    import xarray as xr

    from saliencybench.methods import attribute_dataset

    layers = list(layers)
    if not layers:
        raise RandomizationError("no layers to randomize")
    if examples < 1:
        raise RandomizationError(f"examples must be >= 1, got {examples}")
    examples = min(examples, len(inputs))

    def maps_of(network: nn.Module) -> np.ndarray:
        maps, _ = attribute_dataset(
            network,
            inputs,
            targets,
            method,
            dict(params or {}),
            context=context,
            batch_size=batch_size,
            reduction=reduction,
        )
        return maps

    started = time.perf_counter()
    original = maps_of(model)
    n, height, width = original.shape
    similarity = np.empty((n, len(MODES), len(layers), len(METRICS)))
    accuracy = np.empty((len(MODES), len(layers)))
    example_maps = np.empty((len(MODES), len(layers), examples, height, width), np.float32)
    switchable = _SwitchableCopy(model, layers, seed)
    # The first cascading step is the first independent one: evaluate each distinct
    # randomized model once.
    done: dict[frozenset[str], tuple[np.ndarray, float, np.ndarray]] = {}
    evaluated = 1
    for m, mode in enumerate(MODES):
        select = RANDOMIZATION_MODES.get(mode)
        for j, layer in enumerate(layers):
            chosen = [layers[index] for index in select(j)]
            key = frozenset(chosen)
            if key not in done:
                randomized = switchable.select(chosen)
                maps = maps_of(randomized)
                done[key] = (
                    similarities(original, maps),
                    _accuracy(randomized, inputs, labels, batch_size),
                    maps[:examples],
                )
                evaluated += 1
            similarity[:, m, j], accuracy[m, j], example_maps[m, j] = done[key]
            log.info(
                "%s %s %s: SSIM %.4f, Spearman |m| %.4f, m %.4f (mean of %d images)",
                method,
                mode,
                layer,
                *np.nanmean(similarity[:, m, j], axis=0),
                n,
            )
    variables = {
        "similarity": (("sample", "mode", "layer", "metric"), similarity),
        "accuracy": (("mode", "layer"), accuracy),
        "example_original": (("example", "y", "x"), original[:examples]),
        "example_maps": (("mode", "layer", "example", "y", "x"), example_maps),
    }
    if permuted_model is not None:
        data_maps = maps_of(permuted_model)
        evaluated += 1
        variables["data_similarity"] = (("sample", "metric"), similarities(original, data_maps))
        variables["example_data_maps"] = (("example", "y", "x"), data_maps[:examples])
        log.info(
            "%s data randomization: SSIM %.4f, Spearman |m| %.4f, m %.4f",
            method,
            *np.nanmean(variables["data_similarity"][1], axis=0),
        )
    seconds = time.perf_counter() - started
    log.info(
        "%s: %d models x %d images = %d maps in %.1fs (%.1f maps/s)",
        method,
        evaluated,
        n,
        evaluated * n,
        seconds,
        evaluated * n / max(seconds, 1e-9),
    )
    return xr.Dataset(
        variables,
        coords={
            "sample": np.arange(n),
            "mode": list(MODES),
            "layer": layers,
            "metric": list(METRICS),
            "example": np.arange(examples),
        },
        attrs={
            "original_accuracy": _accuracy(model, inputs, labels, batch_size),
            "data_accuracy": (
                _accuracy(permuted_model, inputs, labels, batch_size)
                if permuted_model is not None
                else float("nan")
            ),
            "models_evaluated": evaluated,
            "seconds": seconds,
        },
    )


def compute(
    data_path: str | Path,
    checkpoint: str | Path,
    sidecar_path: str | Path,
    *,
    method_name: str,
    method_entry: Mapping[str, Any],
    permuted_checkpoint: str | Path | None,
    permuted_sidecar: str | Path | None,
    split: str,
    max_images: int | None,
    layer_types: Sequence[str],
    examples: int,
    target_rule: str,
    batch_size: int,
    seed: int,
    device: str,
    chance_margin: float | None = None,
    output: str | Path,
) -> None:
    """Run the randomization tests of one method on one model and write the store.

    Args:
        method_name: the method's name in config; method_entry: its config entry.
        permuted_checkpoint, permuted_sidecar: the model trained on permuted labels
            (:func:`train_permuted_labels`), or None to skip the data randomization test.
        split: the images tested; max_images: a seeded subset of them (None = all).
        layer_types: names in :data:`LAYER_TYPES`.
        examples: images whose maps are kept for the figures.
        target_rule: ``predicted`` (the trained model's class) or ``label``; the same
            target is explained on every randomized model.
        batch_size: images per call of the method.
        seed: seeds the subset, the re-initializations and the method's randomness.
        chance_margin: the trained model below chance + this test accuracy is refused (None:
            no check); the permuted-label model, meant to be at chance, is exempt.
        output: the ``.zarr`` store to write: :func:`randomization_test`'s Dataset with
            ``sample`` holding indices into the split, and ``targets`` (sample).
    """
    from saliencybench.methods import AttributionContext

    method = resolve_method(method_name, method_entry)
    run = load_run(data_path, checkpoint, sidecar_path, device, chance_margin=chance_margin)
    permuted_model, permuted = None, {}
    if permuted_checkpoint is not None:
        permuted_model, permuted = run.load_beside(permuted_checkpoint, permuted_sidecar)
    layers = parameter_layers(run.model, layer_types)
    indices = subset_indices(len(run.dataset[split].labels), max_images, seed)
    inputs = run.inputs(split, indices)
    labels = run.labels(split, indices)
    targets = explained_classes(run, inputs, labels, target_rule, batch_size)
    log.info(
        "%s on %d %s images of %s: %d layers (%s), from the output: %s",
        method_name,
        len(indices),
        split,
        run.dataset.attrs.get("name", data_path),
        len(layers),
        ", ".join(layer_types),
        ", ".join(layers),
    )
    result = randomization_test(
        run.model,
        inputs,
        targets,
        method=method.registered,
        params=method.params,
        reduction=method.reduction,
        # Both whole splits, not the subset: baselines and noise do not depend on max_images.
        context=AttributionContext(
            seed=seed,
            input_range=dataset_input_range(run.dataset),
            mean=tuple(run.dataset.mean),
            std=tuple(run.dataset.std),
        ),
        batch_size=batch_size,
        layers=layers,
        seed=seed,
        labels=labels,
        permuted_model=permuted_model,
        examples=examples,
    )
    result = result.assign_coords(sample=indices)
    result["targets"] = ("sample", targets.cpu().numpy().astype(np.int64))
    result["example_images"] = (
        ("example", "channel", "y", "x"),
        run.dataset[split].images[indices[: len(result["example"])]],
    )
    result.attrs.update(
        {
            "format": RANDOMIZATION_FORMAT,
            **method.attrs(),
            **provenance(
                run,
                split=split,
                seed=seed,
                target_rule=target_rule,
                layer_types=list(layer_types),
                permuted_checkpoint_sha256=permuted.get("checkpoint_sha256"),
            ),
        }
    )
    store.write_xarray(result, output)


# ----------------------------------------------------------------------- data randomization


def permute_labels(labels: np.ndarray, seed: int) -> np.ndarray:
    """The training labels in a seeded random order (Adebayo et al. 2018, Sec. 3.2)."""
    return np.random.default_rng([int(seed), LABEL_STREAM]).permutation(np.asarray(labels))


def train_permuted_labels(
    data_path: str | Path,
    *,
    seed: int,
    **train_settings: Any,
) -> dict[str, Any]:
    """Train the model of the data randomization test and write its checkpoint and sidecar.

    The architecture, recipe and seed (hence the initial weights and batch order) of the
    original model, trained on the training images with their labels permuted by ``seed``.
    The sidecar records the share of labels changed and the accuracy on the permuted
    training labels (how far the model memorized them); test accuracy is against the true
    labels.

    Args:
        train_settings: the other keyword arguments of :func:`saliencybench.pipeline.train`
            (model and recipe names and entries, device, checkpoint and sidecar paths).
    """
    from saliencybench.pipeline import train

    def relabel(dataset: store.DatasetStore):
        split = dataset["train"]
        permuted = permute_labels(split.labels, seed)
        shuffled = store.DatasetStore(
            dataset.path,
            {
                "train": store.DatasetSplit(split.images, permuted, split.masks),
                "test": dataset["test"],
            },
            dataset.attrs,
        )
        changed = float(np.mean(permuted != split.labels)) if len(permuted) else 0.0
        log.info("labels permuted with seed %d: %.1f %% of them changed", seed, 100 * changed)
        return shuffled, {"permuted_labels": {"seed": seed, "share_changed": changed}}

    return train(data_path, seed=seed, relabel=relabel, **train_settings)
