"""What several test files share: the repository root, the one-line config error check,
and a tiny convolutional network with the small method parameters that keep tests quick."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from saliencybench.config import ConfigError, validate

ROOT = Path(__file__).resolve().parents[1]

# Image channels, height, width and classes of the tiny test network.
C, H, W, K = 3, 12, 12, 5


def linear_classifier() -> nn.Sequential:
    """Logits W x + b of flattened (C, H, W) images, seeded: the model of the closed forms."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(C * H * W, K)).eval()


def config_error(config) -> str:
    """The message of the ConfigError that ``validate(config)`` raises; it is one line."""
    with pytest.raises(ConfigError) as caught:
        validate(config)
    message = str(caught.value)
    assert "\n" not in message
    return message


SMALL = {
    "integrated_gradients": {"n_steps": 8},
    "smoothgrad": {"nt_samples": 4},
    "smoothgrad_sq": {"nt_samples": 4},
    "vargrad": {"nt_samples": 5, "nt_samples_batch_size": 2},  # exercises captum's remainder
    "occlusion": {"window_size": 4, "stride": 2, "perturbations_per_eval": 16},
    # alpha: captum's Lasso default 0.01 zeroes every coefficient of this tiny, flat net
    "lime": {"n_segments": 8, "n_samples": 20, "perturbations_per_eval": 10, "alpha": 1e-4},
    "kernel_shap": {
        "segmentation": "grid",
        "cell_size": 4,
        "n_samples": 20,
        "perturbations_per_eval": 10,
    },
    "anchor": {
        "segmentation": "grid",
        "cell_size": 4,
        "batch_size": 20,
        "coverage_samples": 500,
        "max_samples": 200,
    },
}


class ConvNet(nn.Module):
    """conv-relu-conv-relu-pool-linear with a distinct ReLU module per use.

    conv2 has stride 2, so Grad-CAM's map (6 x 6) must be upsampled.
    """

    def __init__(self, channels: int = C) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(6 * (H // 4) * (W // 4), K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
        return self.fc(x.flatten(1))


def fresh_python(code: str, timeout: int = 120) -> str:
    """Run ``code`` in a new interpreter on the package's sources (nothing imported yet, as
    a job starts) and return what it printed; a failure shows its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
