"""Reductions of raw (N,C',H,W) attributions to (N,H,W) pixel maps, chosen by name."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from saliencybench.methods.errors import MethodError
from saliencybench.registry import Registry

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
