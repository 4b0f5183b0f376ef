"""Running a trained model: device resolution, seeding, normalization, batched logits.

Every job that runs a model uses these; training and every evaluation import them from
here, so no evaluation reaches into another module for its inference helpers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class DeviceError(ValueError):
    """A ``device`` that this machine cannot provide."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python-visible RNGs and make kernels deterministic where PyTorch can."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def normalize(
    images: np.ndarray | Tensor, mean: list[float], std: list[float], device: torch.device
) -> Tensor:
    """uint8 (N, C, H, W) images to float32 z-scores per channel on ``device``."""
    tensor = torch.as_tensor(images, device=device).float().div_(255.0)
    mean_t = torch.tensor(mean, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    return tensor.sub_(mean_t).div_(std_t)


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: Tensor, batch_size: int = 256) -> Tensor:
    """Logits of ``model`` for ``inputs`` in eval mode, batched."""
    was_training = model.training
    model.eval()
    outputs = [
        model(inputs[start : start + batch_size]) for start in range(0, len(inputs), batch_size)
    ]
    model.train(was_training)
    return torch.cat(outputs) if outputs else inputs.new_zeros((0,))


def accuracy(model: nn.Module, inputs: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy in eval mode."""
    if len(inputs) == 0:
        return float("nan")
    predictions = predict_logits(model, inputs, batch_size).argmax(1)
    return float((predictions == labels).float().mean())
