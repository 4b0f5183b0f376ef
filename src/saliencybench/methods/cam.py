"""Grad-CAM and guided Grad-CAM, and the search for a model's last convolution."""

from __future__ import annotations

from typing import Any

import torch
from captum.attr import GuidedBackprop, LayerAttribution, LayerGradCam
from torch import Tensor, nn

from saliencybench.methods.base import (
    _RELU_HOOK_WARNING,
    AttributionContext,
    Method,
    MethodError,
    _boolean,
    _grad_input,
    _module_name,
    _out,
    _quiet,
    one_backward,
    register_method,
)


def find_last_conv(model: nn.Module, example: Tensor) -> str:
    """Name of the ``nn.Conv2d`` module that runs last in a forward pass of ``example``.

    Forward order rather than registration order: a model may define its modules in a
    different order than it calls them.
    """
    names = {module: name for name, module in model.named_modules()}
    called: list[nn.Module] = []
    handles = [
        module.register_forward_hook(lambda mod, inp, out: called.append(mod))
        for module in model.modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    if not called:
        raise MethodError("layer 'auto': the model runs no nn.Conv2d module")
    return names[called[-1]]


@register_method
class GradCamMethod(Method):
    """``gradcam`` (captum ``LayerGradCam``), bilinearly upsampled to the input size.

    Channel-less. The layer is resolved on the first batch and kept.

    Parameters:
        layer ("auto"): "auto" = the last nn.Conv2d run in the forward pass, or a dotted
            module name.
        relu_attributions (true): ReLU on the map, as Selvaraju et al.
    """

    name = "gradcam"
    channelwise = False
    defaults = {"layer": "auto", "relu_attributions": True}
    checks = {"layer": _module_name, "relu_attributions": _boolean}

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self.layer_name: str | None = None
        self._gradcam: LayerGradCam | None = None
        if self.params["layer"] != "auto":
            self._set_layer(self.params["layer"])

    def _set_layer(self, name: str) -> None:
        try:
            layer = self.model.get_submodule(name)
        except AttributeError:
            convs = [n for n, m in self.model.named_modules() if isinstance(m, nn.Conv2d)]
            raise MethodError(
                f"{self.name}: parameter 'layer' {name!r} is not a module of the model; "
                f"its conv layers: {', '.join(convs) or 'none'}"
            ) from None
        self.layer_name = name
        self._gradcam = LayerGradCam(self.model, layer)

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        if self._gradcam is None:  # "auto"
            self._set_layer(find_last_conv(self.model, inputs[:1].detach()))
        cam = self._gradcam.attribute(
            _grad_input(inputs),
            target=target,
            relu_attributions=self.params["relu_attributions"],
            attr_dim_summation=True,
        )
        cam = LayerAttribution.interpolate(cam, tuple(inputs.shape[-2:]), "bilinear")
        return _out(cam)


@register_method
class GuidedGradCamMethod(GradCamMethod):
    """``guided_gradcam``: guided backprop times the upsampled Grad-CAM map.

    This is what captum's ``GuidedGradCam`` computes, composed here from captum's
    ``GuidedBackprop`` and this module's ``gradcam`` so that ``relu_attributions`` (fixed to
    true in captum) and the bilinear upsampling (captum: nearest) are the same as ``gradcam``.
    Needs distinct nn.ReLU modules.

    Parameters:
        layer ("auto"), relu_attributions (true): as for ``gradcam``.
    """

    name = "guided_gradcam"
    channelwise = True
    gradient_based = True
    default_reduction = "abs"

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._guided = one_backward(GuidedBackprop(model))

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        cam = super().attribute(inputs, target, batch_seed)
        with _quiet(_RELU_HOOK_WARNING):
            guided = self._guided.attribute(_grad_input(inputs), target=target)
        return _out(guided * cam)
