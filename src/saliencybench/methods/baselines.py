"""Model-free baselines: seeded random scores and Sobel edges."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from saliencybench.methods.base import Method, register_method


@register_method
class RandomMethod(Method):
    """``random``: i.i.d. uniform [0, 1) scores per pixel, seeded; the control of every table.

    No parameters. Channel-less. Drawn on the CPU so that the numbers do not depend on the
    device.
    """

    name = "random"
    channelwise = False
    deterministic = False

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        n, _, h, w = inputs.shape
        gen = torch.Generator().manual_seed(batch_seed)
        return torch.rand((n, 1, h, w), generator=gen).to(inputs.device)


@register_method
class SobelMethod(Method):
    """``sobel``: Sobel edge magnitude of each channel of the image (model-free baseline).

    No parameters. Equals ``skimage.filters.sobel`` per channel:
    sqrt((g_x^2 + g_y^2) / 2) with kernels [1, 0, -1] x [1, 2, 1] / 4 and 'reflect' borders
    (replicate padding is the same for a 1-pixel pad).
    """

    name = "sobel"

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        n, c, h, w = inputs.shape
        x = inputs.detach().to(torch.float32).reshape(n * c, 1, h, w)
        smooth = torch.tensor([1.0, 2.0, 1.0], device=x.device) / 4
        edge = torch.tensor([1.0, 0.0, -1.0], device=x.device)
        along_w = smooth[:, None] * edge[None, :]
        kernels = torch.stack([along_w, along_w.T])[:, None]  # (2,1,3,3): d/dW and d/dH
        grads = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels)
        magnitude = torch.sqrt(grads.square().sum(dim=1) / 2)
        return magnitude.reshape(n, c, h, w)
