"""Entry points: validate a method config, and attribute a whole dataset in seeded batches."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from saliencybench.methods.base import METHODS, AttributionContext, Method, MethodError, batch_seed
from saliencybench.methods.reductions import REDUCTIONS
from saliencybench.registry import UnknownNameError


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
