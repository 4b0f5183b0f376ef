"""Anchor-LIME for images (Ribeiro et al. 2018): KL-LUCB bounds, the beam search, the sampler."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from saliencybench.methods.base import (
    Method,
    MethodError,
    _integer,
    _out,
    _real,
    register_method,
)
from saliencybench.methods.surrogates import (
    SEGMENTATION_CHECKS,
    SEGMENTATION_DEFAULTS,
    _SurrogateMethod,
)


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


@register_method
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
        **SEGMENTATION_DEFAULTS,
        "n_segments": 20,
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
        **SEGMENTATION_CHECKS,
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
