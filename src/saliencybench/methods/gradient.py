"""Gradient methods: saliency, input x gradient, integrated gradients, the noise tunnel
(SmoothGrad, SmoothGrad^2, VarGrad), guided backprop, deconvolution and DeepLift."""

from __future__ import annotations

from typing import Any, ClassVar

from captum.attr import (
    Deconvolution,
    DeepLift,
    GradientAttribution,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
)
from torch import Tensor, nn

from saliencybench import units
from saliencybench.methods.base import (
    _RELU_HOOK_WARNING,
    AttributionContext,
    Method,
    MethodError,
    _choice,
    _grad_input,
    _integer,
    _out,
    _quiet,
    _real,
    _seed_global,
    one_backward,
    register_method,
)

_HOOK_WARNING = "Setting forward, backward hooks"  # DeepLift


class _GradientWrapperMethod(Method):
    """A captum gradient attribution without parameters: one call of ``captum_class(model)``.

    Subclasses set ``captum_class``, the keyword arguments of its ``attribute``
    (``attribute_kwargs``) and the captum warnings to silence during the call (``quiet``).
    """

    captum_class: ClassVar[type[GradientAttribution]]
    attribute_kwargs: ClassVar[dict[str, Any]] = {}
    quiet: ClassVar[tuple[str, ...]] = ()
    gradient_based = True
    default_reduction = "abs"

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = one_backward(self.captum_class(model))

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        with _quiet(*self.quiet):
            return _out(
                self._captum.attribute(_grad_input(inputs), target=target, **self.attribute_kwargs)
            )


@register_method
class SaliencyMethod(_GradientWrapperMethod):
    """``saliency`` (vanilla gradient): d f_c / d x, signed (captum ``Saliency(abs=False)``).

    No parameters.
    """

    name = "saliency"
    captum_class = Saliency
    attribute_kwargs = {"abs": False}


@register_method
class InputXGradientMethod(Method):
    """``input_x_gradient``: x * d f_c / d x (captum ``InputXGradient``). No parameters."""

    name = "input_x_gradient"
    scope = "global"

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = one_backward(InputXGradient(model))
        self._gradient = one_backward(Saliency(model))

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        return _out(self._captum.attribute(_grad_input(inputs), target=target))

    def attribute_local(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        return _out(self._gradient.attribute(_grad_input(inputs), target=target, abs=False))


@register_method
class IntegratedGradientsMethod(Method):
    """``integrated_gradients`` (captum ``IntegratedGradients``).

    Parameters:
        n_steps (50): integration steps (FPA paper: 200).
        integration ("gausslegendre"): captum's quadrature rule (its ``method`` argument;
            renamed because ``method`` names the registered method in a config entry),
            captum's default; one of "gausslegendre", "riemann_trapezoid", "riemann_left",
            "riemann_right", "riemann_middle".
        baseline (0.0): constant baseline x0: a number in the normalized space (0 = training
            mean), or ``black``, ``white``, ``mean``, ``{pixel: v}`` (:mod:`saliencybench.units`).
        internal_batch_size (null): rows (steps x images) per forward pass; null = all
            ``n_steps x batch`` at once (captum raises values below the batch size to it).

    Captum's "riemann_trapezoid" weights sum to (n_steps - 1) / n_steps; the result is
    rescaled so that the rule integrates constants exactly, like the others.
    """

    name = "integrated_gradients"
    defaults = {
        "n_steps": 50,
        "integration": "gausslegendre",
        "baseline": 0.0,
        "internal_batch_size": None,
    }
    checks = {
        "n_steps": _integer(1),
        "integration": _choice(
            "gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"
        ),
        "baseline": units.check_fill,
        "internal_batch_size": _integer(1, optional=True),
    }

    @classmethod
    def _check_combination(cls, params: dict[str, Any]) -> None:
        if params["integration"].startswith("riemann") and params["n_steps"] < 2:
            raise MethodError(f"{cls.name}: parameter 'n_steps' must be >= 2 for Riemann rules")

    scope = "global"

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = one_backward(IntegratedGradients(model))
        self._captum_local = one_backward(IntegratedGradients(model, multiply_by_inputs=False))

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        return self._integrate(self._captum, inputs, target)

    @property
    def rows_per_input(self) -> int:
        return self.params["n_steps"]

    def attribute_local(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        """The mean path gradient, before the multiplication by x - x0."""
        return self._integrate(self._captum_local, inputs, target)

    def _integrate(self, captum_ig: IntegratedGradients, inputs: Tensor, target: Tensor) -> Tensor:
        p = self.params
        attr = captum_ig.attribute(
            _grad_input(inputs),
            baselines=self.fill_value("baseline", inputs),
            target=target,
            n_steps=p["n_steps"],
            method=p["integration"],
            internal_batch_size=p["internal_batch_size"],
        )
        if p["integration"] == "riemann_trapezoid":  # captum's step sizes are 1/n, not 1/(n - 1)
            attr = attr * (p["n_steps"] / (p["n_steps"] - 1))
        return _out(attr)


class _NoiseTunnelMethod(Method):
    """Saliency averaged over noisy copies (captum ``NoiseTunnel(Saliency(abs=False))``).

    Parameters:
        nt_samples (15): noisy copies per image.
        noise_level (0.15): noise standard deviation as a share of the dataset's input range,
            sigma = noise_level * (max - min).
        nt_samples_batch_size (null): noisy copies per image and forward pass; null = all.
    """

    nt_type: ClassVar[str]
    gradient_based = True
    deterministic = False
    defaults = {"nt_samples": 15, "noise_level": 0.15, "nt_samples_batch_size": None}
    checks = {
        "nt_samples": _integer(1),
        "noise_level": _real(minimum=0.0),
        "nt_samples_batch_size": _integer(1, optional=True),
    }

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = NoiseTunnel(one_backward(Saliency(model)))
        lo, hi = context.input_range
        self.stdev = float(self.params["noise_level"] * (hi - lo))

    @property
    def rows_per_input(self) -> int:
        return self.params["nt_samples_batch_size"] or self.params["nt_samples"]

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        p = self.params
        _seed_global(batch_seed)  # NoiseTunnel draws its noise with torch.normal
        attr = self._captum.attribute(
            inputs.detach(),
            nt_type=self.nt_type,
            nt_samples=p["nt_samples"],
            nt_samples_batch_size=p["nt_samples_batch_size"],
            stdevs=self.stdev,
            target=target,
            abs=False,
        )
        return _out(attr)


@register_method
class SmoothGradMethod(_NoiseTunnelMethod):
    __doc__ = "``smoothgrad``: mean gradient over noisy copies.\n\n" + _NoiseTunnelMethod.__doc__
    name = "smoothgrad"
    nt_type = "smoothgrad"
    default_reduction = "abs"


@register_method
class SmoothGradSqMethod(_NoiseTunnelMethod):
    __doc__ = "``smoothgrad_sq``: mean squared gradient.\n\n" + _NoiseTunnelMethod.__doc__
    name = "smoothgrad_sq"
    nt_type = "smoothgrad_sq"
    default_reduction = "sum"


@register_method
class VarGradMethod(_NoiseTunnelMethod):
    __doc__ = "``vargrad``: variance of the gradient.\n\n" + _NoiseTunnelMethod.__doc__
    name = "vargrad"
    nt_type = "vargrad"
    default_reduction = "sum"


@register_method
class GuidedBackpropMethod(_GradientWrapperMethod):
    """``guided_backprop`` (captum ``GuidedBackprop``); needs distinct nn.ReLU modules.

    No parameters.
    """

    name = "guided_backprop"
    captum_class = GuidedBackprop
    quiet = (_RELU_HOOK_WARNING,)


@register_method
class DeconvolutionMethod(_GradientWrapperMethod):
    """``deconvolution`` (captum ``Deconvolution``); needs distinct nn.ReLU modules.

    No parameters.
    """

    name = "deconvolution"
    captum_class = Deconvolution
    quiet = (_RELU_HOOK_WARNING,)


@register_method
class DeepLiftMethod(Method):
    """``deeplift`` (captum ``DeepLift``, rescale rule); needs distinct nn.ReLU modules.

    Parameters:
        baseline (0.0): constant reference: a number in the normalized space (0 = training
            mean), or ``black``, ``white``, ``mean``, ``{pixel: v}`` (:mod:`saliencybench.units`).
    """

    name = "deeplift"
    scope = "global"
    defaults = {"baseline": 0.0}
    checks = {"baseline": units.check_fill}

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = one_backward(DeepLift(model))
        self._captum_local = one_backward(DeepLift(model, multiply_by_inputs=False))

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        return self._deeplift(self._captum, inputs, target)

    def attribute_local(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        """The multipliers of the rescale rule, before the multiplication by x - x0."""
        return self._deeplift(self._captum_local, inputs, target)

    def _deeplift(self, captum_deeplift: DeepLift, inputs: Tensor, target: Tensor) -> Tensor:
        with _quiet(_HOOK_WARNING):
            attr = captum_deeplift.attribute(
                _grad_input(inputs), baselines=self.fill_value("baseline", inputs), target=target
            )
        return _out(attr)
