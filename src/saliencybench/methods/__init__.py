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

Modules, after captum's ``attr/_core``: ``errors``, ``reductions`` and ``base`` (the
:class:`Method` class, its registry and helpers), one module per family (``baselines``,
``gradient``, ``cam``, ``perturbation``, ``surrogates``, ``anchor``, ``optimal``) whose import
registers its methods, and ``driver`` (:func:`check_method`, :func:`attribute_dataset`).
"""

from saliencybench.methods.anchor import (
    AnchorMethod,
    AnchorSearch,
    anchor_sampler,
    kl_lower,
    kl_upper,
    segment_means,
)
from saliencybench.methods.base import (
    METHODS,
    AttributionContext,
    Checker,
    Method,
    MethodError,
    batch_seed,
    normalized_fill,
    normalized_scale,
)
from saliencybench.methods.baselines import RandomMethod, SobelMethod
from saliencybench.methods.cam import GradCamMethod, GuidedGradCamMethod, find_last_conv
from saliencybench.methods.driver import attribute_dataset, check_method
from saliencybench.methods.gradient import (
    DeconvolutionMethod,
    DeepLiftMethod,
    GuidedBackpropMethod,
    InputXGradientMethod,
    IntegratedGradientsMethod,
    SaliencyMethod,
    SmoothGradMethod,
    SmoothGradSqMethod,
    VarGradMethod,
)
from saliencybench.methods.optimal import (
    NoisyBaselineMethod,
    SquareMethod,
    all_square_masks,
    check_sides,
    square_masks,
    square_side,
    square_sides,
)
from saliencybench.methods.perturbation import OcclusionMethod
from saliencybench.methods.reductions import (
    REDUCTIONS,
    reduce_abs,
    reduce_input_abs,
    reduce_input_sum,
    reduce_sum,
)
from saliencybench.methods.surrogates import (
    KernelShapMethod,
    LimeMethod,
    grid_segments,
    slic_segments,
)

__all__ = [
    "METHODS",
    "REDUCTIONS",
    "AnchorMethod",
    "AnchorSearch",
    "AttributionContext",
    "Checker",
    "DeconvolutionMethod",
    "DeepLiftMethod",
    "GradCamMethod",
    "GuidedBackpropMethod",
    "GuidedGradCamMethod",
    "InputXGradientMethod",
    "IntegratedGradientsMethod",
    "KernelShapMethod",
    "LimeMethod",
    "Method",
    "MethodError",
    "NoisyBaselineMethod",
    "OcclusionMethod",
    "RandomMethod",
    "SaliencyMethod",
    "SmoothGradMethod",
    "SmoothGradSqMethod",
    "SobelMethod",
    "SquareMethod",
    "VarGradMethod",
    "anchor_sampler",
    "attribute_dataset",
    "batch_seed",
    "normalized_fill",
    "normalized_scale",
    "check_method",
    "find_last_conv",
    "grid_segments",
    "kl_lower",
    "kl_upper",
    "reduce_abs",
    "reduce_input_abs",
    "reduce_input_sum",
    "reduce_sum",
    "segment_means",
    "slic_segments",
    "all_square_masks",
    "check_sides",
    "square_masks",
    "square_side",
    "square_sides",
]
