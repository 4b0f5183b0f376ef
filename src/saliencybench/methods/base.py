"""The :class:`Method` base class, its registry, parameter checkers and shared helpers."""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from saliencybench import units
from saliencybench.inference import normalized_fill, normalized_scale, pixel_bounds
from saliencybench.methods.errors import MethodError
from saliencybench.methods.reductions import REDUCTIONS
from saliencybench.planning import DEFAULT_REDUCTIONS
from saliencybench.registry import Registry, UnknownNameError


@dataclass(frozen=True)
class AttributionContext:
    """What a method may know about the job besides the model and the batch.

    Args:
        seed: base seed of the job (non-negative); each batch derives its own seed from it.
        input_range: (min, max) of the normalized inputs over the dataset; SmoothGrad's noise
            standard deviation is ``noise_level * (max - min)``.
        mean, std: the dataset's per-channel normalization in pixel units [0, 1], which turns
            baselines given in pixel units (``black``, ``{pixel: v}``) into the normalized
            space (:mod:`saliencybench.units`); None where no such baseline is used.
    """

    seed: int
    input_range: tuple[float, float]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

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


# ----------------------------------------------------------------------------- base class


class Method(ABC):
    """One attribution method. Subclasses declare class-level metadata, like Quantus metrics.

    Class attributes:
        name: registry name used in configs.
        gradient_based: raw-gradient-type map (the "prime" reductions multiply it by the input).
        channelwise: raw attributions are (N,C,H,W) and may differ per channel; False for
            channel-less methods returning (N,1,H,W), which refuse the input_* reductions.
        deterministic: the result does not depend on the batch seed.
        queries_follow_images: every forward pass the method sends for a batch of N images
            holds whole copies of the batch, each in image order (row r perturbs image
            r mod N), and the rows of one image come in the order they would alone; so the
            queries of a batch can be told apart by image (the hermitry capture).
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
    queries_follow_images: ClassVar[bool] = False
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

    def fill_value(self, key: str, inputs: Tensor) -> float | Tensor:
        """Parameter ``key`` (a baseline or fill, :func:`saliencybench.units.check_fill`) in
        the normalized space (:func:`normalized_fill`)."""
        try:
            return normalized_fill(self.params[key], inputs, self.context.mean, self.context.std)
        except ValueError as error:
            raise MethodError(f"{self.name}: parameter {key!r}: {error}") from None

    def scale_value(self, key: str, inputs: Tensor) -> float | Tensor:
        """Parameter ``key`` (a noise standard deviation, :func:`saliencybench.units.check_scale`)
        in the normalized space (:func:`normalized_scale`)."""
        try:
            return normalized_scale(self.params[key], inputs, self.context.std)
        except ValueError as error:
            raise MethodError(f"{self.name}: parameter {key!r}: {error}") from None

    @classmethod
    def parameter_units(cls, params: dict[str, Any]) -> dict[str, str]:
        """Each baseline, fill and noise-scale parameter with its unit, for provenance."""
        described = {units.check_fill: units.describe_fill, units.check_scale: units.describe_scale}
        params = {**cls.defaults, **params}
        return {
            key: described[check](params[key])
            for key, check in cls.checks.items()
            if check in described
        }

    def clip_to_pixel_range(self, images: Tensor) -> Tensor:
        """Normalized images clipped, channel by channel, to what pixel values 0 and 1 become."""
        try:
            low, high = pixel_bounds(images.flatten(0, -4), self.context.mean, self.context.std)
        except ValueError as error:
            raise MethodError(f"{self.name}: clipping to pixel values: {error}") from None
        return torch.clamp(images, low, high)

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


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register under ``cls.name`` after checking the declared metadata."""
    assert set(cls.checks) == set(cls.defaults), f"{cls.name}: checks and defaults differ"
    for key, value in cls.defaults.items():
        assert cls.checks[key](value) == value, f"{cls.name}: default {key}={value!r} is invalid"
    cls.check_reduction(cls.default_reduction)
    listed = DEFAULT_REDUCTIONS.get(cls.name)
    assert listed == cls.default_reduction, (
        f"{cls.name}: default_reduction {cls.default_reduction!r}, but "
        f"planning.DEFAULT_REDUCTIONS lists {listed!r}"
    )
    return METHODS.register(cls.name)(cls)


METHODS: Registry[type[Method]] = Registry("attribution method")
"""Attribution methods by config name."""


def batched_gradients(
    forward_fn: Callable,
    inputs: tuple[Tensor, ...],
    target_ind: Any = None,
    additional_forward_args: Any = None,
) -> tuple[Tensor, ...]:
    """captum's ``compute_gradients`` with one backward pass for the whole batch.

    captum unbinds the batch's target logits into one scalar per row and differentiates
    the list, which makes one ``ones_like`` and one kernel launch per row: 6,400 for 128
    images of 50 integration steps, 26 times the model's own forward and backward time on
    a GPU. Seeding the backward pass with one tensor of ones is the same arithmetic (each
    logit's gradient seed is 1), so the gradients are the same to the bit.
    """
    from captum._utils.common import _run_forward

    with torch.autograd.set_grad_enabled(True):
        outputs = _run_forward(forward_fn, inputs, target_ind, additional_forward_args)
        if outputs[0].numel() != 1:
            raise ValueError("gradients need one output per row: pass a target")
        return torch.autograd.grad(outputs, inputs, grad_outputs=torch.ones_like(outputs))


def one_backward(attribution):
    """A captum gradient attribution that differentiates a batch in one backward pass
    (:func:`batched_gradients`); returns it."""
    attribution.gradient_func = batched_gradients
    return attribution


def _grad_input(inputs: Tensor) -> Tensor:
    # A detached leaf that requires grad: captum would otherwise set requires_grad on the
    # caller's tensor (and warn about it).
    return inputs.detach().requires_grad_(True)


def _out(attr: Tensor) -> Tensor:
    return attr.detach().to(torch.float32)


@contextlib.contextmanager
def _quiet(*messages: str) -> Iterator[None]:
    """Silence captum's per-call warnings that say nothing about this project's use.

    With no messages the warning filters are left alone.
    """
    if not messages:
        yield
        return
    with warnings.catch_warnings():
        for message in messages:
            warnings.filterwarnings("ignore", message=message)
        yield


_RELU_HOOK_WARNING = "Setting backward hooks on ReLU"  # GuidedBackprop, Deconvolution


def _seed_global(seed: int) -> None:
    # Captum draws noise and samples from the global RNG; torch.manual_seed seeds CUDA too.
    torch.manual_seed(seed)
