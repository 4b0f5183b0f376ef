"""The backbone stages, one function each: prepare a dataset, train a model, attribute.

Workflow scripts call exactly one of these; every function checks its inputs before heavy
work, writes its outputs atomically and logs progress through ``logging``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench import store

log = logging.getLogger("saliencybench")


# ----------------------------------------------------------------------- prepare_data


def prepare_dataset(name: str, entry: dict[str, Any], *, seed: int, output: str | Path) -> str:
    """Load a dataset source and write its dataset store.

    Args:
        name: the dataset's name in config.
        entry: its config entry (``source`` and ``options``).
        seed: seeds splits and procedural data.
        output: path of the ``.zarr`` store to write.

    Returns:
        The content hash of the written store.
    """
    from saliencybench.data import channel_stats, load_source

    started = time.perf_counter()
    arrays = load_source(entry["source"], dict(entry.get("options", {})), seed)
    mean, std = channel_stats(arrays.train.images)
    splits = {
        split: store.DatasetSplit(part.images, part.labels, part.masks)
        for split, part in (("train", arrays.train), ("test", arrays.test))
    }
    digest = store.write_dataset(
        output,
        splits,
        class_names=arrays.class_names,
        mean=mean,
        std=std,
        source=arrays.source,
        extra_attrs={"name": name, "options": dict(entry.get("options", {})), "seed": seed},
    )
    log.info(
        "dataset %s: %d train / %d test images of shape %s, %d classes, %.1fs",
        name,
        len(arrays.train.labels),
        len(arrays.test.labels),
        tuple(arrays.train.images.shape[1:]),
        len(arrays.class_names),
        time.perf_counter() - started,
    )
    return digest


# ----------------------------------------------------------------------- train


@dataclass
class FitResult:
    """A model trained on a dataset store, with what its sidecar records."""

    model: Any
    history: list[dict[str, float]]
    train_accuracy: float
    test_accuracy: float
    seconds: float
    device: str


def fit(
    dataset: store.DatasetStore,
    *,
    model_name: str,
    model_entry: dict[str, Any],
    recipe_name: str,
    recipe_entry: dict[str, Any],
    seed: int,
    device: str,
) -> FitResult:
    """Build a model from ``seed``, train it on the train split, measure both splits.

    The same seed gives the same initial weights, batch order and augmentation, so the
    unmasked training of seed ``s`` is the fraction-0 point of a ROAR retraining with seed ``s``.
    """
    import torch

    from saliencybench.inference import accuracy, normalize, resolve_device, seed_everything
    from saliencybench.models import build_model
    from saliencybench.training import Recipe, check_outputs, train_model

    recipe = Recipe.from_config(recipe_entry)
    target_device = resolve_device(device)
    train_split, test_split = dataset["train"], dataset["test"]
    _, channels, height, _ = train_split.images.shape
    seed_everything(seed, target_device)
    model = build_model(
        model_entry["architecture"],
        in_channels=channels,
        num_classes=len(dataset.class_names),
        image_size=height,
        weights=model_entry.get("weights"),
    ).to(target_device)
    train_x = normalize(train_split.images, dataset.mean, dataset.std, target_device)
    train_y = torch.as_tensor(train_split.labels, device=target_device)
    test_x = normalize(test_split.images, dataset.mean, dataset.std, target_device)
    test_y = torch.as_tensor(test_split.labels, device=target_device)
    log.info(
        "training %s (%s) with recipe %s, seed %d, on %s: %d images, %d epochs",
        model_name,
        model_entry["architecture"],
        recipe_name,
        seed,
        target_device,
        len(train_y),
        recipe.epochs,
    )
    started = time.perf_counter()
    history = train_model(
        model, train_x, train_y, recipe, seed=seed, mean=dataset.mean, std=dataset.std
    )
    seconds = time.perf_counter() - started
    check_outputs(model, test_x, f"{model_name} with recipe {recipe_name}, seed {seed}")
    result = FitResult(
        model=model,
        history=history,
        train_accuracy=accuracy(model, train_x, train_y),
        test_accuracy=accuracy(model, test_x, test_y),
        seconds=seconds,
        device=str(target_device),
    )
    log.info(
        "test accuracy %.4f (train %.4f) after %.1fs",
        result.test_accuracy,
        result.train_accuracy,
        result.seconds,
    )
    return result


def train(
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
    relabel: Callable[[store.DatasetStore], tuple[store.DatasetStore, dict[str, Any]]]
    | None = None,
) -> dict[str, Any]:
    """Train one model on a dataset store and write its checkpoint and JSON sidecar.

    Args:
        relabel: trains on ``relabel(dataset)[0]`` instead of the store's own labels and
            adds ``relabel(dataset)[1]`` to the sidecar (the data randomization test's
            permuted labels); the sidecar's data hash and accuracies stay the store's.

    Returns:
        The sidecar: architecture, recipe, seed, accuracies, data hash, history.
    """
    dataset = store.read_dataset(data_path)
    trained_on, extra = (dataset, None) if relabel is None else relabel(dataset)
    result = fit(
        trained_on,
        model_name=model_name,
        model_entry=model_entry,
        recipe_name=recipe_name,
        recipe_entry=recipe_entry,
        seed=seed,
        device=device,
    )
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
        extra=extra,
    )


def save_trained(
    result: FitResult,
    dataset: store.DatasetStore,
    data_path: str | Path,
    *,
    model_name: str,
    model_entry: dict[str, Any],
    recipe_name: str,
    recipe_entry: dict[str, Any],
    seed: int,
    checkpoint: str | Path,
    sidecar_path: str | Path,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a trained model's checkpoint (a plain ``state_dict``) and its JSON sidecar.

    Args:
        result: what :func:`fit` returned for ``dataset``.
        extra: more sidecar entries (how the training differed from the recipe).

    Returns:
        The sidecar: architecture, recipe, seed, accuracies (and chance: the share of the
        most frequent test class), data hash, history.
    """
    import torch

    from saliencybench import jobkit

    _, channels, height, width = dataset["train"].images.shape
    sidecar = {
        "architecture": model_entry["architecture"],
        "model": model_name,
        "recipe": recipe_name,
        "recipe_config": recipe_entry,
        "seed": seed,
        "in_channels": channels,
        "num_classes": len(dataset.class_names),
        "image_size": height,
        "image_shape": [channels, height, width],
        "dataset": str(dataset.attrs.get("name", Path(data_path).stem)),
        "data_hash": dataset.content_hash,
        "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy,
        # the most frequent test class's share: what test_accuracy must clearly beat
        "chance_accuracy": jobkit.chance_accuracy(dataset["test"].labels),
        "history": result.history,
        "train_seconds": result.seconds,
        "device": result.device,
        "versions": jobkit.software_versions(),
        **dict(extra or {}),
    }
    from saliencybench.models import with_module_metadata

    state = with_module_metadata(
        {k: v.detach().cpu() for k, v in result.model.state_dict().items()}, result.model
    )
    with store.atomic_path(checkpoint) as tmp:
        torch.save(state, tmp)
    sidecar["checkpoint_sha256"] = store.file_hash(checkpoint)
    store.write_json(sidecar_path, sidecar)
    return sidecar


# ----------------------------------------------------------------------- attribute


def attribute(
    data_path: str | Path,
    checkpoint: str | Path,
    sidecar_path: str | Path,
    *,
    method_name: str,
    method_entry: dict[str, Any],
    target_rule: str,
    splits: list[str],
    batch_size: int,
    seed: int,
    device: str,
    chance_margin: float | None = None,
    output: str | Path,
) -> None:
    """Compute attribution maps of one method for the chosen splits and write the store.

    Args:
        method_name: the method's name in config (the store's file name).
        method_entry: its config entry: ``method`` (registry name), ``reduction``,
            ``store_raw`` and the method's parameters.
        target_rule: ``predicted`` (the model's own class) or ``label``.
        splits: dataset splits to attribute, unless the entry names its own ``splits``.
        seed: base seed; the batch starting at index i uses ``seed + i``.
        chance_margin: a model below chance + this test accuracy is refused
            (:func:`saliencybench.jobkit.check_learned`); None checks nothing.
    """
    from saliencybench.inference import normalize, predict_logits
    from saliencybench.jobkit import load_run, provenance, resolve_method
    from saliencybench.methods import AttributionContext, attribute_dataset

    method = resolve_method(method_name, method_entry)
    splits = list(method_entry.get("splits") or splits)
    run = load_run(data_path, checkpoint, sidecar_path, device, chance_margin=chance_margin)
    dataset, model, target_device = run.dataset, run.model, run.device
    inputs = {
        split: normalize(dataset[split].images, dataset.mean, dataset.std, target_device)
        for split in splits
    }
    low = min(float(x.min()) for x in inputs.values())
    high = max(float(x.max()) for x in inputs.values())
    context = AttributionContext(
        seed=seed,
        input_range=(low, high),
        mean=tuple(dataset.mean),
        std=tuple(dataset.std),
    )
    results = {}
    for split in splits:
        x = inputs[split]
        started = time.perf_counter()
        logits = predict_logits(model, x, batch_size)
        targets = logits.argmax(1) if target_rule == "predicted" else run.labels(split)
        maps, raw = attribute_dataset(
            model,
            x,
            targets,
            method.registered,
            method.params,
            context=context,
            batch_size=batch_size,
            reduction=method.reduction,
            keep_raw=bool(method_entry.get("store_raw", False)),
            progress=True,
        )
        seconds = time.perf_counter() - started
        log.info(
            "%s on %s split: %d images in %.1fs (%.1f images/s)",
            method_name,
            split,
            len(x),
            seconds,
            len(x) / max(seconds, 1e-9),
        )
        results[split] = store.AttributionSplit(maps, targets.cpu().numpy().astype(np.int64), raw)
    store.write_attributions(
        output,
        results,
        {**method.attrs(), **provenance(run, target_rule=target_rule, seed=seed)},
    )
