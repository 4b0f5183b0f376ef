"""The hermitry ratio: how out-of-distribution are the inputs a perturbation method creates?

The hermitry paper (Sec. 3) encodes an image by the layer before the classifier, h(x), fits
the mean mu_c and covariance S_c of the training encodings of class c, and measures
D(x) = sqrt((h - mu_c)^T S_c^-1 (h - mu_c)), the Mahalanobis distance. The threshold T_c
is the 95th percentile of D over the validation images of class c; the hermitry ratio of a
set of inputs of class c is the share with D > T_c, "low" at or below 0.3, "high" above.

- **Covariance.** ``ledoit_wolf`` (default): scikit-learn's ``LedoitWolf`` shrinkage, since
  S_c is singular whenever a class has fewer training images than the encoding has
  features; ``empirical``: the sample covariance with a pseudo-inverse (``pinvh``), as
  scikit-learn's ``EmpiricalCovariance``.
- **Validation images.** The dataset stores have a train and a test split only; the test
  split (``hermitry.split``) serves as the validation set: the paper draws its perturbed
  images from ImageNet's validation set, which its models never trained on. At most
  ``max_per_class`` images per class, a seeded subset (the paper: 50).
- **Perturbed inputs.** The inputs a method actually sends to the model while it explains
  the validation images, captured from the model's forward calls (:class:`EncodingCapture`),
  encodings only, at most ``max_queries_per_image`` per image (a seeded subsample). The
  class of an input is the label of the image it came from.
- **Controls** (the paper's Sec. 3.2 and Appendix C): ``train_train`` (the training images
  themselves), ``train_val`` (the validation images: H = 1 - percentile/100 by
  construction), ``white_noise`` (uniform pixel noise) and ``foreign`` (the test images of
  another dataset, resized and channel-adapted), each measured against every class.
- **This project's own perturbations**, beyond the paper: ROAR-masked images per fraction
  (:func:`saliencybench.masking.mask_images`), MIF/LIF images per step (the inputs of
  :func:`saliencybench.evaluations.curves.perturbation_curves`, captured) and the
  infidelity perturbations (square removal and noisy baseline of
  :mod:`saliencybench.evaluations.robustness`).

Stores are long tables over a ``sample`` dimension: ``distance``, ``klass``, ``image`` (index
into the split, -1 for inputs made from nothing), ``level`` (fraction or step; NaN where
none), ``source`` and ``method`` (the map that ranked the pixels, '' where none).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from saliencybench import store
from saliencybench.models import classifier_layer, penultimate_encodings
from saliencybench.registry import Registry

log = logging.getLogger("saliencybench")

HERMITRY_FORMAT = "saliencybench.hermitry/1"
HERMITRY_SUMMARY_FORMAT = "saliencybench.hermitry_summary/1"
# Streams of numpy generators seeded [seed, stream].
SUBSET_STREAM = 5
NOISE_STREAM = 6
CAPTURE_STREAM = 7
INFIDELITY_STREAM = 8

CONTROLS = ("train_train", "train_val", "white_noise", "foreign")
EVALUATION_SOURCES = ("roar", "mif", "lif", "infidelity_square", "infidelity_noisy")


class HermitryError(ValueError):
    """Inputs the hermitry ratio cannot be computed from; one-line message."""


# ----------------------------------------------------------------------- covariance


@dataclass(frozen=True)
class ClassFit:
    """Class-conditional Gaussians of the training encodings.

    Attributes:
        classes: class indices, (K,).
        means: (K, J) float64; precisions: (K, J, J) float64, the inverse covariances.
        shrinkage: (K,) the Ledoit-Wolf shrinkage of each class (0 for ``empirical``).
        counts: (K,) training images per class.
    """

    classes: np.ndarray
    means: np.ndarray
    precisions: np.ndarray
    shrinkage: np.ndarray
    counts: np.ndarray


COVARIANCES: Registry[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, float]]] = Registry(
    "covariance estimator"
)


@COVARIANCES.register("ledoit_wolf")
def ledoit_wolf(encodings: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """scikit-learn ``LedoitWolf``: (location, precision, shrinkage)."""
    from sklearn.covariance import LedoitWolf

    fitted = LedoitWolf().fit(encodings)
    return fitted.location_, fitted.get_precision(), float(fitted.shrinkage_)


@COVARIANCES.register("empirical")
def empirical(encodings: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """scikit-learn ``EmpiricalCovariance`` (pseudo-inverse when singular)."""
    from sklearn.covariance import EmpiricalCovariance

    fitted = EmpiricalCovariance().fit(encodings)
    return fitted.location_, fitted.get_precision(), 0.0


def fit_classes(
    encodings: np.ndarray, labels: np.ndarray, classes: Sequence[int], covariance: str
) -> ClassFit:
    """Fit the mean and (shrunk) precision of the encodings of every class.

    Raises:
        HermitryError: a class with fewer than two training images.
    """
    estimator = COVARIANCES.get(covariance)
    encodings = np.asarray(encodings, dtype=np.float64)
    means, precisions, shrinkage, counts = [], [], [], []
    for c in classes:
        own = encodings[labels == c]
        if len(own) < 2:
            raise HermitryError(f"class {c} has {len(own)} training images; need at least 2")
        mean, precision, shrink = estimator(own)
        means.append(mean)
        precisions.append(precision)
        shrinkage.append(shrink)
        counts.append(len(own))
    return ClassFit(
        np.asarray(classes, dtype=np.int64),
        np.stack(means),
        np.stack(precisions),
        np.asarray(shrinkage),
        np.asarray(counts, dtype=np.int64),
    )


def mahalanobis(
    encodings: Tensor, classes: Tensor, fit: ClassFit, *, squared: bool = False
) -> Tensor:
    """Distance of every encoding to the Gaussian of its class: one matmul per class.

    Args:
        encodings: (M, J) on any device; classes: (M,) class index of each row (a class of
            ``fit.classes``).

    Returns:
        (M,) float64 on the encodings' device.
    """
    device = encodings.device
    x = encodings.to(torch.float64)
    out = torch.full((len(x),), float("nan"), dtype=torch.float64, device=device)
    known = torch.zeros(len(x), dtype=torch.bool, device=device)
    for k, c in enumerate(fit.classes.tolist()):
        rows = classes == c
        if not bool(rows.any()):
            continue
        known |= rows
        centred = x[rows] - torch.as_tensor(fit.means[k], device=device)
        precision = torch.as_tensor(fit.precisions[k], device=device)
        out[rows] = ((centred @ precision) * centred).sum(1)
    if not bool(known.all()):
        missing = sorted(set(classes[~known].tolist()))
        raise HermitryError(f"no class fit for classes {missing[:5]}")
    out = out.clamp_min(0.0)
    return out if squared else out.sqrt()


def thresholds(distances: np.ndarray, classes: np.ndarray, fit: ClassFit, percentile: float):
    """T_c: the ``percentile`` of the validation distances of each class (numpy's linear
    interpolation), (K,)."""
    out = []
    for c in fit.classes:
        own = distances[classes == c]
        if len(own) == 0:
            raise HermitryError(f"class {c} has no validation images")
        out.append(np.percentile(own, percentile))
    return np.asarray(out, dtype=np.float64)


def hermitry_ratio(distances: np.ndarray, threshold: float | np.ndarray) -> float:
    """H: the share of distances above the threshold (one, or one per distance); NaN for none."""
    return float(np.mean(distances > threshold)) if len(distances) else float("nan")


def hermitry_level(ratio: float, low: float = 0.3) -> str:
    """``low`` at or below ``low``, ``high`` above (the paper's cut-off 0.3)."""
    return "low" if ratio <= low else "high"


# ----------------------------------------------------------------------- capture


class EncodingCapture(nn.Module):
    """A classifier that records the encodings of every batch it is asked to classify.

    Wrap the model, hand the wrapper to an attribution method (or any code that queries the
    model), and :meth:`take` returns the penultimate encodings of every row sent since the
    last call, in order. Only encodings are kept, on the model's device, never the images.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._records: list[Tensor] = []
        self.forward_calls = 0

    def _record(self, module: nn.Module, args: tuple) -> None:
        self._records.append(args[0].detach().flatten(1))

    def forward(self, inputs: Tensor) -> Tensor:
        # The hook lives only during the call: the wrapped model is left as it was.
        handle = classifier_layer(self.model).register_forward_pre_hook(self._record)
        try:
            self.forward_calls += 1
            return self.model(inputs)
        finally:
            handle.remove()

    def take(self) -> Tensor:
        """The encodings recorded since the last call, (M, J), and forget them."""
        records, self._records = self._records, []
        if not records:
            return torch.zeros((0, classifier_layer(self.model).in_features))
        return torch.cat(records)


def capped(count: int, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices of a seeded subsample of at most ``cap`` of ``count`` rows."""
    if cap is None or count <= cap:
        return np.arange(count)
    return np.sort(rng.choice(count, size=cap, replace=False))


def capture_method(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    *,
    method: str,
    params: Mapping[str, Any] | None,
    context,
    max_queries_per_image: int | None,
    seed: int,
) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """Explain each image with ``method`` and capture the inputs it sends to the model.

    Images are explained one per call, so every captured row belongs to one image; the
    method still batches its own perturbations (``perturbations_per_eval``, ``batch_size``),
    so the forward passes stay batched. The batch seed of image i is
    ``batch_seed(context.seed, i)``, as :func:`saliencybench.methods.attribute_dataset`
    gives it with a batch size of 1.

    Returns:
        ``(encodings (M, J), image index of each row (M,), queries per image (N,))``, where
        ``queries`` counts every row sent, before the cap.
    """
    from saliencybench.methods import METHODS, batch_seed

    wrapper = EncodingCapture(model).eval()
    explainer = METHODS.get(method)(wrapper, context, **dict(params or {}))
    kept: list[Tensor] = []
    owners: list[np.ndarray] = []
    queries = np.zeros(len(images), dtype=np.int64)
    parameters = list(model.parameters())
    flags = [p.requires_grad for p in parameters]
    try:
        for p in parameters:
            p.requires_grad_(False)
        for i in range(len(images)):
            explainer.attribute(images[i : i + 1], targets[i : i + 1], batch_seed(context.seed, i))
            rows = wrapper.take()
            queries[i] = len(rows)
            chosen = capped(
                len(rows), max_queries_per_image, np.random.default_rng([seed, CAPTURE_STREAM, i])
            )
            kept.append(rows[torch.as_tensor(chosen, device=rows.device)])
            owners.append(np.full(len(chosen), i, dtype=np.int64))
    finally:
        for p, flag in zip(parameters, flags, strict=True):
            p.requires_grad_(flag)
    encodings = torch.cat(kept) if kept else wrapper.take()
    return encodings, np.concatenate(owners or [np.zeros(0, np.int64)]), queries


# ----------------------------------------------------------------------- tables


@dataclass
class Distances:
    """A long table of distances, one row per input (the store's ``sample`` dimension)."""

    distance: np.ndarray
    klass: np.ndarray
    image: np.ndarray
    level: np.ndarray
    source: np.ndarray
    method: np.ndarray

    @classmethod
    def of(
        cls,
        distance,
        klass,
        *,
        source: str,
        image=None,
        level=None,
        method: str = "",
    ) -> Distances:
        n = len(distance)
        return cls(
            np.asarray(distance, dtype=np.float64),
            np.asarray(klass, dtype=np.int64),
            np.full(n, -1, np.int64) if image is None else np.asarray(image, dtype=np.int64),
            np.full(n, np.nan) if level is None else np.asarray(level, dtype=np.float64),
            np.full(n, source, dtype=object),
            np.full(n, method, dtype=object),
        )

    @classmethod
    def concat(cls, parts: Sequence[Distances]) -> Distances:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__annotations__))

    def to_xarray(self):
        import xarray as xr

        return xr.Dataset(
            {
                "distance": ("sample", self.distance),
                "klass": ("sample", self.klass),
                "image": ("sample", self.image),
                "level": ("sample", self.level),
                "source": ("sample", self.source.astype(str)),
                "method": ("sample", self.method.astype(str)),
            }
        )

    @classmethod
    def from_xarray(cls, dataset) -> Distances:
        return cls(
            dataset["distance"].values,
            dataset["klass"].values,
            dataset["image"].values,
            dataset["level"].values,
            dataset["source"].values.astype(str).astype(object),
            dataset["method"].values.astype(str).astype(object),
        )


def _distances(encodings: Tensor, klass: np.ndarray, fit: ClassFit) -> np.ndarray:
    classes = torch.as_tensor(klass, device=encodings.device)
    return mahalanobis(encodings, classes, fit).cpu().numpy()


def _against_every_class(encodings: Tensor, fit: ClassFit, **kwargs) -> Distances:
    """Inputs of no class (noise, another dataset): their distance to every class."""
    k = len(fit.classes)
    repeated = encodings.repeat(k, 1)
    klass = np.repeat(fit.classes, len(encodings))
    return Distances.of(_distances(repeated, klass, fit), klass, **kwargs)


# ----------------------------------------------------------------------- images


def validation_subset(
    labels: np.ndarray, classes: Sequence[int], max_per_class: int | None, seed: int
) -> np.ndarray:
    """Sorted indices of at most ``max_per_class`` images of each class, seeded."""
    rng = np.random.default_rng([seed, SUBSET_STREAM])
    chosen = []
    for c in classes:
        own = np.flatnonzero(labels == c)
        if max_per_class is not None and len(own) > max_per_class:
            own = rng.choice(own, size=max_per_class, replace=False)
        chosen.append(own)
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def adapt_images(images: np.ndarray, channels: int, size: int) -> np.ndarray:
    """uint8 (N, C, H, W) images of another dataset for a model of ``channels`` x ``size``:
    bilinear resize, grey to RGB by repetition, RGB to grey by the channel mean."""
    from saliencybench.data import _resize_batch

    resized = _resize_batch(np.ascontiguousarray(images), size)
    if resized.shape[1] == channels:
        return resized
    if resized.shape[1] == 1:
        return np.repeat(resized, channels, axis=1)
    if channels == 1:
        return np.rint(resized.mean(axis=1, keepdims=True)).astype(np.uint8)
    raise HermitryError(f"cannot adapt {resized.shape[1]}-channel images to {channels} channels")


def resolve_classes(requested: Sequence[int] | None, n_classes: int) -> list[int]:
    if requested is None:
        return list(range(n_classes))
    bad = [c for c in requested if not 0 <= c < n_classes]
    if bad:
        raise HermitryError(f"hermitry.classes: class {bad[0]} is not in 0..{n_classes - 1}")
    return sorted(set(requested))


# ----------------------------------------------------------------------- jobs


def _load(data_path, checkpoint, sidecar_path, device):
    from saliencybench.pipeline import load_trained_model
    from saliencybench.training import resolve_device

    target_device = resolve_device(device)
    dataset = store.read_dataset(data_path)
    model, sidecar = load_trained_model(checkpoint, sidecar_path, target_device)
    if sidecar.get("data_hash") != dataset.content_hash:
        raise store.StoreError(
            f"{checkpoint}: trained on other data than {data_path}; retrain the model"
        )
    return dataset, model, sidecar, target_device


def _fit_to_xarray(fit: ClassFit, threshold: np.ndarray):
    import xarray as xr

    return xr.Dataset(
        {
            "means": (("class", "feature"), fit.means),
            "precisions": (("class", "feature", "feature_t"), fit.precisions),
            "shrinkage": ("class", fit.shrinkage),
            "train_count": ("class", fit.counts),
            "threshold": ("class", threshold),
        },
        coords={"class": fit.classes},
    )


def read_reference(path: str | Path):
    """Open a reference store written by :func:`reference`, loaded into memory."""
    return store.read_xarray(path, HERMITRY_FORMAT, "hermitry store")


def fit_of(reference) -> ClassFit:
    return ClassFit(
        reference["class"].values.astype(np.int64),
        reference["means"].values,
        reference["precisions"].values,
        reference["shrinkage"].values,
        reference["train_count"].values,
    )


def _write(part: Distances, extra, attrs: Mapping[str, Any], output) -> None:
    dataset = part.to_xarray()
    if extra is not None:
        dataset = dataset.merge(extra)
    dataset.attrs.update({"format": HERMITRY_FORMAT, **attrs})
    store.write_xarray(dataset, output)


def reference(
    data_path,
    checkpoint,
    sidecar_path,
    *,
    foreign_path: str | Path | None,
    split: str,
    classes: Sequence[int] | None,
    max_per_class: int | None,
    covariance: str,
    percentile: float,
    noise_images: int,
    batch_size: int,
    seed: int,
    device: str,
    output,
) -> None:
    """Fit the class Gaussians, the thresholds and the controls of one model; write them.

    The store holds the fit (``means``, ``precisions``, ``shrinkage``, ``threshold`` over
    ``class``), the validation images (``validation`` over ``image``: indices into
    ``split``) and the long table of the controls (:data:`CONTROLS`).
    """
    from saliencybench.pipeline import software_versions
    from saliencybench.training import normalize

    started = time.perf_counter()
    dataset, model, sidecar, target_device = _load(data_path, checkpoint, sidecar_path, device)
    chosen = resolve_classes(classes, len(dataset.class_names))
    train = dataset["train"]
    train_x = normalize(train.images, dataset.mean, dataset.std, target_device)
    train_h = penultimate_encodings(model, train_x, batch_size)
    fit = fit_classes(train_h.cpu().numpy(), train.labels, chosen, covariance)
    in_classes = np.isin(train.labels, chosen)
    train_train = Distances.of(
        _distances(
            train_h[torch.as_tensor(in_classes, device=target_device)],
            train.labels[in_classes],
            fit,
        ),
        train.labels[in_classes],
        image=np.flatnonzero(in_classes),
        source="train_train",
    )
    val_split = dataset[split]
    indices = validation_subset(val_split.labels, chosen, max_per_class, seed)
    val_x = normalize(val_split.images[indices], dataset.mean, dataset.std, target_device)
    val_labels = val_split.labels[indices]
    val_d = _distances(penultimate_encodings(model, val_x, batch_size), val_labels, fit)
    threshold = thresholds(val_d, val_labels, fit, percentile)
    parts = [
        train_train,
        Distances.of(val_d, val_labels, image=indices, source="train_val"),
    ]
    c, size = train.images.shape[1], train.images.shape[-1]
    if noise_images:
        rng = np.random.default_rng([seed, NOISE_STREAM])
        noise = rng.integers(0, 256, size=(noise_images, c, size, size), dtype=np.uint8)
        noise_x = normalize(noise, dataset.mean, dataset.std, target_device)
        parts.append(
            _against_every_class(
                penultimate_encodings(model, noise_x, batch_size), fit, source="white_noise"
            )
        )
    foreign_name = ""
    if foreign_path is not None:
        foreign = store.read_dataset(foreign_path)
        foreign_name = str(foreign.attrs.get("name", Path(foreign_path).stem))
        foreign_idx = validation_subset(
            np.zeros(len(foreign["test"].labels), np.int64), [0], noise_images or None, seed
        )
        adapted = adapt_images(foreign["test"].images[foreign_idx], c, size)
        foreign_x = normalize(adapted, dataset.mean, dataset.std, target_device)
        parts.append(
            _against_every_class(
                penultimate_encodings(model, foreign_x, batch_size), fit, source="foreign"
            )
        )
    extra = _fit_to_xarray(fit, threshold)
    extra["validation"] = ("explained", indices)
    extra["validation_labels"] = ("explained", val_labels.astype(np.int64))
    log.info(
        "hermitry reference: %d classes, %d features, %d training and %d validation images, "
        "mean shrinkage %.3f, in %.1fs",
        len(chosen),
        fit.means.shape[1],
        int(in_classes.sum()),
        len(indices),
        float(fit.shrinkage.mean()),
        time.perf_counter() - started,
    )
    _write(
        Distances.concat(parts),
        extra,
        {
            "kind": "reference",
            "split": split,
            "covariance": covariance,
            "percentile": float(percentile),
            "foreign": foreign_name,
            "class_names": [dataset.class_names[k] for k in chosen],
            "model": sidecar.get("model"),
            "recipe": sidecar.get("recipe"),
            "model_seed": sidecar.get("seed"),
            "checkpoint_sha256": sidecar.get("checkpoint_sha256"),
            "data_hash": dataset.content_hash,
            "seed": seed,
            "versions": software_versions(),
        },
        output,
    )


def _validation_inputs(dataset, ref, target_device):
    from saliencybench.training import normalize

    split = str(ref.attrs["split"])
    indices = ref["validation"].values.astype(np.int64)
    images = dataset[split].images[indices]
    labels = ref["validation_labels"].values.astype(np.int64)
    return indices, images, normalize(images, dataset.mean, dataset.std, target_device), labels


def capture(
    data_path,
    checkpoint,
    sidecar_path,
    reference_path,
    *,
    method_name: str,
    method_entry: Mapping[str, Any],
    max_queries_per_image: int | None,
    target_rule: str,
    batch_size: int,
    seed: int,
    device: str,
    output,
) -> None:
    """The distances of the inputs one method sends to the model while it explains the
    validation images; the store also keeps ``queries`` per image (before the cap)."""
    from saliencybench.config import method_params
    from saliencybench.methods import METHODS, AttributionContext, check_method
    from saliencybench.training import predict_logits

    registered = method_entry["method"]
    params = method_params(method_entry)
    check_method(registered, {**params, "reduction": METHODS.get(registered).default_reduction})
    dataset, model, sidecar, target_device = _load(data_path, checkpoint, sidecar_path, device)
    ref = read_reference(reference_path)
    fit = fit_of(ref)
    indices, _, inputs, labels = _validation_inputs(dataset, ref, target_device)
    if target_rule == "predicted":
        targets = predict_logits(model, inputs, batch_size).argmax(1)
    else:
        targets = torch.as_tensor(labels, device=target_device)
    from saliencybench.evaluations.randomization import _input_range

    started = time.perf_counter()
    encodings, owner, queries = capture_method(
        model,
        inputs,
        targets,
        method=registered,
        params=params,
        context=AttributionContext(seed=seed, input_range=_input_range(dataset)),
        max_queries_per_image=max_queries_per_image,
        seed=seed,
    )
    part = Distances.of(
        _distances(encodings, labels[owner], fit),
        labels[owner],
        image=indices[owner],
        source=method_name,
    )
    log.info(
        "%s: %d queries for %d images (%d kept) in %.1fs",
        method_name,
        int(queries.sum()),
        len(indices),
        len(owner),
        time.perf_counter() - started,
    )
    import xarray as xr

    extra = xr.Dataset({"queries": ("explained", queries), "validation": ("explained", indices)})
    _write(
        part,
        extra,
        {
            "kind": "method",
            "method": registered,
            "name": method_name,
            "parameters": params,
            "target_rule": target_rule,
            "max_queries_per_image": -1 if max_queries_per_image is None else max_queries_per_image,
            "checkpoint_sha256": sidecar.get("checkpoint_sha256"),
            "seed": seed,
        },
        output,
    )


def evaluation_inputs(
    model: nn.Module,
    images: np.ndarray,
    inputs: Tensor,
    labels: np.ndarray,
    indices: np.ndarray,
    maps: Mapping[str, np.ndarray],
    targets: Mapping[str, np.ndarray],
    fit: ClassFit,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    fractions: Sequence[float],
    roar_fill: str,
    blur_sigma: float,
    steps: int,
    curves_fill: float,
    square_side: int,
    noise_std: float,
    baseline: float,
    infidelity_samples: int,
    batch_size: int,
    seed: int,
) -> Distances:
    """Distances of the inputs this project's own evaluations create from the images.

    Args:
        images: uint8 (N, C, H, W); inputs: the same normalized, on the model's device.
        maps: (N, H, W) maps by method name (ranking ROAR and MIF/LIF); targets: the class
            each map explains (the MIF/LIF logit; unused for the encodings).
        fractions, roar_fill, blur_sigma: ROAR masking (mode ``roar``).
        steps, curves_fill: the MIF/LIF steps k/K and the fill value.
        square_side, noise_std, baseline, infidelity_samples: the infidelity perturbations,
            ``infidelity_samples`` copies per image.
    """
    from saliencybench.evaluations.curves import ORDERS, perturbation_curves
    from saliencybench.evaluations.robustness import noisy_baseline, square_removal
    from saliencybench.masking import mask_images
    from saliencybench.training import normalize

    device = inputs.device
    parts = []
    for method, method_maps in maps.items():
        for fraction in fractions:
            masked, _ = mask_images(
                images,
                method_maps,
                fraction=fraction,
                mode="roar",
                fill=roar_fill,
                mean=tuple(mean),
                std=tuple(std),
                seed=seed,
                blur_sigma=blur_sigma,
            )
            h = penultimate_encodings(model, normalize(masked, mean, std, device), batch_size)
            parts.append(
                Distances.of(
                    _distances(h, labels, fit),
                    labels,
                    image=indices,
                    level=np.full(len(labels), fraction),
                    source="roar",
                    method=method,
                )
            )
        wrapper = EncodingCapture(model).eval()
        perturbation_curves(
            wrapper,
            inputs,
            torch.as_tensor(method_maps, device=device),
            torch.as_tensor(targets[method], device=device),
            steps=steps,
            fill_value=curves_fill,
            batch_size=batch_size,
            seed=seed,
        )
        # perturbation_curves sends copies in (image, order, step) order
        h = wrapper.take()
        points = len(ORDERS) * (steps + 1)
        image = np.repeat(np.arange(len(labels)), points)
        order = np.tile(np.repeat(np.arange(len(ORDERS)), steps + 1), len(labels))
        level = np.tile(np.arange(steps + 1) / steps, len(labels) * len(ORDERS))
        d = _distances(h, labels[image], fit)
        for o, name in enumerate(ORDERS):
            rows = order == o
            parts.append(
                Distances.of(
                    d[rows],
                    labels[image][rows],
                    image=indices[image][rows],
                    level=level[rows],
                    source=name,
                    method=method,
                )
            )
    if infidelity_samples:
        generator = torch.Generator(device=device)
        generator.manual_seed(int(np.random.default_rng([seed, INFIDELITY_STREAM]).integers(2**62)))
        repeated = inputs.repeat_interleave(infidelity_samples, dim=0)
        image = np.repeat(np.arange(len(labels)), infidelity_samples)
        perturbations = {
            "infidelity_square": square_removal(square_side, baseline, generator),
            "infidelity_noisy": noisy_baseline(noise_std, baseline, generator),
        }
        for source, perturb in perturbations.items():
            _, perturbed = perturb(repeated)
            h = penultimate_encodings(model, perturbed, batch_size)
            parts.append(
                Distances.of(
                    _distances(h, labels[image], fit),
                    labels[image],
                    image=indices[image],
                    source=source,
                )
            )
    return Distances.concat(parts) if parts else Distances.of([], [], source="")


def evaluations(
    data_path,
    checkpoint,
    sidecar_path,
    reference_path,
    attribution_paths: Mapping[str, str],
    *,
    fractions: Sequence[float],
    roar_fill: str,
    blur_sigma: float,
    steps: int,
    curves_fill: float,
    square_side: int | None,
    noise_std: float,
    baseline: float,
    infidelity_samples: int,
    batch_size: int,
    seed: int,
    device: str,
    output,
) -> None:
    """The job of :func:`evaluation_inputs`: maps from the attribution stores of the
    validation split, by method name."""
    from saliencybench.methods import square_side as resolve_side

    dataset, model, sidecar, target_device = _load(data_path, checkpoint, sidecar_path, device)
    ref = read_reference(reference_path)
    split = str(ref.attrs["split"])
    indices, images, inputs, labels = _validation_inputs(dataset, ref, target_device)
    maps, targets = {}, {}
    for name, path in attribution_paths.items():
        stored = store.read_attributions(path)
        if stored.attrs.get("checkpoint_sha256") != sidecar.get("checkpoint_sha256"):
            raise store.StoreError(f"{path}: maps of another model than {checkpoint}; rerun")
        maps[name] = np.asarray(stored[split].maps)[indices]
        targets[name] = np.asarray(stored[split].targets)[indices]
    h, w = images.shape[-2:]
    started = time.perf_counter()
    table = evaluation_inputs(
        model,
        images,
        inputs,
        labels,
        indices,
        maps,
        targets,
        fit_of(ref),
        mean=dataset.mean,
        std=dataset.std,
        fractions=fractions,
        roar_fill=roar_fill,
        blur_sigma=blur_sigma,
        steps=steps,
        curves_fill=curves_fill,
        square_side=resolve_side(square_side, h, w),
        noise_std=noise_std,
        baseline=baseline,
        infidelity_samples=infidelity_samples,
        batch_size=batch_size,
        seed=seed,
    )
    log.info(
        "hermitry of evaluation inputs: %d inputs from %d maps in %.1fs",
        len(table.distance),
        len(maps),
        time.perf_counter() - started,
    )
    _write(
        table,
        None,
        {"kind": "evaluations", "methods": list(maps), "seed": seed},
        output,
    )


def read_store(path: str | Path):
    """Open any hermitry store (reference, method, evaluations), loaded into memory."""
    return store.read_xarray(path, HERMITRY_FORMAT, "hermitry store")


# ----------------------------------------------------------------------- summary

KDE_POINTS = 200


def _kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from scipy.stats import gaussian_kde

    values = values[np.isfinite(values)]
    if len(values) < 2 or np.ptp(values) == 0:
        out = np.zeros_like(grid)
        if len(values):
            out[np.argmin(np.abs(grid - values[0]))] = 1.0
        return out
    return gaussian_kde(values)(grid)


def summarize(
    reference_path,
    method_paths: Sequence[str],
    evaluations_path: str | None,
    *,
    low_ratio: float,
    attrs: Mapping[str, Any] | None = None,
):
    """H per (entry, class) for every source of one model, with the KDE curves of Figure 3.

    An entry is a (source, method, level) triple: a perturbation method, a control, or an
    evaluation's input at one fraction or step. Returns an ``xarray.Dataset`` with
    ``hermitry`` and ``count`` over (entry, class), ``hermitry_mean`` over (entry), the
    thresholds, and for the paper's sources (methods and controls) the density of the
    distances normalized by the largest distance of the panel (or the threshold), on
    ``KDE_POINTS`` points of [0, 1] (``density`` over (panel, class, grid)) with the
    normalized threshold (``panel_threshold``). ``normalized_threshold`` (class) divides
    T_c by the largest distance of the class over the captured methods and the validation
    images, the paper's Appendix B.
    """
    import xarray as xr

    ref = read_reference(reference_path)
    fit = fit_of(ref)
    threshold = ref["threshold"].values
    tables = [Distances.from_xarray(ref)]
    method_names = []
    for path in method_paths:
        part = read_store(path)
        method_names.append(str(part.attrs["name"]))
        tables.append(Distances.from_xarray(part))
    if evaluations_path is not None:
        tables.append(Distances.from_xarray(read_store(evaluations_path)))
    table = Distances.concat(tables)
    import pandas as pd

    frame = pd.DataFrame(
        {
            "source": table.source.astype(str),
            "method": table.method.astype(str),
            "level": table.level,
            "klass": table.klass,
            "distance": table.distance,
        }
    )
    frame["threshold"] = threshold[np.searchsorted(fit.classes, frame["klass"].to_numpy())]
    frame["hermit"] = frame["distance"] > frame["threshold"]
    frame["level_key"] = frame["level"].fillna(-1.0)
    order = {name: i for i, name in enumerate([*method_names, *CONTROLS, *EVALUATION_SOURCES])}
    keys = (
        frame[["source", "method", "level_key"]]
        .drop_duplicates()
        .assign(rank=lambda f: f["source"].map(order).fillna(len(order)))
        .sort_values(["rank", "method", "level_key"])
    )
    entries = list(keys.itertuples(index=False))
    n_entries, n_classes = len(entries), len(fit.classes)
    ratio = np.full((n_entries, n_classes), np.nan)
    count = np.zeros((n_entries, n_classes), dtype=np.int64)
    mean_distance = np.full((n_entries, n_classes), np.nan)
    grouped = frame.groupby(["source", "method", "level_key", "klass"])
    stats = grouped.agg(h=("hermit", "mean"), n=("hermit", "size"), d=("distance", "mean"))
    entry_index = {(e.source, e.method, e.level_key): i for i, e in enumerate(entries)}
    class_index = {int(c): k for k, c in enumerate(fit.classes)}
    for (source, method, level_key, klass), row in stats.iterrows():
        i, k = entry_index[(source, method, level_key)], class_index[int(klass)]
        ratio[i, k], count[i, k], mean_distance[i, k] = row["h"], row["n"], row["d"]
    # Figure 3 and Appendix C: the captured methods, then the controls
    panels = [name for name in [*method_names, *CONTROLS] if (frame["source"] == name).any()]
    grid = np.linspace(0.0, 1.0, KDE_POINTS)
    density = np.zeros((len(panels), n_classes, KDE_POINTS))
    panel_threshold = np.full((len(panels), n_classes), np.nan)
    panel_ratio = np.full((len(panels), n_classes), np.nan)
    for p, name in enumerate(panels):
        for k, c in enumerate(fit.classes):
            d = frame.loc[(frame["source"] == name) & (frame["klass"] == c), "distance"].to_numpy()
            if not len(d):
                continue
            scale = max(float(d.max()), float(threshold[k]))
            density[p, k] = _kde(d / scale, grid)
            panel_threshold[p, k] = threshold[k] / scale
            panel_ratio[p, k] = hermitry_ratio(d, threshold[k])
    paper_sources = frame["source"].isin([*method_names, "train_val"])
    normalized_threshold = np.full(n_classes, np.nan)
    for k, c in enumerate(fit.classes):
        d = frame.loc[paper_sources & (frame["klass"] == c), "distance"].to_numpy()
        normalized_threshold[k] = threshold[k] / max(float(d.max()), float(threshold[k]))
    counts = np.where(count > 0, count, 0)
    with np.errstate(invalid="ignore"):
        pooled = np.nansum(np.nan_to_num(ratio) * counts, axis=1) / counts.sum(axis=1)
    return xr.Dataset(
        {
            "hermitry": (("entry", "class"), ratio),
            "count": (("entry", "class"), count),
            "mean_distance": (("entry", "class"), mean_distance),
            "hermitry_mean": ("entry", np.nanmean(ratio, axis=1)),
            "hermitry_pooled": ("entry", pooled),
            "threshold": ("class", threshold),
            "normalized_threshold": ("class", normalized_threshold),
            "shrinkage": ("class", fit.shrinkage),
            "train_count": ("class", fit.counts),
            "validation_count": (
                "class",
                np.array([(ref["validation_labels"].values == c).sum() for c in fit.classes]),
            ),
            "density": (("panel", "class", "grid"), density),
            "panel_threshold": (("panel", "class"), panel_threshold),
            "panel_hermitry": (("panel", "class"), panel_ratio),
        },
        coords={
            "entry": np.arange(n_entries),
            "source": ("entry", [e.source for e in entries]),
            "method": ("entry", [e.method for e in entries]),
            "level": ("entry", [np.nan if e.level_key < 0 else e.level_key for e in entries]),
            "class": fit.classes,
            "class_name": ("class", json.loads(ref.attrs["class_names"])),
            "panel": panels,
            "grid": grid,
        },
        attrs={
            "format": HERMITRY_SUMMARY_FORMAT,
            "low_ratio": float(low_ratio),
            "percentile": float(ref.attrs["percentile"]),
            "covariance": str(ref.attrs["covariance"]),
            "split": str(ref.attrs["split"]),
            "foreign": str(ref.attrs.get("foreign", "")),
            "methods": method_names,
            **dict(attrs or {}),
        },
    )


def read_summary(path: str | Path):
    """Open a hermitry summary (NetCDF written by ``store.write_netcdf``) into memory."""
    return store.read_netcdf(path, HERMITRY_SUMMARY_FORMAT, "hermitry summary")
