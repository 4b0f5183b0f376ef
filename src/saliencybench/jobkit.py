"""The start of every job that runs a model: load the dataset and the model with every hash
check, resolve the method entry, read the explained classes, and record provenance.

Each job that runs a trained model begins with :func:`load_run` and ends by writing
:func:`provenance` into its store's attributes, so every store can be traced to the data,
the checkpoint and the software that made it, and no job runs on a model trained on other
data, on maps of another checkpoint, or on a model that learned nothing (its test accuracy
not clearly above chance, :func:`check_learned`).
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from saliencybench import store
from saliencybench.inference import normalize, predict_logits, resolve_device
from saliencybench.planning import method_params, method_reduction

log = logging.getLogger("saliencybench")


def software_versions() -> dict[str, str]:
    """Versions of the packages that decide the numbers, for provenance attributes."""
    versions = {"python": platform.python_version()}
    for package in ("saliencybench", "torch", "torchvision", "captum", "numpy", "zarr"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def build_from_sidecar(sidecar: Mapping[str, Any]) -> nn.Module:
    """An untrained model of the architecture a checkpoint sidecar describes."""
    from saliencybench.models import build_model

    return build_model(
        sidecar["architecture"],
        in_channels=sidecar["in_channels"],
        num_classes=sidecar["num_classes"],
        image_size=sidecar["image_size"],
    )


def load_trained_model(
    checkpoint: str | Path, sidecar_path: str | Path, device: torch.device | str
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from its checkpoint (``weights_only=True``) and sidecar.

    The checkpoint's SHA-256 must equal the one its sidecar records.

    Returns:
        ``(model in eval mode on device, sidecar dict)``.
    """
    sidecar = store.read_json(sidecar_path, "checkpoint sidecar")
    expected = sidecar.get("checkpoint_sha256")
    if not Path(checkpoint).is_file():
        raise store.StoreError(f"{checkpoint}: checkpoint does not exist")
    if expected and store.file_hash(checkpoint) != expected:
        raise store.StoreError(
            f"{checkpoint}: checksum differs from its sidecar {sidecar_path}; retrain the model"
        )
    from saliencybench.models import with_module_metadata

    model = build_from_sidecar(sidecar)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(with_module_metadata(state, model))
    except Exception as error:
        raise store.StoreError(
            f"{checkpoint}: unreadable checkpoint ({type(error).__name__}: {error}); "
            "delete it and rerun"
        ) from None
    return model.to(device).eval(), sidecar


@dataclass
class ModelRun:
    """A dataset store and a model trained on it, loaded on the job's device."""

    dataset: store.DatasetStore
    model: nn.Module
    sidecar: dict[str, Any]
    device: torch.device
    data_path: str
    checkpoint: str

    def inputs(self, split: str, indices: np.ndarray | None = None) -> Tensor:
        """Normalized images of ``split`` (those at ``indices``), on the device."""
        images = self.dataset[split].images
        if indices is not None:
            images = images[indices]
        return normalize(images, self.dataset.mean, self.dataset.std, self.device)

    def labels(self, split: str, indices: np.ndarray | None = None) -> Tensor:
        labels = self.dataset[split].labels
        if indices is not None:
            labels = labels[indices]
        return torch.as_tensor(labels, device=self.device)

    def load_beside(self, checkpoint: str | Path, sidecar_path: str | Path):
        """Another model trained on the same dataset store (the permuted-label model).

        No :func:`check_learned` here: the data randomization test's model is meant to be at
        chance on the true test labels.

        Returns:
            ``(model, sidecar)``.
        """
        model, sidecar = load_trained_model(checkpoint, sidecar_path, self.device)
        _check_data(sidecar, self.dataset, checkpoint, self.data_path)
        return model, sidecar


def _check_data(sidecar: Mapping[str, Any], dataset: store.DatasetStore, checkpoint, data_path):
    if sidecar.get("data_hash") != dataset.content_hash:
        raise store.StoreError(
            f"{checkpoint}: trained on data {str(sidecar.get('data_hash', '?'))[:12]}, but "
            f"{data_path} holds {dataset.content_hash[:12]}; retrain the model"
        )


def dataset_input_range(dataset: store.DatasetStore) -> tuple[float, float]:
    """(min, max) of the normalized images of both splits, from the uint8 extremes per
    channel (normalization is increasing in each channel), without normalizing them all."""
    mean = np.asarray(dataset.mean, dtype=np.float64)
    std = np.asarray(dataset.std, dtype=np.float64)
    low = np.min([dataset[s].images.min(axis=(0, 2, 3)) for s in store.SPLITS], axis=0)
    high = np.max([dataset[s].images.max(axis=(0, 2, 3)) for s in store.SPLITS], axis=0)
    return float(((low / 255.0 - mean) / std).min()), float(((high / 255.0 - mean) / std).max())


class ModelNotLearnedError(ValueError):
    """A trained model whose test accuracy is not clearly above chance: its explanations
    would explain noise, so no evaluation runs on it."""


def chance_accuracy(labels: np.ndarray) -> float:
    """The accuracy of always answering the most frequent class of ``labels`` (0 if empty).

    Chance for an imbalanced split, where 1/K would flatter a model that learned only the
    majority class.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return 0.0
    return float(np.bincount(labels.astype(np.int64)).max() / labels.size)


def check_learned(
    sidecar: Mapping[str, Any],
    dataset: store.DatasetStore,
    margin: float | None,
    checkpoint: str | Path,
) -> None:
    """Refuse a model whose test accuracy is below chance + ``margin``.

    Chance comes from the dataset store's test labels (:func:`chance_accuracy`), not from
    the sidecar, so sidecars written before it recorded ``chance_accuracy`` are checked too;
    ``test_accuracy`` is the sidecar's, measured on the same store (its data hash is checked
    before this).

    Args:
        margin: the config key ``chance_margin``; None checks nothing.

    Raises:
        ModelNotLearnedError: one line naming the model, both accuracies and what to try.
        StoreError: a sidecar without ``test_accuracy``.
    """
    if margin is None:
        return
    accuracy = sidecar.get("test_accuracy")
    if accuracy is None:
        raise store.StoreError(f"{checkpoint}: its sidecar records no test_accuracy; retrain it")
    chance = chance_accuracy(dataset["test"].labels)
    required = chance + margin
    model = sidecar.get("model") or sidecar.get("architecture", "?")
    recipe = sidecar.get("recipe", "?")
    name = (
        f"model {model} (dataset {sidecar.get('dataset', '?')}, recipe {recipe}, "
        f"seed {sidecar.get('seed', '?')})"
    )
    # accuracies are shares of a finite split: a tolerance keeps chance + margin itself a
    # pass; written as `not >=` so that a NaN accuracy is refused too
    if not float(accuracy) + 1e-9 >= required:
        raise ModelNotLearnedError(
            f"{name}: test accuracy {100 * float(accuracy):.1f} % is not clearly above chance "
            f"({100 * chance:.1f} %, the most frequent class) — required "
            f"{100 * required:.1f} % (config key chance_margin: {margin:g}); train longer "
            f"(recipes.{recipe}.epochs), raise recipes.{recipe}.lr, check that the classes "
            "differ in the images, or set chance_margin: null to evaluate it anyway"
        )
    log.info(
        "%s: test accuracy %.1f %% >= %.1f %% (chance %.1f %% + margin %g)",
        name,
        100 * float(accuracy),
        100 * required,
        100 * chance,
        margin,
    )


def load_run(
    data_path: str | Path,
    checkpoint: str | Path,
    sidecar_path: str | Path,
    device: str,
    *,
    chance_margin: float | None = None,
) -> ModelRun:
    """Read a dataset store and the model trained on it, with every hash check, and refuse
    a model that learned nothing.

    The dataset's content hash is verified as it is read, the checkpoint's SHA-256 against
    its sidecar, and the sidecar's data hash against the dataset; then the model's test
    accuracy must reach chance + ``chance_margin`` (:func:`check_learned`).

    Args:
        chance_margin: the config key ``chance_margin``, which every workflow job passes;
            None checks no accuracy (the default, for callers outside the workflow).

    Raises:
        ModelNotLearnedError: a model not clearly above chance.
    """
    target_device = resolve_device(device)
    dataset = store.read_dataset(data_path)
    model, sidecar = load_trained_model(checkpoint, sidecar_path, target_device)
    _check_data(sidecar, dataset, checkpoint, data_path)
    check_learned(sidecar, dataset, chance_margin, checkpoint)
    return ModelRun(dataset, model, sidecar, target_device, str(data_path), str(checkpoint))


def read_maps(path: str | Path, run: ModelRun, split: str, purpose: str) -> store.AttributionStore:
    """An attribution store of ``run``'s checkpoint that maps ``split``.

    Args:
        purpose: what needs the maps, for the message when ``split`` is missing.
    """
    attributions = store.read_attributions(path)
    if split not in attributions.splits:
        raise store.StoreError(
            f"{path}: no maps of the {split} split; {purpose} needs them "
            "(add the split to the method's 'splits')"
        )
    if attributions.attrs.get("checkpoint_sha256") != run.sidecar.get("checkpoint_sha256"):
        raise store.StoreError(
            f"{path}: maps of another checkpoint than {run.checkpoint}; rerun attribute"
        )
    return attributions


@dataclass(frozen=True)
class MethodChoice:
    """A ``methods`` entry resolved: its config name, registry name, parameters, reduction."""

    name: str
    registered: str
    params: dict[str, Any]
    reduction: str

    def attrs(self) -> dict[str, Any]:
        """The method's part of a store's provenance, with the unit of each baseline, fill
        and noise scale among its parameters (``parameter_units``)."""
        from saliencybench.methods import METHODS

        described = METHODS.get(self.registered).parameter_units(self.params)
        return {
            "method": self.registered,
            "name": self.name,
            "parameters": self.params,
            "reduction": self.reduction,
            **({"parameter_units": described} if described else {}),
        }


def resolve_method(name: str, entry: Mapping[str, Any]) -> MethodChoice:
    """Resolve and check a ``methods`` entry before any heavy work.

    Raises:
        MethodError: an unknown method, parameter or reduction, named in the message.
    """
    from saliencybench.methods import check_method

    registered = entry["method"]
    params = method_params(entry)
    reduction = method_reduction(entry)
    check_method(registered, {**params, "reduction": reduction})
    return MethodChoice(name, registered, params, reduction)


def explained_classes(
    run: ModelRun, inputs: Tensor, labels: Tensor, rule: str, batch_size: int
) -> Tensor:
    """The class each image's explanation is for: ``predicted`` (the model's own) or
    ``label``."""
    if rule == "predicted":
        return predict_logits(run.model, inputs, batch_size).argmax(1)
    return labels


def provenance(run: ModelRun, **extra: Any) -> dict[str, Any]:
    """Store attributes that trace a result to its model, data and software."""
    return {
        "model": run.sidecar.get("model"),
        "recipe": run.sidecar.get("recipe"),
        "model_seed": run.sidecar.get("seed"),
        "checkpoint_sha256": run.sidecar.get("checkpoint_sha256")
        or store.file_hash(run.checkpoint),
        "data_hash": run.dataset.content_hash,
        **extra,
        "versions": software_versions(),
    }
