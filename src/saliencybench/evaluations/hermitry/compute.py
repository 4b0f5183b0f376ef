"""The model jobs of the hermitry ratio: fit the class Gaussians, thresholds and controls of a
model, capture the inputs a method sends to it, measure the inputs of the other evaluations."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from saliencybench import store
from saliencybench.evaluations.hermitry.summary import (
    HERMITRY_FORMAT,
    ClassFit,
    Distances,
    fit_of,
    read_reference,
)
from saliencybench.inference import normalize
from saliencybench.jobkit import (
    ModelRun,
    dataset_input_range,
    explained_classes,
    load_run,
    provenance,
    read_maps,
    resolve_method,
)
from saliencybench.models import classifier_layer, penultimate_encodings
from saliencybench.registry import Registry

log = logging.getLogger("saliencybench")

# Streams of numpy generators seeded [seed, stream].
SUBSET_STREAM = 5
NOISE_STREAM = 6
CAPTURE_STREAM = 7
INFIDELITY_STREAM = 8


class HermitryError(ValueError):
    """Inputs the hermitry ratio cannot be computed from; one-line message."""


# ----------------------------------------------------------------------- covariance
# The hermitry paper (Sec. 3) encodes an image by the layer before the classifier, h(x),
# fits the mean mu_c and covariance S_c of the training encodings of class c, and measures
# D(x) = sqrt((h - mu_c)^T S_c^-1 (h - mu_c)). ``ledoit_wolf`` is the default since S_c is
# singular whenever a class has fewer training images than the encoding has features.

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


THRESHOLD_RULES = ("interpolated", "order_statistic")


def thresholds(
    distances: np.ndarray,
    classes: np.ndarray,
    fit: ClassFit,
    percentile: float,
    rule: str = "interpolated",
):
    """T_c of each class from the distances of its validation images, (K,).

    Args:
        rule: ``interpolated``, numpy's percentile with linear interpolation; or
            ``order_statistic``, the hermitry paper's: the n-th smallest distance (counting
            from 1), n = floor(percentile / 100 x I_Y) for the class's I_Y images, at least 1.
    """
    if rule not in THRESHOLD_RULES:
        raise HermitryError(f"threshold rule {rule!r}; expected one of {THRESHOLD_RULES}")
    out = []
    for c in fit.classes:
        own = distances[classes == c]
        if len(own) == 0:
            raise HermitryError(f"class {c} has no validation images")
        if rule == "order_statistic":
            n = max(1, math.floor(percentile / 100.0 * len(own)))
            out.append(np.sort(own)[n - 1])
        else:
            out.append(np.percentile(own, percentile))
    return np.asarray(out, dtype=np.float64)


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
        self._unperturbed: list[Tensor] = []
        self._owners: list[Tensor] = []
        self.forward_calls = 0
        # Images per call of the method: row r of a forward pass belongs to image r mod this.
        self.images_per_call = 1
        # The images being explained: rows equal to their own image are marked
        # (take_unperturbed).
        self.reference: Tensor | None = None

    def _record(self, module: nn.Module, args: tuple) -> None:
        self._records.append(args[0].detach().flatten(1))

    def forward(self, inputs: Tensor) -> Tensor:
        if len(inputs) % self.images_per_call:
            raise HermitryError(
                f"a forward pass of {len(inputs)} rows for {self.images_per_call} images: the "
                "method does not send whole copies of the batch; explain one image per call"
            )
        owner = torch.arange(len(inputs), device=inputs.device) % self.images_per_call
        self._owners.append(owner)
        if self.reference is not None:
            same = (inputs.detach() == self.reference[owner]).flatten(1).all(1)
            self._unperturbed.append(same)
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

    def take_owners(self) -> Tensor:
        """The image (position in the call's batch) of each row sent since the last call,
        (M,) int64, and forget them."""
        owners, self._owners = self._owners, []
        return torch.cat(owners) if owners else torch.zeros(0, dtype=torch.int64)

    def take_unperturbed(self) -> Tensor:
        """Which rows sent since the last call equal ``reference``, (M,) bool, and forget."""
        marks, self._unperturbed = self._unperturbed, []
        return torch.cat(marks) if marks else torch.zeros(0, dtype=torch.bool)


# Images per call of a method whose queries follow the images (occlusion), in the capture.
CAPTURE_IMAGES_PER_CALL = 64


def capped(count: int, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices of a seeded subsample of at most ``cap`` of ``count`` rows."""
    if cap is None or count <= cap:
        return np.arange(count)
    return np.sort(rng.choice(count, size=cap, replace=False))


def _capped_rows(
    rows: Tensor, owner: Tensor, counts: np.ndarray, cap: int, seed: int, first_image: int
) -> tuple[Tensor, Tensor]:
    """``rows`` grouped by image (``counts`` each), every image over ``cap`` cut to a seeded
    subsample of ``cap`` (:func:`capped`, the generator of image ``first_image + offset``)."""
    ends = np.cumsum(counts)
    keep = np.ones(len(rows), dtype=bool)
    for offset in np.flatnonzero(counts > cap):
        begin = ends[offset] - counts[offset]
        chosen = capped(
            int(counts[offset]),
            cap,
            np.random.default_rng([seed, CAPTURE_STREAM, first_image + offset]),
        )
        keep[begin : ends[offset]] = False
        keep[begin + chosen] = True
    kept = torch.as_tensor(keep, device=rows.device)
    return rows[kept], owner[kept]


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
    count_unperturbed: bool = True,
    images_per_call: int = CAPTURE_IMAGES_PER_CALL,
) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """Explain each image with ``method`` and capture the inputs it sends to the model.

    A method whose queries follow the images (``queries_follow_images``: occlusion) explains
    ``images_per_call`` images per call and its rows are assigned to their image by
    position; the others explain one image per call, so every captured row belongs to one
    image. The captured rows, their order and the cap's draws are the same either way.
    The method still batches its own perturbations (``perturbations_per_eval``,
    ``batch_size``). The batch seed of image i is ``batch_seed(context.seed, i)``, as
    :func:`saliencybench.methods.attribute_dataset` gives it with a batch size of 1 (the
    batched methods are deterministic). With ``count_unperturbed`` False, rows equal to
    the image itself (captum's Occlusion and Kernel SHAP send it once) are dropped, as the
    hermitry paper counts perturbed samples only.

    Returns:
        ``(encodings (M, J), image index of each row (M,), queries per image (N,))``, where
        ``queries`` counts every row kept before the cap.
    """
    from saliencybench.methods import METHODS, batch_seed

    method_class = METHODS.get(method)
    batched = method_class.queries_follow_images and method_class.deterministic
    step = max(1, images_per_call) if batched else 1
    wrapper = EncodingCapture(model).eval()
    explainer = method_class(wrapper, context, **dict(params or {}))
    kept: list[Tensor] = []
    owners: list[np.ndarray] = []
    queries = np.zeros(len(images), dtype=np.int64)
    parameters = list(model.parameters())
    flags = [p.requires_grad for p in parameters]
    try:
        for p in parameters:
            p.requires_grad_(False)
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            wrapper.images_per_call = len(chunk)
            wrapper.reference = None if count_unperturbed else chunk
            explainer.attribute(
                chunk, targets[start : start + step], batch_seed(context.seed, start)
            )
            rows = wrapper.take()
            owner = wrapper.take_owners().to(rows.device)
            if not count_unperturbed:
                keep = ~wrapper.take_unperturbed().to(rows.device)
                rows, owner = rows[keep], owner[keep]
            # A stable sort groups each image's rows in the order they were sent.
            order = torch.sort(owner, stable=True).indices
            rows, owner = rows[order], owner[order]
            counts = torch.bincount(owner, minlength=len(chunk)).cpu().numpy()
            queries[start : start + len(chunk)] = counts
            if max_queries_per_image is not None and (counts > max_queries_per_image).any():
                rows, owner = _capped_rows(rows, owner, counts, max_queries_per_image, seed, start)
            kept.append(rows)
            owners.append(owner.cpu().numpy() + start)
    finally:
        for p, flag in zip(parameters, flags, strict=True):
            p.requires_grad_(flag)
    encodings = torch.cat(kept) if kept else wrapper.take()
    return encodings, np.concatenate(owners or [np.zeros(0, np.int64)]), queries


# ----------------------------------------------------------------------- distances


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
    """Sorted indices of at most ``max_per_class`` images of each class, seeded (the paper:
    50 from ImageNet's validation set). The dataset stores have no validation split: the
    test split (``hermitry.split``), which the model never trained on, plays its part."""
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
    from saliencybench.data import resize_batch

    resized = resize_batch(np.ascontiguousarray(images), size)
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
    chance_margin: float | None = None,
    threshold_rule: str = "interpolated",
    output,
) -> None:
    """Fit the class Gaussians, the thresholds and the controls of one model; write them.

    ``threshold_rule`` is how T_c comes from the validation distances (:func:`thresholds`).

    The store holds the fit (``means``, ``precisions``, ``shrinkage``, ``threshold`` over
    ``class``), the validation images (``validation`` over ``explained``: indices into
    ``split``) and the long table of the controls (:data:`summary.CONTROLS`): the training
    images (``train_train``), the validation images (``train_val``: H = 1 - percentile/100 by
    construction), ``noise_images`` of uniform pixel noise (``white_noise``) and as many
    test images of the dataset at ``foreign_path`` (``foreign``, resized and
    channel-adapted), the last two measured against every class. A model below chance +
    ``chance_margin`` test accuracy is refused (None: no check).
    """
    started = time.perf_counter()
    run = load_run(data_path, checkpoint, sidecar_path, device, chance_margin=chance_margin)
    dataset, model = run.dataset, run.model
    chosen = resolve_classes(classes, len(dataset.class_names))
    train = dataset["train"]
    train_h = penultimate_encodings(model, run.inputs("train"), batch_size)
    fit = fit_classes(train_h.cpu().numpy(), train.labels, chosen, covariance)
    in_classes = np.isin(train.labels, chosen)
    train_train = Distances.of(
        _distances(
            train_h[torch.as_tensor(in_classes, device=run.device)],
            train.labels[in_classes],
            fit,
        ),
        train.labels[in_classes],
        image=np.flatnonzero(in_classes),
        source="train_train",
    )
    val_split = dataset[split]
    indices = validation_subset(val_split.labels, chosen, max_per_class, seed)
    val_labels = val_split.labels[indices]
    val_h = penultimate_encodings(model, run.inputs(split, indices), batch_size)
    val_d = _distances(val_h, val_labels, fit)
    threshold = thresholds(val_d, val_labels, fit, percentile, threshold_rule)
    parts = [
        train_train,
        Distances.of(val_d, val_labels, image=indices, source="train_val"),
    ]
    c, size = train.images.shape[1], train.images.shape[-1]
    if noise_images:
        rng = np.random.default_rng([seed, NOISE_STREAM])
        noise = rng.integers(0, 256, size=(noise_images, c, size, size), dtype=np.uint8)
        noise_x = normalize(noise, dataset.mean, dataset.std, run.device)
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
        foreign_x = normalize(adapted, dataset.mean, dataset.std, run.device)
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
        provenance(
            run,
            kind="reference",
            split=split,
            covariance=covariance,
            percentile=float(percentile),
            threshold_rule=threshold_rule,
            foreign=foreign_name,
            class_names=[dataset.class_names[k] for k in chosen],
            seed=seed,
        ),
        output,
    )


def _validation_inputs(run: ModelRun, ref) -> tuple[np.ndarray, np.ndarray, Tensor, np.ndarray]:
    """``(indices, uint8 images, normalized inputs, labels)`` of the reference's validation
    images."""
    split = str(ref.attrs["split"])
    indices = ref["validation"].values.astype(np.int64)
    images = run.dataset[split].images[indices]
    labels = ref["validation_labels"].values.astype(np.int64)
    return indices, images, run.inputs(split, indices), labels


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
    chance_margin: float | None = None,
    count_unperturbed: bool = True,
    output,
) -> None:
    """The distances of the inputs one method sends to the model while it explains the
    validation images, each measured against the class of the image it came from; the store
    also keeps ``queries`` per image (before the cap). ``count_unperturbed`` False leaves
    out the unperturbed image (:func:`capture_method`).

    Args:
        method_name, method_entry: the method's config name (the store's ``source``) and
            its ``methods`` entry.
        target_rule: ``predicted`` or ``label``: the class each explanation is for.
        chance_margin: a model below chance + this test accuracy is refused; None: no check.
    """
    from saliencybench.methods import AttributionContext

    method = resolve_method(method_name, method_entry)
    run = load_run(data_path, checkpoint, sidecar_path, device, chance_margin=chance_margin)
    ref = read_reference(reference_path)
    fit = fit_of(ref)
    indices, _, inputs, labels = _validation_inputs(run, ref)
    targets = explained_classes(
        run, inputs, torch.as_tensor(labels, device=run.device), target_rule, batch_size
    )
    started = time.perf_counter()
    encodings, owner, queries = capture_method(
        run.model,
        inputs,
        targets,
        method=method.registered,
        params=method.params,
        context=AttributionContext(
            seed=seed,
            input_range=dataset_input_range(run.dataset),
            mean=tuple(run.dataset.mean),
            std=tuple(run.dataset.std),
        ),
        max_queries_per_image=max_queries_per_image,
        seed=seed,
        count_unperturbed=count_unperturbed,
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
        provenance(
            run,
            kind="method",
            # no reduction: the capture keeps the queries, not the maps
            method=method.registered,
            name=method_name,
            parameters=method.params,
            target_rule=target_rule,
            max_queries_per_image=-1 if max_queries_per_image is None else max_queries_per_image,
            count_unperturbed=int(count_unperturbed),
            seed=seed,
        ),
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
    curves_fill: Any,
    square_side: int | list[int],
    noise_std: Any,
    baseline: Any,
    infidelity_samples: int,
    batch_size: int,
    seed: int,
    noise_clip: bool = False,
) -> Distances:
    """Distances of the inputs this project's own evaluations create from the images,
    beyond the paper: ROAR-masked images per fraction (``roar``), the MIF/LIF images per step
    that :func:`perturbation_curves` sends (``mif``, ``lif``, captured), and the infidelity
    perturbations of the robustness evaluation (``infidelity_square``, ``infidelity_noisy``).

    Args:
        images: uint8 (N, C, H, W); inputs: the same normalized, on the model's device.
        maps: (N, H, W) maps by method name (ranking ROAR and MIF/LIF); targets: the class
            each map explains (the MIF/LIF logit; unused for the encodings).
        fractions, roar_fill, blur_sigma: ROAR masking (mode ``roar``).
        steps, curves_fill: the MIF/LIF steps k/K and the fill value
            (:mod:`saliencybench.units`).
        square_side, noise_std, baseline, infidelity_samples, noise_clip: the infidelity
            perturbations, ``infidelity_samples`` copies per image.
    """
    from saliencybench.evaluations.curves.compute import perturbation_curves
    from saliencybench.evaluations.curves.spec import ORDERS
    from saliencybench.evaluations.robustness.compute import noisy_baseline, square_removal
    from saliencybench.inference import normalized_fill, normalized_scale, pixel_bounds
    from saliencybench.masking import mask_images

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
            fill_value=normalized_fill(curves_fill, inputs, mean, std),
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
        x0 = normalized_fill(baseline, inputs, mean, std)
        scale = normalized_scale(noise_std, inputs, std)
        clip = pixel_bounds(inputs, mean, std) if noise_clip else None
        perturbations = {
            "infidelity_square": square_removal(square_side, x0, generator),
            "infidelity_noisy": noisy_baseline(scale, x0, generator, clip),
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
    attribution_paths: Sequence[str],
    *,
    map_methods: Sequence[str],
    fractions: Sequence[float],
    roar_fill: str,
    blur_sigma: float,
    steps: int,
    curves_fill: Any,
    square_side: int | list[int] | None,
    noise_std: Any,
    baseline: Any,
    infidelity_samples: int,
    batch_size: int,
    seed: int,
    device: str,
    chance_margin: float | None = None,
    noise_clip: bool = False,
    output,
) -> None:
    """The job of :func:`evaluation_inputs`, with the maps of the reference's split.

    Args:
        attribution_paths: one attribution store per name of ``map_methods``, in order.
        square_side: None for the default of :func:`saliencybench.methods.square_side`, or a
            list of sides.
        chance_margin: a model below chance + this test accuracy is refused; None: no check.
    """
    from saliencybench.methods import square_sides

    run = load_run(data_path, checkpoint, sidecar_path, device, chance_margin=chance_margin)
    ref = read_reference(reference_path)
    split = str(ref.attrs["split"])
    indices, images, inputs, labels = _validation_inputs(run, ref)
    maps, targets = {}, {}
    for name, path in zip(map_methods, attribution_paths, strict=True):
        stored = read_maps(path, run, split, "the hermitry of the evaluation inputs")
        maps[name] = np.asarray(stored[split].maps)[indices]
        targets[name] = np.asarray(stored[split].targets)[indices]
    h, w = images.shape[-2:]
    started = time.perf_counter()
    table = evaluation_inputs(
        run.model,
        images,
        inputs,
        labels,
        indices,
        maps,
        targets,
        fit_of(ref),
        mean=run.dataset.mean,
        std=run.dataset.std,
        fractions=fractions,
        roar_fill=roar_fill,
        blur_sigma=blur_sigma,
        steps=steps,
        curves_fill=curves_fill,
        square_side=square_sides(square_side, h, w),
        noise_std=noise_std,
        baseline=baseline,
        noise_clip=noise_clip,
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
    _write(table, None, provenance(run, kind="evaluations", methods=list(maps), seed=seed), output)
