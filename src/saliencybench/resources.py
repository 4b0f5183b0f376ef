"""What a job asks its scheduler for: GPUs by the configured device, sizes of stores.

Rules read these through ``rules/common.smk`` (``gpus_per_job``, ``scaled_by_data``).
Nothing here imports torch, so the Snakefile stays quick to parse.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# Files the NVIDIA driver creates for each GPU it sees: one folder per GPU under the first,
# and the device node of the first GPU.
NVIDIA_GPU_FILES = (Path("/proc/driver/nvidia/gpus"), Path("/dev/nvidia0"))


def nvidia_gpu_visible(
    env: Mapping[str, str] | None = None, files: tuple[Path, ...] = NVIDIA_GPU_FILES
) -> bool:
    """Whether this machine has an NVIDIA GPU that CUDA could use, from the driver's files.

    ``CUDA_VISIBLE_DEVICES`` set to nothing (or ``-1``) hides every GPU, as it does for CUDA.
    """
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    listing, node = files
    return (listing.is_dir() and any(listing.iterdir())) or node.exists()


def gpus_for_device(device: str, gpu_visible: bool | None = None) -> int:
    """GPUs that one job running a model asks for, given the config's ``device``.

    ``cuda`` and ``cuda:N`` ask for 1, ``cpu`` for 0. ``auto`` asks for 1 only where this
    machine sees an NVIDIA GPU (``gpu_visible``, judged by :func:`nvidia_gpu_visible` when
    not given): the job then finds one where it runs, and a machine without one never
    waits for a GPU. A cluster login node without a GPU therefore asks for none under
    ``auto``; set ``device: cuda`` there.
    """
    if device == "auto":
        return int(nvidia_gpu_visible() if gpu_visible is None else gpu_visible)
    if device == "cpu":
        return 0
    if device == "cuda" or device.startswith("cuda:"):
        return 1
    raise ValueError(f"unknown device {device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")


def store_size_mb(path: str | os.PathLike) -> float:
    """Size in MB of a store (a folder of chunk files) or a file; 0 while it does not exist."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size / 2**20
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:  # a file removed while walking
                pass
    return total / 2**20


def scaled(base: float, per_mb: float, size_mb: float, attempt: int = 1) -> int:
    """``(base + per_mb x size_mb) x attempt``, rounded: a request that grows with the data
    and with each retry of a failed job."""
    return int(round(max(1, attempt) * (base + per_mb * size_mb)))
