"""Surrogate models over superpixels: Lime and Kernel SHAP, and the segmentations they use."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from captum.attr import KernelShap, Lime
from torch import Tensor

from saliencybench import units
from saliencybench.methods.base import (
    Checker,
    Method,
    _choice,
    _integer,
    _out,
    _quiet,
    _real,
    _seed_global,
    register_method,
)

_MULTI_INPUT_WARNING = "You are providing multiple inputs for Lime"


def grid_segments(inputs: Tensor, cell_size: int) -> Tensor:
    """Square cells of ``cell_size`` px numbered row-major: long tensor (N,1,H,W)."""
    n, _, h, w = inputs.shape
    rows = torch.arange(h, device=inputs.device) // cell_size
    cols = torch.arange(w, device=inputs.device) // cell_size
    labels = rows[:, None] * math.ceil(w / cell_size) + cols[None, :]
    return labels.expand(n, 1, h, w).contiguous()


def slic_segments(inputs: Tensor, n_segments: int, compactness: float) -> Tensor:
    """SLIC superpixels of each image, labels 0..k-1 per image: long tensor (N,1,H,W).

    SLIC runs on each image min-max scaled to [0, 1] over all its channels, channels last
    (3-channel images are converted to Lab by skimage). skimage segments one image at a time,
    hence the loop over images.
    """
    from skimage.segmentation import slic

    x = inputs.detach().to(torch.float64)
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    span = (x.amax(dim=(1, 2, 3), keepdim=True) - lo).clamp_min(1e-12)
    images = ((x - lo) / span).permute(0, 2, 3, 1).cpu().numpy()
    labels = np.stack(
        [
            # relabel to 0..k-1: captum sizes the surrogate by the largest label
            np.unique(
                slic(
                    img,
                    n_segments=n_segments,
                    compactness=compactness,
                    start_label=0,
                    channel_axis=-1,
                ),
                return_inverse=True,
            )[1].reshape(img.shape[:2])
            for img in images
        ]
    )
    return torch.from_numpy(labels).to(device=inputs.device, dtype=torch.long)[:, None]


# The superpixel parameters that ``_SurrogateMethod.feature_mask`` reads, declared once for the
# surrogates and for ``anchor`` (which lowers the n_segments default).
SEGMENTATION_DEFAULTS: dict[str, Any] = {
    "segmentation": "slic",
    "n_segments": 50,
    "compactness": 10.0,
    "cell_size": None,
}
SEGMENTATION_CHECKS: dict[str, Checker] = {
    "segmentation": _choice("slic", "grid"),
    "n_segments": _integer(2),
    "compactness": _real(positive=True),
    "cell_size": _integer(1, optional=True),
}


class _SurrogateMethod(Method):
    """Lime / Kernel SHAP over superpixel features, expanded over channels (channel-less).

    Parameters:
        segmentation ("slic"): "slic" (skimage SLIC on the min-max-scaled image) or "grid"
            (square cells).
        n_segments (50), compactness (10.0): SLIC parameters.
        cell_size (null): grid cell side in px; null = max(1, min(H, W) // 8).
        n_samples (100): perturbed samples per image (hermitry paper: 100).
        baseline (0.0): fill value of switched-off features: a number in the normalized space
            (0 = training mean), or ``black``, ``white``, ``mean``, ``{pixel: v}``.
        perturbations_per_eval (50): samples per forward pass.

    Captum fits one surrogate per image and sizes it by the largest superpixel label of the
    batch; images with fewer SLIC segments get unused features (coefficient ~0, dummy players
    for Kernel SHAP).
    """

    channelwise = False
    deterministic = False
    default_reduction = "sum"
    scope = "global"
    defaults = {
        **SEGMENTATION_DEFAULTS,
        "n_samples": 100,
        "baseline": 0.0,
        "perturbations_per_eval": 50,
    }
    checks = {
        **SEGMENTATION_CHECKS,
        "n_samples": _integer(1),
        "baseline": units.check_fill,
        "perturbations_per_eval": _integer(1),
    }

    def feature_mask(self, inputs: Tensor) -> Tensor:
        """Superpixel labels (N,1,H,W) of the batch, broadcast over channels by captum."""
        p = self.params
        if p["segmentation"] == "grid":
            h, w = inputs.shape[-2:]
            return grid_segments(inputs, p["cell_size"] or max(1, min(h, w) // 8))
        return slic_segments(inputs, p["n_segments"], p["compactness"])

    def _make_captum(self) -> Lime:
        raise NotImplementedError

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        p = self.params
        mask = self.feature_mask(inputs)
        _seed_global(batch_seed)  # captum samples coalitions with the global RNG
        with _quiet(_MULTI_INPUT_WARNING):
            attr = self._make_captum().attribute(
                inputs.detach(),
                baselines=self.fill_value("baseline", inputs),
                target=target,
                feature_mask=mask,
                n_samples=p["n_samples"],
                perturbations_per_eval=p["perturbations_per_eval"],
                return_input_shape=True,
            )
        # identical across channels (the mask has one channel): keep one
        return _out(attr[:, :1])


@register_method
class LimeMethod(_SurrogateMethod):
    __doc__ = (
        "``lime`` (captum ``Lime``), a Lasso surrogate weighted by captum's default kernel\n"
        "exp(-d^2 / (2 kernel_width^2)), d = cosine distance between the original and the\n"
        "perturbed image.\n\n"
        "Extra parameters:\n"
        "    kernel_width (1.0): captum's default width.\n"
        "    alpha (0.01): Lasso regularization, captum's default.\n\n" + _SurrogateMethod.__doc__
    )
    name = "lime"
    defaults = {**_SurrogateMethod.defaults, "kernel_width": 1.0, "alpha": 0.01}
    checks = {
        **_SurrogateMethod.checks,
        "kernel_width": _real(positive=True),
        "alpha": _real(positive=True),
    }

    def _make_captum(self) -> Lime:
        from captum._utils.models.linear_model import SkLearnLasso
        from captum.attr._core.lime import get_exp_kernel_similarity_function

        return Lime(
            self.model,
            interpretable_model=SkLearnLasso(alpha=self.params["alpha"]),
            similarity_func=get_exp_kernel_similarity_function(
                "cosine", kernel_width=self.params["kernel_width"]
            ),
        )


@register_method
class KernelShapMethod(_SurrogateMethod):
    __doc__ = "``kernel_shap`` (captum ``KernelShap``).\n\n" + _SurrogateMethod.__doc__
    name = "kernel_shap"

    def _make_captum(self) -> Lime:
        return KernelShap(self.model)
