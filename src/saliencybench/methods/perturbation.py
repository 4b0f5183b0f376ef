"""Occlusion: a sliding window set to a baseline (captum ``Occlusion``)."""

from __future__ import annotations

from typing import Any

from captum.attr import Occlusion
from torch import Tensor

from saliencybench import units
from saliencybench.methods.base import Method, MethodError, _integer, _out, register_method


@register_method
class OcclusionMethod(Method):
    """``occlusion`` (captum ``Occlusion``): a square window over all channels set to a baseline.

    The window covers every channel, so the attribution of a pixel is the same in all
    channels: returned channel-less (N,1,H,W). Captum clips the last window at the border,
    so every pixel is covered and overlapping windows are averaged.

    Parameters:
        window_size (null): side in pixels; null = max(2, round(0.1 x min(H, W))) (hermitry
            paper: 22 on 224 px).
        stride (null): null = max(1, window_size // 2) (hermitry paper: 11); at most
            window_size.
        baseline (0.0): fill value: a number in the normalized space (0 = training mean), or
            ``black``, ``white``, ``mean``, ``{pixel: v}`` (:mod:`saliencybench.units`).
        perturbations_per_eval (64): windows per forward pass; a forward pass holds
            perturbations_per_eval x batch images.
    """

    name = "occlusion"
    channelwise = False
    # captum's feature ablation repeats the batch once per window in a forward pass
    queries_follow_images = True
    scope = "global"
    defaults = {"window_size": None, "stride": None, "baseline": 0.0, "perturbations_per_eval": 64}
    checks = {
        "window_size": _integer(1, optional=True),
        "stride": _integer(1, optional=True),
        "baseline": units.check_fill,
        "perturbations_per_eval": _integer(1),
    }

    @classmethod
    def _check_combination(cls, params: dict[str, Any]) -> None:
        window, stride = params["window_size"], params["stride"]
        if window is not None and stride is not None and stride > window:
            raise MethodError(
                f"{cls.name}: parameter 'stride' {stride} exceeds window_size {window} "
                "(pixels between windows would get no attribution)"
            )

    def window(self, height: int, width: int) -> tuple[int, int]:
        """(window_size, stride) for an image of this size, defaults resolved."""
        window = self.params["window_size"] or max(2, round(0.1 * min(height, width)))
        stride = self.params["stride"] or max(1, window // 2)
        if window > min(height, width):
            raise MethodError(
                f"{self.name}: window_size {window} exceeds the image size {height}x{width}"
            )
        if stride > window:
            raise MethodError(f"{self.name}: stride {stride} exceeds window_size {window}")
        return window, stride

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        _, c, h, w = inputs.shape
        window, stride = self.window(h, w)
        attr = Occlusion(self.model).attribute(
            inputs.detach(),
            sliding_window_shapes=(c, window, window),
            strides=(1, stride, stride),
            baselines=self.fill_value("baseline", inputs),
            target=target,
            perturbations_per_eval=self.params["perturbations_per_eval"],
        )
        return _out(attr[:, :1])
