"""The start of every job that runs a model: load the dataset and the model with every hash
check, resolve the method entry, read the explained classes, and record provenance.

Each job that runs a trained model begins with :func:`load_run` and ends by writing
:func:`provenance` into its store's attributes, so every store can be traced to the data,
the checkpoint and the software that made it, and no job runs on a model trained on other
data or on maps of another checkpoint.
"""

from __future__ import annotations

import json
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
    try:
        sidecar = json.loads(Path(sidecar_path).read_text())
    except (OSError, ValueError) as error:
        raise store.StoreError(f"{sidecar_path}: unreadable checkpoint sidecar ({error})") from None
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


def load_run(
    data_path: str | Path, checkpoint: str | Path, sidecar_path: str | Path, device: str
) -> ModelRun:
    """Read a dataset store and the model trained on it, with every hash check.

    The dataset's content hash is verified as it is read, the checkpoint's SHA-256 against
    its sidecar, and the sidecar's data hash against the dataset.
    """
    target_device = resolve_device(device)
    dataset = store.read_dataset(data_path)
    model, sidecar = load_trained_model(checkpoint, sidecar_path, target_device)
    _check_data(sidecar, dataset, checkpoint, data_path)
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
        """The method's part of a store's provenance."""
        return {
            "method": self.registered,
            "name": self.name,
            "parameters": self.params,
            "reduction": self.reduction,
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
