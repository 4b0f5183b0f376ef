"""The optimal explanations of Yeh et al. (2019): least infidelity under noisy baselines and
under square removal."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from saliencybench import units
from saliencybench.methods.base import (
    AttributionContext,
    Method,
    MethodError,
    _boolean,
    _integer,
    _out,
    _real,
    register_method,
)


def square_side(side: int | None, height: int, width: int) -> int:
    """The side of the removed square: ``side``, or 1/8 of the shorter image side (at least 1).

    Shared by the ``square`` method and the square-removal perturbation of the robustness
    evaluation, so that both use the same distribution by default.
    """
    resolved = side or max(1, round(min(height, width) / 8))
    if resolved > min(height, width):
        raise MethodError(f"square side {resolved} exceeds the image size {height}x{width}")
    return resolved


def square_sides(side: int | list[int] | None, height: int, width: int) -> list[int]:
    """The square sides of ``side``: one side (None: :func:`square_side`'s default) or a
    list of them (Yeh et al.'s code uses every side from 1 to 10)."""
    if isinstance(side, list):
        return [square_side(one, height, width) for one in side]
    return [square_side(side, height, width)]


def check_sides(value: Any) -> int | list[int] | None:
    """A square side: null, a positive integer, or a non-empty list of distinct ones."""
    if isinstance(value, list):
        if not value or len(set(value)) != len(value):
            raise ValueError(f"must be a non-empty list of distinct sides, got {value!r}")
        return [_integer(1)(one) for one in value]
    return _integer(1, optional=True)(value)


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


def all_square_masks(
    height: int, width: int, sides: list[int], stride: int = 1, device=None
) -> Tensor:
    """Every square of every side in ``sides`` on a grid of ``stride`` pixels, side by side
    in the order given: float (P, H, W), P = sum over sides of the positions of each."""
    return torch.cat([square_masks(height, width, side, stride, device) for side in sides])


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


@register_method
class NoisyBaselineMethod(Method):
    """``noisy_baseline``: least infidelity under I = x - (x0 + e), e ~ N(0, noise_std^2 Id).

    Yeh et al. (2019), Prop. 2.1: phi* = E[I I^T]^-1 E[I I^T IG(f, x, I)], and since
    I^T IG(f, x, I) = f(x) - f(x - I), the second factor is E[I (f(x) - f(x0 + e))]: forward
    passes only. Both moments are Monte-Carlo means over the same ``n_samples`` draws, so phi*
    is the ridge regression of the logit drops on the perturbations; for a linear model it
    recovers the weights exactly. The ridge term ``ridge x trace / d`` keeps the sample
    second moment invertible when there are fewer draws than inputs. A local explanation.

    Parameters:
        noise_std (0.2): standard deviation of the baseline noise: a number in the
            normalized space, or ``{pixel: s}`` in pixel units (:mod:`saliencybench.units`).
        baseline (0.0): the clean baseline x0: a number in the normalized space (0 = training
            mean), or ``black``, ``white``, ``mean``, ``{pixel: v}``.
        clip (false): clip x0 + e to pixel values [0, 1], as Yeh et al.'s code does (with
            ``baseline: black`` and ``noise_std: {pixel: 0.2}``).
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
        "clip": False,
        "n_samples": 1000,
        "ridge": 1e-4,
        "forward_batch_size": 2048,
    }
    checks = {
        "noise_std": units.check_scale,
        "baseline": units.check_fill,
        "clip": _boolean,
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
        baseline, noise_std = self.fill_value("baseline", x), self.scale_value("noise_std", x)
        for start in range(0, p["n_samples"], per_pass):
            draws = min(per_pass, p["n_samples"] - start)
            noise = torch.randn((draws, *x.shape), generator=generator, device=x.device)
            noisy_baseline = baseline + noise_std * noise  # x - I
            if p["clip"]:
                noisy_baseline = self.clip_to_pixel_range(noisy_baseline)
            drops = (unperturbed - _target_logits(self.model, noisy_baseline, target)).double()
            perturbations = (x[None] - noisy_baseline).reshape(draws, n, d).double()
            second_moment += torch.einsum("kni,knj->nij", perturbations, perturbations)
            first_moment += torch.einsum("kni,kn->ni", perturbations, drops)
        ridge = p["ridge"] * second_moment.diagonal(dim1=1, dim2=2).mean(1)
        eye = torch.eye(d, dtype=torch.float64, device=x.device)
        phi = torch.linalg.solve(second_moment + ridge[:, None, None] * eye, first_moment)
        return _out(phi.view_as(x))


@register_method
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
        side (null): square side in pixels; null = 1/8 of the shorter image side; a list of
            sides uses every square of each (Yeh et al.'s code: sides 1 to 10).
        stride (1): grid of square positions.
        baseline (0.0): fill value: a number in the normalized space (0 = training mean), or
            ``black``, ``white``, ``mean``, ``{pixel: v}`` (:mod:`saliencybench.units`).
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
        "side": check_sides,
        "stride": _integer(1),
        "baseline": units.check_fill,
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
            sides = square_sides(self.params["side"], height, width)
            masks = all_square_masks(height, width, sides, self.params["stride"], device)
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
        baseline = self.fill_value("baseline", x)
        for start in range(0, len(masks), per_pass):
            stop = min(len(masks), start + per_pass)
            copies = torch.where(removed[start:stop], baseline, x[None])
            drops[start:stop] = unperturbed - _target_logits(self.model, copies, target)
        first_moment = drops.T @ masks.reshape(len(masks), -1).double() / len(masks)
        phi = torch.cholesky_solve(first_moment.T, factor).T
        return _out(phi.view(n, 1, height, width))
