"""Running a trained model: device resolution, seeding, normalization, batched logits.

Every job that runs a model uses these; training and every evaluation import them from
here, so no evaluation reaches into another module for its inference helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from saliencybench import units


class DeviceError(ValueError):
    """A ``device`` that this machine cannot provide."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU.

    On CUDA, convolutions and matrix products run in full float32: cuDNN's default TF32
    keeps 10 bits of mantissa, and the evaluations are compared with the CPU's numbers
    (``tests/test_cuda.py``), some of them small differences of large logits.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available")
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return device


def seed_everything(seed: int, device: torch.device | str = "cpu") -> None:
    """Seed Python-visible RNGs and make kernels deterministic where PyTorch can.

    On CUDA, some backward kernels (adaptive pooling, index accumulation) add with atomics
    in whatever order the threads run: PyTorch's deterministic mode takes the ordered ones,
    and warns where none exists. cuBLAS needs a fixed workspace for the same; the variable
    is read when its first handle is made, which no job does before this call. On the CPU
    the kernels are deterministic already, and the mode is left alone: switching it imports
    torch's compiler stack, several seconds of every training job's start-up.

    Args:
        device: the device the job computes on.
    """
    import os

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    if torch.device(device).type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def normalize(
    images: np.ndarray | Tensor, mean: list[float], std: list[float], device: torch.device
) -> Tensor:
    """uint8 (N, C, H, W) images to float32 z-scores per channel on ``device``."""
    tensor = torch.as_tensor(images, device=device).float().div_(255.0)
    mean_t = torch.tensor(mean, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    return tensor.sub_(mean_t).div_(std_t)


def normalized_fill(
    value: Any,
    inputs: Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> float | Tensor:
    """A baseline or fill (:func:`saliencybench.units.check_fill`) in the normalized space:
    the number itself when it was given there (so such results do not change by a bit), else
    a tensor of one value per channel shaped (1, C, H, W) like one input, on its device.

    Args:
        value: anything :func:`saliencybench.units.check_fill` accepts.
        inputs: a batch (N, C, H, W) the value is for.
        mean, std: the dataset's channel normalization in pixel units [0, 1].

    Raises:
        ValueError: a value in pixel units without ``mean`` and ``std``.
    """
    value = units.check_fill(value)
    if isinstance(value, float):
        return value
    values = units.fill_values(value, mean, std, inputs.shape[1])
    column = torch.as_tensor(values, dtype=inputs.dtype, device=inputs.device)
    return column.view(1, -1, 1, 1).expand(1, *inputs.shape[1:])


def normalized_scale(
    value: Any, inputs: Tensor, std: Sequence[float] | None = None
) -> float | Tensor:
    """A noise standard deviation (:func:`saliencybench.units.check_scale`) in the normalized
    space: the number itself when it was given there, else a (1, C, 1, 1) tensor."""
    value = units.check_scale(value)
    if isinstance(value, float):
        return value
    values = units.scale_values(value, std, inputs.shape[1])
    return torch.as_tensor(values, dtype=inputs.dtype, device=inputs.device).view(1, -1, 1, 1)


def pixel_bounds(
    inputs: Tensor, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[Tensor, Tensor]:
    """What pixel values 0 and 1 are in the normalized space, (1, C, 1, 1) each: the bounds
    that keep a perturbed input a possible image (``torch.clamp(x, *bounds)``).

    Raises:
        ValueError: without ``mean`` and ``std``.
    """
    low, high = (normalized_fill(end, inputs, mean, std)[..., :1, :1] for end in ("black", "white"))
    return low, high


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
