"""Parameter- and data-randomization sanity checks (Adebayo et al. 2018; Sriram & Conati).

A saliency method that explains a model should notice when the model is destroyed. The
parameter layers of a trained model (conv, linear and normalization layers, found in its
module tree and named by module path) are re-initialized with each layer's own
``reset_parameters`` under a seed derived from the job seed and the layer's name:

- **cascading** (Adebayo et al. 2018, Sec. 3.1): from the output layer towards the input,
  cumulatively; step ``j`` has the top ``j + 1`` layers re-initialized;
- **independent** (IPR): one layer at a time, every other layer trained.

For every image the map of the method on the randomized model is compared with its map on
the trained model, for the same target class: SSIM on maps min-max scaled to [0, 1] (data
range 1, scikit-image's definition: 7 x 7 uniform window, sample covariance, K1 = 0.01,
K2 = 0.03), and the Spearman rank correlation of the signed and of the absolute maps.

The extended IPR test of Sriram & Conati (eqs. 1-7): ``S_l^i = 1 - SSIM`` of image i under
the independent randomization of layer l, ``S^i`` its mean over layers, ``S^I`` the mean over
images, reported with a bootstrap confidence interval over images. A method is sensitive for
image i when SSIM < 0.99 for every layer, and passes when ``S^I >= 0.01``.

The data randomization test (Adebayo et al. 2018, Sec. 3.2) compares the maps of the trained
model with those of the same architecture and recipe trained on permuted training labels.

All randomized models of one method are evaluated in the same job, each over the whole image
sample with :func:`saliencybench.methods.attribute_dataset` (batched), on one working copy of
the model whose layers are switched between trained and re-initialized weights.
"""

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
from saliencybench.registry import Registry, UnknownNameError

log = logging.getLogger("saliencybench")

RANDOMIZATION_FORMAT = "saliencybench.randomization/1"
RANDOMIZATION_SUMMARY_FORMAT = "saliencybench.randomization_summary/1"
# The metric the extended IPR test is defined on.
SSIM = "ssim"
SSIM_WINDOW = 7
# Streams of numpy generators seeded [seed, stream]: 2 is the image subset of the curves
# (shared on purpose, so both evaluations look at the same images).
LABEL_STREAM = 3
BOOTSTRAP_STREAM = 4


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
MODES = ("cascading", "independent")


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


METRICS = (SSIM, "spearman_abs", "spearman")


def similarities(original: np.ndarray, randomized: np.ndarray) -> np.ndarray:
    """Every metric of :data:`METRICS` per image: (N, len(METRICS)) float64."""
    return np.stack([SIMILARITIES.get(name)(original, randomized) for name in METRICS], axis=1)


# ----------------------------------------------------------------------- extended IPR


def image_sensitivity(ssim_by_layer: np.ndarray) -> np.ndarray:
    """``S^i``: the mean over layers of ``S_l^i = 1 - SSIM`` (Sriram & Conati, eqs. 2 and 4).

    Args:
        ssim_by_layer: (N, L) SSIM of each image under each independent randomization.
    """
    return (1.0 - np.asarray(ssim_by_layer, dtype=np.float64)).mean(axis=1)


def sensitive_images(ssim_by_layer: np.ndarray, threshold: float) -> np.ndarray:
    """Images for which the method is sensitive: SSIM < threshold for every layer (Def. 2)."""
    return (np.asarray(ssim_by_layer) < threshold).all(axis=1)


def bootstrap_interval(
    values: np.ndarray, *, confidence: float, samples: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaNs dropped), seeded.

    ``samples`` resamples of the values with replacement; the interval runs from the
    ``(1 - confidence) / 2`` to the ``(1 + confidence) / 2`` quantile of their means.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng([int(seed), BOOTSTRAP_STREAM])
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


# ----------------------------------------------------------------------- the test


def _accuracy(model: nn.Module, inputs: Tensor, labels: Tensor | None, batch_size: int) -> float:
    from saliencybench.training import accuracy

    return float("nan") if labels is None else accuracy(model, inputs, labels, batch_size)


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


def _input_range(dataset: store.DatasetStore) -> tuple[float, float]:
    """(min, max) of the normalized images of both splits, from the uint8 extremes per
    channel (normalization is increasing in each channel), without normalizing them all."""
    mean = np.asarray(dataset.mean, dtype=np.float64)
    std = np.asarray(dataset.std, dtype=np.float64)
    low = np.min([dataset[s].images.min(axis=(0, 2, 3)) for s in store.SPLITS], axis=0)
    high = np.max([dataset[s].images.max(axis=(0, 2, 3)) for s in store.SPLITS], axis=0)
    return float(((low / 255.0 - mean) / std).min()), float(((high / 255.0 - mean) / std).max())


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
        output: the ``.zarr`` store to write: :func:`randomization_test`'s Dataset with
            ``sample`` holding indices into the split, and ``targets`` (sample).
    """
    from saliencybench.config import method_params
    from saliencybench.evaluations.curves import subset_indices
    from saliencybench.methods import METHODS, AttributionContext, check_method
    from saliencybench.pipeline import load_trained_model, software_versions
    from saliencybench.training import normalize, predict_logits, resolve_device

    registered = method_entry["method"]
    params = method_params(method_entry)
    reduction = method_entry.get("reduction") or METHODS.get(registered).default_reduction
    check_method(registered, {**params, "reduction": reduction})
    target_device = resolve_device(device)
    dataset = store.read_dataset(data_path)
    model, sidecar = load_trained_model(checkpoint, sidecar_path, target_device)
    if sidecar.get("data_hash") != dataset.content_hash:
        raise store.StoreError(
            f"{checkpoint}: trained on other data than {data_path}; retrain the model"
        )
    permuted_model, permuted = None, {}
    if permuted_checkpoint is not None:
        permuted_model, permuted = load_trained_model(
            permuted_checkpoint, permuted_sidecar, target_device
        )
        if permuted.get("data_hash") != dataset.content_hash:
            raise store.StoreError(
                f"{permuted_checkpoint}: trained on other data than {data_path}; retrain it"
            )
    layers = parameter_layers(model, layer_types)
    indices = subset_indices(len(dataset[split].labels), max_images, seed)
    inputs = normalize(dataset[split].images[indices], dataset.mean, dataset.std, target_device)
    labels = torch.as_tensor(dataset[split].labels[indices], device=target_device)
    if target_rule == "predicted":
        targets = predict_logits(model, inputs, batch_size).argmax(1)
    else:
        targets = labels
    log.info(
        "%s on %d %s images of %s: %d layers (%s), from the output: %s",
        method_name,
        len(indices),
        split,
        dataset.attrs.get("name", data_path),
        len(layers),
        ", ".join(layer_types),
        ", ".join(layers),
    )
    result = randomization_test(
        model,
        inputs,
        targets,
        method=registered,
        params=params,
        reduction=reduction,
        context=AttributionContext(seed=seed, input_range=_input_range(dataset)),
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
        dataset[split].images[indices[: len(result["example"])]],
    )
    result.attrs.update(
        {
            "format": RANDOMIZATION_FORMAT,
            "method": registered,
            "name": method_name,
            "parameters": params,
            "reduction": reduction,
            "split": split,
            "seed": seed,
            "target_rule": target_rule,
            "layer_types": list(layer_types),
            "model": sidecar.get("model"),
            "recipe": sidecar.get("recipe"),
            "model_seed": sidecar.get("seed"),
            "checkpoint_sha256": sidecar.get("checkpoint_sha256"),
            "permuted_checkpoint_sha256": permuted.get("checkpoint_sha256"),
            "data_hash": dataset.content_hash,
            "versions": software_versions(),
        }
    )
    store.write_xarray(result, output)


def read_store(path: str | Path):
    """Open a randomization store written by :func:`compute`, loaded into memory."""
    return store.read_xarray(path, RANDOMIZATION_FORMAT, "randomization store")


# ----------------------------------------------------------------------- data randomization


def permute_labels(labels: np.ndarray, seed: int) -> np.ndarray:
    """The training labels in a seeded random order (Adebayo et al. 2018, Sec. 3.2)."""
    return np.random.default_rng([int(seed), LABEL_STREAM]).permutation(np.asarray(labels))


def train_permuted_labels(
    data_path: str | Path,
    *,
    model_name: str,
    model_entry: dict[str, Any],
    recipe_name: str,
    recipe_entry: dict[str, Any],
    seed: int,
    device: str,
    checkpoint: str | Path,
    sidecar_path: str | Path,
) -> dict[str, Any]:
    """Train the model of the data randomization test and write its checkpoint and sidecar.

    The architecture, recipe and seed (hence the initial weights and batch order) of the
    original model, trained on the training images with their labels permuted by ``seed``.
    The sidecar records the share of labels changed and the accuracy on the permuted
    training labels (how far the model memorized them); test accuracy is against the true
    labels.
    """
    from saliencybench.pipeline import fit, save_trained

    dataset = store.read_dataset(data_path)
    train = dataset["train"]
    permuted = permute_labels(train.labels, seed)
    shuffled = store.DatasetStore(
        dataset.path,
        {"train": store.DatasetSplit(train.images, permuted, train.masks), "test": dataset["test"]},
        dataset.attrs,
    )
    result = fit(
        shuffled,
        model_name=model_name,
        model_entry=model_entry,
        recipe_name=recipe_name,
        recipe_entry=recipe_entry,
        seed=seed,
        device=device,
    )
    changed = float(np.mean(permuted != train.labels)) if len(permuted) else 0.0
    log.info("labels permuted with seed %d: %.1f %% of them changed", seed, 100 * changed)
    return save_trained(
        result,
        dataset,
        data_path,
        model_name=model_name,
        model_entry=model_entry,
        recipe_name=recipe_name,
        recipe_entry=recipe_entry,
        seed=seed,
        checkpoint=checkpoint,
        sidecar_path=sidecar_path,
        extra={"permuted_labels": {"seed": seed, "share_changed": changed}},
    )


# ----------------------------------------------------------------------- summary


def summarize(
    stores: Sequence[str | Path],
    *,
    ssim_threshold: float,
    pass_threshold: float,
    confidence: float,
    bootstrap_samples: int,
    seed: int,
    attrs: Mapping[str, Any] | None = None,
):
    """The extended IPR test and the mean similarity curves of every method of one model.

    Args:
        stores: randomization stores of one model, one per method, in table order.
        ssim_threshold: SSIM below which a map counts as changed (Sriram & Conati: 0.99).
        pass_threshold: ``S^I`` at or above which a method passes (0.01).
        confidence, bootstrap_samples, seed: the percentile bootstrap interval of ``S^I``.
        attrs: provenance to attach.

    Returns:
        ``xarray.Dataset`` over ``method`` with ``sensitivity`` (S^I), ``sensitivity_low``,
        ``sensitivity_high``, ``passes`` (1/0), ``sensitive_share`` (share of images
        sensitive to every layer) and ``images``; ``similarity`` and ``similarity_std``
        over (method, mode, layer, metric); ``data_similarity`` over (method, metric), NaN
        without a data randomization test; ``accuracy`` over (mode, layer); and the example
        maps of the first image for the figures.
    """
    import xarray as xr

    if not stores:
        raise ValueError("no randomization stores to summarize")
    opened = [read_store(path) for path in stores]
    first = opened[0]
    layers = [str(layer) for layer in first["layer"].values]
    for path, part in zip(stores, opened, strict=True):
        if [str(layer) for layer in part["layer"].values] != layers:
            raise store.StoreError(
                f"{path}: randomized other layers than {stores[0]}; rerun the randomization"
            )
    methods = [str(part.attrs["name"]) for part in opened]
    rows = []
    for part in opened:
        if "data_similarity" in part:
            data = np.nanmean(part["data_similarity"].values, axis=0)
        else:
            data = np.full(len(METRICS), np.nan)
        ssim_independent = part["similarity"].sel(mode="independent", metric=SSIM).values
        per_image = image_sensitivity(ssim_independent)
        low, high = bootstrap_interval(
            per_image, confidence=confidence, samples=bootstrap_samples, seed=seed
        )
        sensitivity = float(np.nanmean(per_image))
        rows.append(
            {
                "sensitivity": sensitivity,
                "sensitivity_low": low,
                "sensitivity_high": high,
                "passes": int(sensitivity >= pass_threshold),
                "sensitive_share": float(sensitive_images(ssim_independent, ssim_threshold).mean()),
                "images": len(per_image),
                "similarity": np.nanmean(part["similarity"].values, axis=0),
                "similarity_std": np.nanstd(part["similarity"].values, axis=0, ddof=0),
                "data_similarity": data,
            }
        )

    def column(key: str) -> np.ndarray:
        return np.stack([np.asarray(row[key]) for row in rows])

    def examples(name: str, part) -> np.ndarray:
        return part[name].isel(example=0).values

    shape = first["example_original"].shape[1:]
    example_original = np.stack([examples("example_original", p) for p in opened])
    example_maps = np.stack([examples("example_maps", p) for p in opened])
    example_data = np.stack(
        [
            examples("example_data_maps", p) if "example_data_maps" in p else np.full(shape, np.nan)
            for p in opened
        ]
    )
    return xr.Dataset(
        {
            "sensitivity": ("method", column("sensitivity"), {"long_name": "S^I"}),
            "sensitivity_low": ("method", column("sensitivity_low")),
            "sensitivity_high": ("method", column("sensitivity_high")),
            "passes": ("method", column("passes").astype(np.int8)),
            "sensitive_share": ("method", column("sensitive_share")),
            "images": ("method", column("images").astype(np.int64)),
            "similarity": (("method", "mode", "layer", "metric"), column("similarity")),
            "similarity_std": (("method", "mode", "layer", "metric"), column("similarity_std")),
            "data_similarity": (("method", "metric"), column("data_similarity")),
            "accuracy": (("mode", "layer"), first["accuracy"].values),
            "example_image": (("channel", "y", "x"), first["example_images"].values[0]),
            "example_original": (("method", "y", "x"), example_original),
            "example_maps": (("method", "mode", "layer", "y", "x"), example_maps),
            "example_data_maps": (("method", "y", "x"), example_data),
        },
        coords={"method": methods, "mode": list(MODES), "layer": layers, "metric": list(METRICS)},
        attrs={
            "format": RANDOMIZATION_SUMMARY_FORMAT,
            "ssim_threshold": float(ssim_threshold),
            "pass_threshold": float(pass_threshold),
            "confidence": float(confidence),
            "bootstrap_samples": int(bootstrap_samples),
            "seed": int(seed),
            "original_accuracy": float(first.attrs.get("original_accuracy", np.nan)),
            "data_accuracy": float(first.attrs.get("data_accuracy", np.nan)),
            **dict(attrs or {}),
        },
    )


def read_summary(path: str | Path):
    """Open a randomization summary (NetCDF written by ``store.write_netcdf``) into memory."""
    return store.read_netcdf(path, RANDOMIZATION_SUMMARY_FORMAT, "randomization summary")
