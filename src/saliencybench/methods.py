"""Attribution methods chosen by name, built on Captum, and their reductions to 2-D maps.

Every method is a :class:`Method` subclass registered in :data:`METHODS` under its config name.
It declares its metadata at class level (``gradient_based``, ``channelwise``, ``deterministic``,
``default_reduction``) and its parameters with defaults (``defaults``) and validators
(``checks``), so :func:`check_method` can validate a config entry before any job runs.
:func:`attribute_dataset` runs a method over a whole image tensor in seeded batches and reduces
the raw attributions to pixel maps with a reduction from :data:`REDUCTIONS`
(Brocki & Chung 2023, Sec. 3).

Images live in the normalized space the models were trained in (per-channel z-score), so a
constant ``baseline`` of 0.0 is the training mean.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import (
    Deconvolution,
    DeepLift,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    LayerAttribution,
    LayerGradCam,
    Lime,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import Tensor, nn
from tqdm import tqdm

from saliencybench.registry import Registry, UnknownNameError

__all__ = [
    "METHODS",
    "AnchorSearch",
    "anchor_sampler",
    "REDUCTIONS",
    "AttributionContext",
    "Method",
    "MethodError",
    "attribute_dataset",
    "batch_seed",
    "check_method",
    "find_last_conv",
    "grid_segments",
    "segment_means",
    "slic_segments",
    "square_masks",
    "square_side",
]


class MethodError(ValueError):
    """An invalid method, parameter, reduction or input; the message names the culprit."""


@dataclass(frozen=True)
class AttributionContext:
    """What a method may know about the job besides the model and the batch.

    Args:
        seed: base seed of the job (non-negative); each batch derives its own seed from it.
        input_range: (min, max) of the normalized inputs over the dataset; SmoothGrad's noise
            standard deviation is ``noise_level * (max - min)``.
    """

    seed: int
    input_range: tuple[float, float]

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise MethodError(f"context seed must be an integer, got {self.seed!r}")
        if self.seed < 0:
            raise MethodError(f"context seed must be >= 0, got {self.seed}")
        lo, hi = self.input_range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise MethodError(f"context input_range must be finite (min, max), got {(lo, hi)}")


def batch_seed(seed: int, start: int) -> int:
    """The seed of the batch that starts at image index ``start`` of a job seeded ``seed``.

    ``seed + start``, as the workflow documents: a batch's random numbers depend only on the
    job seed and where the batch starts. (Job seeds that differ by a multiple of the batch size
    share batch seeds; keep job seeds of one experiment closer together than that.)
    """
    return seed + start


# ----------------------------------------------------------------------------- parameters

# A checker returns the normalized value or raises ValueError with the reason ("must be ...").
Checker = Callable[[Any], Any]


def _integer(minimum: int = 1, optional: bool = False) -> Checker:
    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        # bool is an int subclass; `true` in a YAML config is a mistake here, not 1
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            null = "null or " if optional else ""
            raise ValueError(f"must be {null}an integer >= {minimum}, got {value!r}")
        return int(value)

    return check


def _real(minimum: float | None = None, positive: bool = False) -> Checker:
    def check(value: Any) -> Any:
        ok = (
            not isinstance(value, bool)
            and isinstance(value, numbers.Real)
            and math.isfinite(value)
            and (minimum is None or value >= minimum)
            and (not positive or value > 0)
        )
        if not ok:
            bound = " > 0" if positive else (f" >= {minimum}" if minimum is not None else "")
            raise ValueError(f"must be a finite number{bound}, got {value!r}")
        return float(value)

    return check


def _boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _choice(*options: str) -> Checker:
    def check(value: Any) -> Any:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(map(repr, options))}, got {value!r}")
        return value

    return check


def _module_name(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise ValueError(f'must be "auto" or a dotted module name, got {value!r}')
    return value


# ----------------------------------------------------------------------------- reductions

REDUCTIONS: Registry[Callable[[Tensor, Tensor], Tensor]] = Registry("reduction")
"""Reductions ``(raw (N,C',H,W), inputs (N,C,H,W)) -> maps (N,H,W)``, chosen by name."""


def _reduction(name: str, needs_channels: bool = False) -> Callable[[Callable], Callable]:
    """Register a reduction; ``needs_channels`` marks those that multiply by the input."""

    def add(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
        fn.needs_channels = needs_channels  # type: ignore[attr-defined]
        return REDUCTIONS.register(name)(fn)

    return add


def _times_input(raw: Tensor, inputs: Tensor) -> Tensor:
    if raw.shape != inputs.shape:
        raise MethodError(
            "input_* reductions need raw attributions shaped like the inputs "
            f"{tuple(inputs.shape)}, got {tuple(raw.shape)} (channel-less methods cannot be "
            "multiplied by the input)"
        )
    return raw * inputs


@_reduction("abs")
def reduce_abs(raw: Tensor, inputs: Tensor) -> Tensor:
    """Unsigned map: sum over channels of |a|."""
    return raw.abs().sum(dim=1)


@_reduction("sum")
def reduce_sum(raw: Tensor, inputs: Tensor) -> Tensor:
    """Signed map: sum over channels of a."""
    return raw.sum(dim=1)


@_reduction("input_sum", needs_channels=True)
def reduce_input_sum(raw: Tensor, inputs: Tensor) -> Tensor:
    """Signed "prime" map (VG'_sum): sum over channels of x * a."""
    return _times_input(raw, inputs).sum(dim=1)


@_reduction("input_abs", needs_channels=True)
def reduce_input_abs(raw: Tensor, inputs: Tensor) -> Tensor:
    """Unsigned "prime" map (VG'_abs): sum over channels of |x * a|."""
    return _times_input(raw, inputs).abs().sum(dim=1)


# ----------------------------------------------------------------------------- base class


class Method(ABC):
    """One attribution method. Subclasses declare class-level metadata, like Quantus metrics.

    Class attributes:
        name: registry name used in configs.
        gradient_based: raw-gradient-type map (the "prime" reductions multiply it by the input).
        channelwise: raw attributions are (N,C,H,W) and may differ per channel; False for
            channel-less methods returning (N,1,H,W), which refuse the input_* reductions.
        deterministic: the result does not depend on the batch seed.
        default_reduction: reduction used when the config names none.
        scope: ``local`` when the raw attributions are sensitivities of the output to each
            input (a gradient; the global explanation is them times x - x0), ``global`` when
            they are contributions to f(x) - f(x0) (Ancona et al. 2018; Yeh et al. 2019,
            Sec. 2.5). Read by the infidelity and sensitivity evaluation.
        defaults: every parameter with its default.
        checks: a validator per parameter (normalizes the value or raises ValueError).

    Args:
        model: classifier returning logits (N,K) for normalized inputs (N,C,H,W).
        context: job seed and input range.
        **params: method parameters; missing ones take ``defaults``.
    """

    name: ClassVar[str]
    gradient_based: ClassVar[bool] = False
    channelwise: ClassVar[bool] = True
    deterministic: ClassVar[bool] = True
    default_reduction: ClassVar[str] = "sum"
    scope: ClassVar[str] = "local"
    defaults: ClassVar[dict[str, Any]] = {}
    checks: ClassVar[dict[str, Checker]] = {}

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        self.model = model
        self.context = context
        self.params = self.validate_params(params)

    @classmethod
    def validate_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Check parameter names and values; return all parameters with defaults filled in."""
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            valid = ", ".join(cls.defaults) or "none"
            raise MethodError(
                f"{cls.name}: unknown parameter {unknown[0]!r}; valid parameters: {valid}"
            )
        merged = {**cls.defaults, **params}
        for key, value in params.items():
            try:
                merged[key] = cls.checks[key](value)
            except ValueError as err:
                raise MethodError(f"{cls.name}: parameter {key!r} {err}") from None
        cls._check_combination(merged)
        return merged

    @classmethod  # noqa: B027 (an optional hook, empty on purpose)
    def _check_combination(cls, params: dict[str, Any]) -> None:
        """Constraints between parameters; raise MethodError."""

    @classmethod
    def check_reduction(cls, reduction: str) -> None:
        """Raise MethodError if ``reduction`` is unknown or does not apply to this method."""
        try:
            fn = REDUCTIONS.get(reduction)
        except UnknownNameError as err:
            raise MethodError(f"{cls.name}: {err}") from None
        if getattr(fn, "needs_channels", False) and not cls.channelwise:
            raise MethodError(
                f"{cls.name}: reduction {reduction!r} multiplies by the input per channel, but "
                f"{cls.name} attributions are channel-less; use 'sum' or 'abs'"
            )

    @property
    def rows_per_input(self) -> int:
        """Inputs one pass of the model sees per explained image (integrated gradients: its
        ``n_steps``); callers that batch perturbed copies through the method divide their
        budget of rows per pass by it."""
        return 1

    @abstractmethod
    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        """Raw attributions of one batch.

        Args:
            inputs: normalized images (N,C,H,W) on the model's device.
            target: class indices (N,), long, same device.
            batch_seed: seeds all randomness of this call.

        Returns:
            float32 tensor (N,C,H,W), or (N,1,H,W) for channel-less methods, on the inputs'
            device.
        """

    def attribute_local(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor | None:
        """The local explanation (a sensitivity per input), or None if the method has none.

        Local methods return :meth:`attribute`; global methods with a local counterpart
        (integrated gradients and DeepLift without the final multiplication by x - x0,
        input x gradient's gradient) override this.
        """
        return self.attribute(inputs, target, batch_seed) if self.scope == "local" else None


def _register(cls: type[Method]) -> type[Method]:
    """Class decorator: register under ``cls.name`` after checking the declared metadata."""
    assert set(cls.checks) == set(cls.defaults), f"{cls.name}: checks and defaults differ"
    for key, value in cls.defaults.items():
        assert cls.checks[key](value) == value, f"{cls.name}: default {key}={value!r} is invalid"
    cls.check_reduction(cls.default_reduction)
    return METHODS.register(cls.name)(cls)


METHODS: Registry[type[Method]] = Registry("attribution method")
"""Attribution methods by config name."""


def _grad_input(inputs: Tensor) -> Tensor:
    # A detached leaf that requires grad: captum would otherwise set requires_grad on the
    # caller's tensor (and warn about it).
    return inputs.detach().requires_grad_(True)


def _out(attr: Tensor) -> Tensor:
    return attr.detach().to(torch.float32)


@contextlib.contextmanager
def _quiet(*messages: str) -> Iterator[None]:
    """Silence captum's per-call warnings that say nothing about this project's use."""
    with warnings.catch_warnings():
        for message in messages:
            warnings.filterwarnings("ignore", message=message)
        yield


_HOOK_WARNING = "Setting forward, backward hooks"  # DeepLift
_RELU_HOOK_WARNING = "Setting backward hooks on ReLU"  # GuidedBackprop, Deconvolution
_MULTI_INPUT_WARNING = "You are providing multiple inputs for Lime"


def _seed_global(seed: int) -> None:
    # Captum draws noise and samples from the global RNG; torch.manual_seed seeds CUDA too.
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- model-free


@_register
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


@_register
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


# ----------------------------------------------------------------------------- gradients


@_register
class SaliencyMethod(Method):
    """``saliency`` (vanilla gradient): d f_c / d x, signed (captum ``Saliency(abs=False)``).

    No parameters.
    """

    name = "saliency"
    gradient_based = True
    default_reduction = "abs"

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = Saliency(model)

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        return _out(self._captum.attribute(_grad_input(inputs), target=target, abs=False))


@_register
class InputXGradientMethod(Method):
    """``input_x_gradient``: x * d f_c / d x (captum ``InputXGradient``). No parameters."""

    name = "input_x_gradient"
    scope = "global"

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = InputXGradient(model)
        self._gradient = Saliency(model)

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        return _out(self._captum.attribute(_grad_input(inputs), target=target))

    def attribute_local(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        return _out(self._gradient.attribute(_grad_input(inputs), target=target, abs=False))


@_register
class IntegratedGradientsMethod(Method):
    """``integrated_gradients`` (captum ``IntegratedGradients``).

    Parameters:
        n_steps (50): integration steps (FPA paper: 200).
        integration ("gausslegendre"): captum's quadrature rule (its ``method`` argument;
            renamed because ``method`` names the registered method in a config entry),
            captum's default; one of "gausslegendre", "riemann_trapezoid", "riemann_left",
            "riemann_right", "riemann_middle".
        baseline (0.0): constant baseline x0 in the normalized space (0 = training mean).
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
        "baseline": _real(),
        "internal_batch_size": _integer(1, optional=True),
    }

    @classmethod
    def _check_combination(cls, params: dict[str, Any]) -> None:
        if params["integration"].startswith("riemann") and params["n_steps"] < 2:
            raise MethodError(f"{cls.name}: parameter 'n_steps' must be >= 2 for Riemann rules")

    scope = "global"

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = IntegratedGradients(model)
        self._captum_local = IntegratedGradients(model, multiply_by_inputs=False)

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
            baselines=p["baseline"],
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
        self._captum = NoiseTunnel(Saliency(model))
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


@_register
class SmoothGradMethod(_NoiseTunnelMethod):
    __doc__ = "``smoothgrad``: mean gradient over noisy copies.\n\n" + _NoiseTunnelMethod.__doc__
    name = "smoothgrad"
    nt_type = "smoothgrad"
    default_reduction = "abs"


@_register
class SmoothGradSqMethod(_NoiseTunnelMethod):
    __doc__ = "``smoothgrad_sq``: mean squared gradient.\n\n" + _NoiseTunnelMethod.__doc__
    name = "smoothgrad_sq"
    nt_type = "smoothgrad_sq"
    default_reduction = "sum"


@_register
class VarGradMethod(_NoiseTunnelMethod):
    __doc__ = "``vargrad``: variance of the gradient.\n\n" + _NoiseTunnelMethod.__doc__
    name = "vargrad"
    nt_type = "vargrad"
    default_reduction = "sum"


@_register
class GuidedBackpropMethod(Method):
    """``guided_backprop`` (captum ``GuidedBackprop``); needs distinct nn.ReLU modules.

    No parameters.
    """

    name = "guided_backprop"
    gradient_based = True
    default_reduction = "abs"

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = GuidedBackprop(model)

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        with _quiet(_RELU_HOOK_WARNING):
            return _out(self._captum.attribute(_grad_input(inputs), target=target))


@_register
class DeconvolutionMethod(Method):
    """``deconvolution`` (captum ``Deconvolution``); needs distinct nn.ReLU modules.

    No parameters.
    """

    name = "deconvolution"
    gradient_based = True
    default_reduction = "abs"

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = Deconvolution(model)

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        with _quiet(_RELU_HOOK_WARNING):
            return _out(self._captum.attribute(_grad_input(inputs), target=target))


@_register
class DeepLiftMethod(Method):
    """``deeplift`` (captum ``DeepLift``, rescale rule); needs distinct nn.ReLU modules.

    Parameters:
        baseline (0.0): constant reference in the normalized space (0 = training mean).
    """

    name = "deeplift"
    scope = "global"
    defaults = {"baseline": 0.0}
    checks = {"baseline": _real()}

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._captum = DeepLift(model)
        self._captum_local = DeepLift(model, multiply_by_inputs=False)

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        return self._deeplift(self._captum, inputs, target)

    def attribute_local(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        """The multipliers of the rescale rule, before the multiplication by x - x0."""
        return self._deeplift(self._captum_local, inputs, target)

    def _deeplift(self, captum_deeplift: DeepLift, inputs: Tensor, target: Tensor) -> Tensor:
        with _quiet(_HOOK_WARNING):
            attr = captum_deeplift.attribute(
                _grad_input(inputs), baselines=self.params["baseline"], target=target
            )
        return _out(attr)


# ----------------------------------------------------------------------------- Grad-CAM


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


@_register
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


@_register
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
        self._guided = GuidedBackprop(model)

    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        cam = super().attribute(inputs, target, batch_seed)
        with _quiet(_RELU_HOOK_WARNING):
            guided = self._guided.attribute(_grad_input(inputs), target=target)
        return _out(guided * cam)


# ----------------------------------------------------------------------------- perturbation


@_register
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
        baseline (0.0): fill value in the normalized space (0 = training mean).
        perturbations_per_eval (64): windows per forward pass; a forward pass holds
            perturbations_per_eval x batch images.
    """

    name = "occlusion"
    channelwise = False
    scope = "global"
    defaults = {"window_size": None, "stride": None, "baseline": 0.0, "perturbations_per_eval": 64}
    checks = {
        "window_size": _integer(1, optional=True),
        "stride": _integer(1, optional=True),
        "baseline": _real(),
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
            baselines=self.params["baseline"],
            target=target,
            perturbations_per_eval=self.params["perturbations_per_eval"],
        )
        return _out(attr[:, :1])


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


class _SurrogateMethod(Method):
    """Lime / Kernel SHAP over superpixel features, expanded over channels (channel-less).

    Parameters:
        segmentation ("slic"): "slic" (skimage SLIC on the min-max-scaled image) or "grid"
            (square cells).
        n_segments (50), compactness (10.0): SLIC parameters.
        cell_size (null): grid cell side in px; null = max(1, min(H, W) // 8).
        n_samples (100): perturbed samples per image (hermitry paper: 100).
        baseline (0.0): fill value of switched-off features in the normalized space.
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
        "segmentation": "slic",
        "n_segments": 50,
        "compactness": 10.0,
        "cell_size": None,
        "n_samples": 100,
        "baseline": 0.0,
        "perturbations_per_eval": 50,
    }
    checks = {
        "segmentation": _choice("slic", "grid"),
        "n_segments": _integer(2),
        "compactness": _real(positive=True),
        "cell_size": _integer(1, optional=True),
        "n_samples": _integer(1),
        "baseline": _real(),
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
                baselines=p["baseline"],
                target=target,
                feature_mask=mask,
                n_samples=p["n_samples"],
                perturbations_per_eval=p["perturbations_per_eval"],
                return_input_shape=True,
            )
        # identical across channels (the mask has one channel): keep one
        return _out(attr[:, :1])


@_register
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


@_register
class KernelShapMethod(_SurrogateMethod):
    __doc__ = "``kernel_shap`` (captum ``KernelShap``).\n\n" + _SurrogateMethod.__doc__
    name = "kernel_shap"

    def _make_captum(self) -> Lime:
        return KernelShap(self.model)


# ----------------------------------------------------------------------------- anchor


def _kl_bernoulli(p: float, q: float) -> float:
    p = min(1.0 - 1e-16, max(1e-7, p))
    q = min(1.0 - 1e-16, max(1e-7, q))
    return p * math.log(p / q) + (1.0 - p) * math.log((1.0 - p) / (1.0 - q))


def kl_upper(mean: float, level: float) -> float:
    """Largest q >= mean with KL(mean || q) <= level, by bisection (Kaufmann & Kalyanakrishnan
    2013; the bound of Ribeiro et al. 2018, as their ``dup_bernoulli``)."""
    low, high = mean, min(1.0, mean + math.sqrt(level / 2.0))
    for _ in range(16):
        middle = (low + high) / 2.0
        if _kl_bernoulli(mean, middle) > level:
            high = middle
        else:
            low = middle
    return high


def kl_lower(mean: float, level: float) -> float:
    """Smallest q <= mean with KL(mean || q) <= level (``dlow_bernoulli``)."""
    high, low = mean, max(0.0, mean - math.sqrt(level / 2.0))
    for _ in range(16):
        middle = (low + high) / 2.0
        if _kl_bernoulli(mean, middle) > level:
            low = middle
        else:
            high = middle
    return low


class _BudgetSpent(Exception):
    """The per-image query budget of the anchor search is used up."""


class AnchorSearch:
    """The precision-guided beam search of Ribeiro et al. (2018, Algorithm 2) with KL-LUCB.

    A faithful re-implementation of ``AnchorBaseBeam.anchor_beam`` of the authors'
    ``anchor-exp`` package (its defaults: beam of 1, delta 0.1, tau 0.15, precision 0.95,
    batches of 100 samples), with every random draw from one seeded generator and a query
    budget. ``sample(present, n)`` draws ``n`` perturbations that keep the features
    ``present`` and every other feature with probability 1/2, runs the model on them, and
    returns ``(kept (n, F) bool, label unchanged (n,) bool)``.

    Samples drawn for an anchor are reused for its extensions: a sample that happens to keep
    feature f as well is a draw of the anchor extended by f (as in ``anchor-exp``).
    """

    def __init__(
        self,
        sample: Callable[[tuple[int, ...], int], tuple[np.ndarray, np.ndarray]],
        n_features: int,
        *,
        threshold: float,
        delta: float,
        tau: float,
        batch_size: int,
        beam_size: int,
        coverage_samples: int,
        max_anchor_size: int | None,
        max_samples: int | None,
        rng: np.random.Generator,
    ) -> None:
        self._sample = sample
        self.n_features = n_features
        self.threshold, self.delta, self.tau = threshold, delta, tau
        self.batch_size, self.beam_size = batch_size, beam_size
        self.max_anchor_size = max_anchor_size or n_features
        self.max_samples = max_samples
        self.coverage_data = rng.random((coverage_samples, n_features)) < 0.5
        self.kept = np.zeros((0, n_features), dtype=bool)
        self.labels = np.zeros(0, dtype=bool)
        self.members: dict[tuple[int, ...], np.ndarray] = {}  # sample indices per anchor
        self.order: dict[tuple[int, ...], list[int]] = {}
        self.coverage: dict[tuple[int, ...], float] = {}

    @property
    def samples_drawn(self) -> int:
        return len(self.labels)

    def _draw(self, anchor: tuple[int, ...], n: int) -> None:
        if self.max_samples is not None:
            n = min(n, self.max_samples - self.samples_drawn)
            if n <= 0:
                raise _BudgetSpent
        kept, labels = self._sample(anchor, n)
        start = len(self.labels)
        self.kept = np.concatenate([self.kept, kept])
        self.labels = np.concatenate([self.labels, labels])
        self.members[anchor] = np.concatenate([self.members[anchor], np.arange(start, start + n)])

    def _stats(self, anchor: tuple[int, ...]) -> tuple[float, int]:
        idx = self.members[anchor]
        return (float(self.labels[idx].mean()) if len(idx) else 0.0), len(idx)

    def _extend(self, previous: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        bases = previous or [()]
        candidates = []
        for base in bases:
            base_idx = self.members.get(base, np.arange(len(self.labels)))
            for feature in range(self.n_features):
                anchor = tuple(sorted({*base, feature}))
                if len(anchor) == len(base) or anchor in self.members:
                    continue
                self.members[anchor] = base_idx[self.kept[base_idx, feature]]
                self.order[anchor] = [*self.order.get(base, []), feature]
                self.coverage[anchor] = float(self.coverage_data[:, list(anchor)].all(1).mean())
                candidates.append(anchor)
        return candidates

    def _lucb(self, anchors: list[tuple[int, ...]], top_n: int) -> list[int]:
        """Indices of the ``top_n`` anchors of highest precision (KL-LUCB, epsilon = tau)."""
        for anchor in anchors:
            if len(self.members[anchor]) == 0:
                self._draw(anchor, 1)
        if len(anchors) <= top_n:
            return list(range(len(anchors)))
        step = 1
        while True:
            stats = [self._stats(a) for a in anchors]
            means = np.array([m for m, _ in stats])
            counts = np.array([n for _, n in stats], dtype=np.float64)
            ranked = np.argsort(means, kind="stable")
            best, rest = ranked[-top_n:], ranked[:-top_n]
            temp = math.log(405.5 * len(anchors) * step**1.1 / self.delta)
            beta = temp + math.log(temp)
            upper = np.array([kl_upper(means[i], beta / counts[i]) for i in rest])
            lower = np.array([kl_lower(means[i], beta / counts[i]) for i in best])
            worst_out, weakest_in = rest[upper.argmax()], best[lower.argmin()]
            if upper.max() - lower.min() <= self.tau:
                return [int(i) for i in best]
            try:
                self._draw(anchors[worst_out], self.batch_size)
                self._draw(anchors[weakest_in], self.batch_size)
            except _BudgetSpent:
                return [int(i) for i in best]
            step += 1

    def run(self) -> tuple[list[int], float, float]:
        """The anchor: (features in the order they were added, precision, coverage)."""
        self.members[()] = np.zeros(0, dtype=np.int64)
        try:
            self._draw((), 1)
            mean, n = self._stats(())
            beta = math.log(1.0 / self.delta)
            lower = kl_lower(mean, beta / n)
            while mean > self.threshold and lower < self.threshold - self.tau:
                self._draw((), self.batch_size)
                mean, n = self._stats(())
                lower = kl_lower(mean, beta / n)
            if lower > self.threshold:
                return [], mean, 1.0
        except _BudgetSpent:
            return [], self._stats(())[0], 1.0
        best_of_size: dict[int, list[tuple[int, ...]]] = {0: []}
        best_anchor: tuple[int, ...] = ()
        best_coverage = -1.0
        size = 1
        try:
            while size <= self.max_anchor_size:
                candidates = [
                    a
                    for a in self._extend(best_of_size[size - 1])
                    if self.coverage[a] > best_coverage
                ]
                if not candidates:
                    break
                chosen = [
                    candidates[i]
                    for i in self._lucb(candidates, min(self.beam_size, len(candidates)))
                ]
                best_of_size[size] = chosen
                beta = math.log(1.0 / (self.delta / (1 + (self.beam_size - 1) * self.n_features)))
                found_full = False
                for anchor in chosen:
                    mean, n = self._stats(anchor)
                    lower, upper = kl_lower(mean, beta / n), kl_upper(mean, beta / n)
                    while (mean >= self.threshold and lower < self.threshold - self.tau) or (
                        mean < self.threshold and upper >= self.threshold + self.tau
                    ):
                        self._draw(anchor, self.batch_size)
                        mean, n = self._stats(anchor)
                        lower, upper = kl_lower(mean, beta / n), kl_upper(mean, beta / n)
                    eligible = mean >= self.threshold and lower > self.threshold - self.tau
                    if eligible and self.coverage[anchor] > best_coverage:
                        best_anchor, best_coverage = anchor, self.coverage[anchor]
                        found_full = best_coverage == 1.0
                if found_full:
                    break
                size += 1
        except _BudgetSpent:
            pass
        if not best_anchor:
            # No anchor reached the precision: the most precise of the best of every size.
            tried = [a for s in sorted(best_of_size) for a in best_of_size[s]]
            if not tried:
                return [], self._stats(())[0], 1.0
            best_anchor = max(tried, key=lambda a: (self._stats(a)[0], -len(a)))
        return self.order[best_anchor], self._stats(best_anchor)[0], self.coverage[best_anchor]

    def precision_gains(self, features: list[int]) -> list[float]:
        """The estimated precision gained as each feature of an anchor was added to it."""
        precisions = [self._stats(())[0]]
        for size in range(1, len(features) + 1):
            precisions.append(self._stats(tuple(sorted(features[:size])))[0])
        return list(np.diff(precisions))


def segment_means(inputs: Tensor, segments: Tensor) -> Tensor:
    """Every superpixel filled with its own mean colour, per channel: (N,C,H,W).

    The "uniform colour" replacement of the anchor-exp image sampler (its ``fudged_image``).
    """
    n, c, h, w = inputs.shape
    labels = segments.reshape(n, 1, h * w).expand(n, c, h * w)
    k = int(segments.max()) + 1 if segments.numel() else 1
    sums = torch.zeros(n, c, k, device=inputs.device, dtype=inputs.dtype)
    sums.scatter_add_(2, labels, inputs.reshape(n, c, h * w))
    counts = torch.zeros(n, 1, k, device=inputs.device, dtype=inputs.dtype)
    counts.scatter_add_(2, labels[:, :1], torch.ones_like(inputs[:, :1].reshape(n, 1, h * w)))
    means = sums / counts.clamp_min(1)
    return means.gather(2, labels).reshape(n, c, h, w)


def anchor_sampler(
    model: nn.Module,
    image: Tensor,
    fudged: Tensor,
    segments: Tensor,
    label: int,
    rng: np.random.Generator,
) -> Callable[[tuple[int, ...], int], tuple[np.ndarray, np.ndarray]]:
    """The image sampler of Anchor-LIME: ``sample(present, n)`` keeps the superpixels
    ``present`` and each other one with probability 1/2, fills the rest from ``fudged``
    (their mean colours), and asks the model in one forward pass whether ``label`` stays.

    Args:
        image, fudged: (C,H,W); segments: (H,W) superpixel labels 0..F-1.
    """
    n_features = int(segments.max()) + 1

    def sample(present: tuple[int, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
        kept = rng.random((n, n_features)) < 0.5
        kept[:, list(present)] = True
        keep = torch.as_tensor(kept, device=image.device)[:, segments]  # (n, H, W)
        batch = torch.where(keep[:, None], image[None], fudged[None])
        return kept, (model(batch).argmax(1) == label).cpu().numpy()

    return sample


@_register
class AnchorMethod(Method):
    """``anchor``: Anchor-LIME for images (Ribeiro et al. 2018), as the hermitry paper uses it.

    Each image is cut into superpixels; a perturbation keeps a set of them and replaces
    every other one by its own mean colour (the uniform-colour sampler of the authors'
    ``anchor-exp`` package). An anchor is a set of superpixels that keeps the model's class
    (``target``) with precision at least ``threshold`` on such perturbations; the
    precision-guided beam search with KL-LUCB (:class:`AnchorSearch`) looks for the anchor
    of largest coverage. The package itself is not used: it samples from numpy's global
    generator, builds one image at a time and needs spaCy; this implementation follows its
    ``anchor_beam`` and image sampler step by step, draws from a seeded generator and runs
    each batch of perturbations as one forward pass.

    The map marks the anchor's superpixels, each with the precision it added when the search
    put it into the anchor (estimated from the samples drawn); every other pixel is 0
    (channel-less). An image whose class survives every perturbation gets the empty anchor
    and a zero map.

    Parameters:
        segmentation ("slic"), n_segments (20), compactness (10.0), cell_size (null): the
            superpixels, as for ``lime`` (``anchor-exp`` uses quickshift on 224 px images).
        threshold (0.95): the precision an anchor must reach.
        delta (0.1), tau (0.15): confidence and tolerance of the bounds (anchor-exp's
            defaults for images).
        batch_size (100): perturbations per draw and per forward pass.
        beam_size (1): anchors kept per size.
        coverage_samples (10000): random coalitions that estimate coverage.
        max_anchor_size (null): largest anchor; null = every superpixel.
        max_samples (2000): query budget per image (not in the original; it bounds the cost
            of images whose class no small anchor keeps); null = unbounded.
    """

    name = "anchor"
    channelwise = False
    deterministic = False
    default_reduction = "sum"
    scope = "global"
    defaults = {
        "segmentation": "slic",
        "n_segments": 20,
        "compactness": 10.0,
        "cell_size": None,
        "threshold": 0.95,
        "delta": 0.1,
        "tau": 0.15,
        "batch_size": 100,
        "beam_size": 1,
        "coverage_samples": 10000,
        "max_anchor_size": None,
        "max_samples": 2000,
    }
    checks = {
        "segmentation": _choice("slic", "grid"),
        "n_segments": _integer(2),
        "compactness": _real(positive=True),
        "cell_size": _integer(1, optional=True),
        "threshold": _real(positive=True),
        "delta": _real(positive=True),
        "tau": _real(positive=True),
        "batch_size": _integer(1),
        "beam_size": _integer(1),
        "coverage_samples": _integer(1),
        "max_anchor_size": _integer(1, optional=True),
        "max_samples": _integer(1, optional=True),
    }

    @classmethod
    def _check_combination(cls, params: dict[str, Any]) -> None:
        for key in ("threshold", "delta"):
            if not params[key] < 1.0:
                raise MethodError(f"{cls.name}: parameter {key!r} must be < 1, got {params[key]}")

    feature_mask = _SurrogateMethod.feature_mask

    @torch.no_grad()
    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        p = self.params
        x = inputs.detach()
        segments = self.feature_mask(x)
        fudged = segment_means(x, segments)
        out = torch.zeros(len(x), 1, *x.shape[-2:], device=x.device)
        for i in range(len(x)):  # the search is sequential per image, as in the original
            image_segments = segments[i, 0]
            rng = np.random.default_rng([batch_seed, i])
            sample = anchor_sampler(
                self.model, x[i], fudged[i], image_segments, int(target[i]), rng
            )
            search = AnchorSearch(
                sample,
                int(image_segments.max()) + 1,
                threshold=p["threshold"],
                delta=p["delta"],
                tau=p["tau"],
                batch_size=p["batch_size"],
                beam_size=p["beam_size"],
                coverage_samples=p["coverage_samples"],
                max_anchor_size=p["max_anchor_size"],
                max_samples=p["max_samples"],
                rng=rng,
            )
            features, _, _ = search.run()
            for feature, gain in zip(features, search.precision_gains(features), strict=True):
                out[i, 0][image_segments == feature] = gain
        return _out(out)


# ----------------------------------------------------------------------------- optimal


def square_side(side: int | None, height: int, width: int) -> int:
    """The side of the removed square: ``side``, or 1/8 of the shorter image side (at least 1).

    Shared by the ``square`` method and the square-removal perturbation of the robustness
    evaluation, so that both use the same distribution by default.
    """
    resolved = side or max(1, round(min(height, width) / 8))
    if resolved > min(height, width):
        raise MethodError(f"square side {resolved} exceeds the image size {height}x{width}")
    return resolved


def square_masks(height: int, width: int, side: int, stride: int = 1, device=None) -> Tensor:
    """Every ``side`` x ``side`` square on a grid of ``stride`` pixels: float (P, H, W) masks."""
    tops = torch.arange(0, height - side + 1, stride, device=device)
    lefts = torch.arange(0, width - side + 1, stride, device=device)
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    in_rows = (rows[None, :] >= tops[:, None]) & (rows[None, :] < tops[:, None] + side)
    in_cols = (cols[None, :] >= lefts[:, None]) & (cols[None, :] < lefts[:, None] + side)
    masks = in_rows[:, None, :, None] & in_cols[None, :, None, :]  # (T, L, H, W)
    return masks.reshape(-1, height, width).float()


def _target_logits(model: nn.Module, copies: Tensor, target: Tensor) -> Tensor:
    """Logit of each image's target class for K perturbed copies of a batch.

    Args:
        copies: (K, N, C, H, W), copy k of image i at [k, i].
        target: (N,) class indices.

    Returns:
        (K, N) logits.
    """
    k, n = copies.shape[:2]
    logits = model(copies.reshape(k * n, *copies.shape[2:]))
    return logits.gather(1, target.repeat(k)[:, None]).view(k, n)


@_register
class NoisyBaselineMethod(Method):
    """``noisy_baseline``: least infidelity under I = x - (x0 + e), e ~ N(0, noise_std^2 Id).

    Yeh et al. (2019), Prop. 2.1: phi* = E[I I^T]^-1 E[I I^T IG(f, x, I)], and since
    I^T IG(f, x, I) = f(x) - f(x - I), the second factor is E[I (f(x) - f(x0 + e))]: forward
    passes only. Both moments are Monte-Carlo means over the same ``n_samples`` draws, so phi*
    is the ridge regression of the logit drops on the perturbations; for a linear model it
    recovers the weights exactly. The ridge term ``ridge x trace / d`` keeps the sample
    second moment invertible when there are fewer draws than inputs. A local explanation.

    Parameters:
        noise_std (0.2): standard deviation of the baseline noise in the normalized space.
        baseline (0.0): the clean baseline x0 (0 = training mean).
        n_samples (1000): Monte-Carlo draws per image.
        ridge (1e-4): diagonal term relative to the mean diagonal of the second moment.
        forward_batch_size (2048): perturbed images per forward pass.
    """

    name = "noisy_baseline"
    deterministic = False
    scope = "local"
    max_inputs: ClassVar[int] = 4096
    defaults = {
        "noise_std": 0.2,
        "baseline": 0.0,
        "n_samples": 1000,
        "ridge": 1e-4,
        "forward_batch_size": 2048,
    }
    checks = {
        "noise_std": _real(positive=True),
        "baseline": _real(),
        "n_samples": _integer(1),
        "ridge": _real(positive=True),
        "forward_batch_size": _integer(1),
    }

    # Doubles in the per-image second moments of one chunk of images (256 MB).
    moment_budget: ClassVar[int] = 2**25
    # Draws per update of the second moments: each update reads and writes all of them, so
    # with a few draws per update (many images per forward pass) the updates, not the
    # forward passes, bound the time; 64 keeps them below a third of it.
    draws_per_update: ClassVar[int] = 64

    @torch.no_grad()
    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        x = inputs.detach()
        d = x[0].numel()
        if d > self.max_inputs:
            raise MethodError(
                f"{self.name}: images of {d} values need a ({d})^2 matrix per image; at most "
                f"{self.max_inputs} values (C x H x W) are supported"
            )
        generator = torch.Generator(device=x.device).manual_seed(batch_seed)
        chunk = max(
            1,
            min(
                self.moment_budget // (d * d),
                self.params["forward_batch_size"] // self.draws_per_update,
            ),
        )
        return torch.cat(
            [
                self._regress(x[start : start + chunk], target[start : start + chunk], generator)
                for start in range(0, len(x), chunk)
            ]
        )

    def _regress(self, x: Tensor, target: Tensor, generator: torch.Generator) -> Tensor:
        """Ridge regression of the logit drops on the perturbations, image by image."""
        p = self.params
        n, d = len(x), x[0].numel()
        unperturbed = _target_logits(self.model, x[None], target)
        second_moment = torch.zeros((n, d, d), dtype=torch.float64, device=x.device)
        first_moment = torch.zeros((n, d), dtype=torch.float64, device=x.device)
        per_pass = max(1, p["forward_batch_size"] // n)
        for start in range(0, p["n_samples"], per_pass):
            draws = min(per_pass, p["n_samples"] - start)
            noise = torch.randn((draws, *x.shape), generator=generator, device=x.device)
            noisy_baseline = p["baseline"] + p["noise_std"] * noise  # x - I
            drops = (unperturbed - _target_logits(self.model, noisy_baseline, target)).double()
            perturbations = (x[None] - noisy_baseline).reshape(draws, n, d).double()
            second_moment += torch.einsum("kni,knj->nij", perturbations, perturbations)
            first_moment += torch.einsum("kni,kn->ni", perturbations, drops)
        ridge = p["ridge"] * second_moment.diagonal(dim1=1, dim2=2).mean(1)
        eye = torch.eye(d, dtype=torch.float64, device=x.device)
        phi = torch.linalg.solve(second_moment + ridge[:, None, None] * eye, first_moment)
        return _out(phi.view_as(x))


@_register
class SquareMethod(Method):
    """``square``: least infidelity under square removal (Yeh et al. 2019, Sec. 2.4).

    The perturbation sets a ``side`` x ``side`` square, uniformly placed, to the baseline in
    every channel. The explanation is global and per pixel: phi* = (E[m m^T] + ridge)^-1
    E[m (f(x) - f(x without the square))] over pixel masks m (Prop. 2.1 with completeness in
    place of IG). Both expectations are exact: every position on a grid of ``stride`` pixels
    is evaluated. E[m m^T] is singular (corner pixels lie in one square), hence the ridge term
    ``ridge x trace / (H W)`` that the paper suggests; it is factorized once per image size.
    Returned channel-less (N,1,H,W).

    Parameters:
        side (null): square side in pixels; null = 1/8 of the shorter image side.
        stride (1): grid of square positions.
        baseline (0.0): fill value in the normalized space (0 = training mean).
        ridge (1e-3): diagonal term relative to the mean diagonal of E[m m^T].
        forward_batch_size (2048): perturbed images per forward pass.
    """

    name = "square"
    channelwise = False
    scope = "global"
    max_pixels: ClassVar[int] = 64 * 64
    defaults = {
        "side": None,
        "stride": 1,
        "baseline": 0.0,
        "ridge": 1e-3,
        "forward_batch_size": 2048,
    }
    checks = {
        "side": _integer(1, optional=True),
        "stride": _integer(1),
        "baseline": _real(),
        "ridge": _real(positive=True),
        "forward_batch_size": _integer(1),
    }

    def __init__(self, model: nn.Module, context: AttributionContext, **params: Any) -> None:
        super().__init__(model, context, **params)
        self._solvers: dict[tuple, tuple[Tensor, Tensor]] = {}

    def _solver(self, height: int, width: int, device) -> tuple[Tensor, Tensor]:
        """(masks (P, H*W), Cholesky factor of E[m m^T] + ridge) for one image size."""
        key = (height, width, str(device))
        if key not in self._solvers:
            if height * width > self.max_pixels:
                raise MethodError(
                    f"{self.name}: images of {height}x{width} pixels need a "
                    f"({height * width})^2 matrix; at most {self.max_pixels} pixels are supported"
                )
            side = square_side(self.params["side"], height, width)
            masks = square_masks(height, width, side, self.params["stride"], device)
            flat = masks.reshape(len(masks), -1).double()
            second_moment = flat.T @ flat / len(flat)
            ridge = self.params["ridge"] * second_moment.diagonal().mean()
            eye = torch.eye(len(second_moment), dtype=torch.float64, device=device)
            self._solvers[key] = (masks, torch.linalg.cholesky(second_moment + ridge * eye))
        return self._solvers[key]

    @torch.no_grad()
    def attribute(self, inputs: Tensor, target: Tensor, batch_seed: int) -> Tensor:
        p = self.params
        x = inputs.detach()
        n, _, height, width = x.shape
        masks, factor = self._solver(height, width, x.device)
        removed = masks.bool()[:, None, None]  # (P, 1, 1, H, W)
        unperturbed = _target_logits(self.model, x[None], target)
        drops = torch.empty((len(masks), n), dtype=torch.float64, device=x.device)
        per_pass = max(1, p["forward_batch_size"] // n)
        for start in range(0, len(masks), per_pass):
            stop = min(len(masks), start + per_pass)
            copies = torch.where(removed[start:stop], p["baseline"], x[None])
            drops[start:stop] = unperturbed - _target_logits(self.model, copies, target)
        first_moment = drops.T @ masks.reshape(len(masks), -1).double() / len(masks)
        phi = torch.cholesky_solve(first_moment.T, factor).T
        return _out(phi.view(n, 1, height, width))


# ----------------------------------------------------------------------------- entry points


def _method_class(method: str) -> type[Method]:
    try:
        return METHODS.get(method)
    except UnknownNameError as err:
        raise MethodError(str(err)) from None


def check_method(
    method: str, params: dict[str, Any] | None = None, reduction: str | None = None
) -> None:
    """Validate a method config without a model; raise MethodError naming the problem.

    Args:
        method: registered method name.
        params: method parameters (missing ones take their defaults); may also hold the
            ``reduction`` key of a config entry instead of passing it separately.
        reduction: reduction name; None = the one in ``params``, else the method's default.
    """
    cls = _method_class(method)
    if params is not None and not isinstance(params, dict):
        raise MethodError(f"{method}: parameters must be a mapping, got {params!r}")
    params = dict(params or {})
    in_params = params.pop("reduction", None)
    if reduction is not None and in_params is not None and reduction != in_params:
        raise MethodError(f"{method}: two reductions given, {reduction!r} and {in_params!r}")
    reduction = reduction if reduction is not None else in_params
    cls.validate_params(params)
    cls.check_reduction(cls.default_reduction if reduction is None else reduction)


def attribute_dataset(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    method: str,
    params: dict[str, Any] | None,
    *,
    context: AttributionContext,
    batch_size: int,
    reduction: str | None = None,
    keep_raw: bool = False,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Attribution maps of all images, computed in seeded batches.

    Batch seeds come from ``batch_seed(context.seed, start index)``, so deterministic methods
    give the same maps for any batch size and a fixed seed always gives the same numbers.
    Parameters are frozen (``requires_grad_(False)``) for the duration and restored after.

    Args:
        model: classifier in eval mode returning logits.
        images: normalized images (N,C,H,W) on the model's device.
        targets: class index per image (N,).
        method: registered method name; params: its parameters.
        context: job seed and input range.
        batch_size: images per call of the method.
        reduction: reduction name; None = the method's default_reduction.
        keep_raw: also return the raw attributions.
        progress: show a tqdm bar on stderr.

    Returns:
        maps (N,H,W) float32 and, if keep_raw, raw attributions (N,C',H,W) float32
        (C' = C, or 1 for channel-less methods), else None.
    """
    cls = _method_class(method)
    reduction = cls.default_reduction if reduction is None else reduction
    cls.check_reduction(reduction)
    reduce = REDUCTIONS.get(reduction)
    if images.ndim != 4:
        raise MethodError(f"images must be (N,C,H,W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    if tuple(targets.shape) != (n,):
        raise MethodError(f"targets must be ({n},), got shape {tuple(targets.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MethodError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if any(module.training for module in model.modules()):
        raise MethodError("attribution needs the model in eval mode; call model.eval() first")

    explainer = cls(model, context, **(params or {}))
    targets = targets.to(device=images.device, dtype=torch.long)
    maps = np.empty((n, h, w), dtype=np.float32)
    raw_all = np.empty((n, c if cls.channelwise else 1, h, w), np.float32) if keep_raw else None

    parameters = list(model.parameters())
    flags = [p.requires_grad for p in parameters]
    try:
        # captum differentiates w.r.t. the inputs only; frozen parameters skip weight
        # gradients and cannot accumulate .grad
        for p in parameters:
            p.requires_grad_(False)
        with tqdm(total=n, desc=method, unit="img", file=sys.stderr, disable=not progress) as bar:
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                x = images[start:stop]
                raw = explainer.attribute(x, targets[start:stop], batch_seed(context.seed, start))
                expected = (stop - start, c if cls.channelwise else 1, h, w)
                if tuple(raw.shape) != expected:  # a method bug, not a user error
                    raise RuntimeError(f"{method} returned {tuple(raw.shape)}, not {expected}")
                maps[start:stop] = reduce(raw, x).detach().cpu().numpy()
                if raw_all is not None:
                    raw_all[start:stop] = raw.cpu().numpy()
                bar.update(stop - start)
    finally:
        for p, flag in zip(parameters, flags, strict=True):
            p.requires_grad_(flag)
    return maps, raw_all
