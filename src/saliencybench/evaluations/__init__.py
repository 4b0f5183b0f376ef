"""The evaluations, one folder each, registered by name.

Each folder holds ``spec`` (torch-free: paths, methods, targets, job settings, config checks
and the report section), ``compute`` (the jobs that run a model), ``summary`` (numpy and
xarray only) and ``report`` (tables and figures). Importing this package imports only the
specs, so the Snakefile and the page job stay free of torch.
"""

from __future__ import annotations

from collections.abc import Iterable

from saliencybench.evaluations.base import Evaluation, ScoreColumn
from saliencybench.evaluations.curves import spec as curves_spec
from saliencybench.evaluations.hermitry import spec as hermitry_spec
from saliencybench.evaluations.randomization import spec as randomization_spec
from saliencybench.evaluations.roar import spec as roar_spec
from saliencybench.evaluations.robustness import spec as robustness_spec
from saliencybench.registry import Registry

__all__ = ["EVALUATIONS", "ORDER", "Evaluation", "ScoreColumn", "ordered_evaluations"]

EVALUATIONS: Registry[Evaluation] = Registry("evaluation")
# Sections appear on the page in this order; evaluations registered later follow by name.
ORDER = ("roar", "curves", "robustness", "randomization", "hermitry")

# Imported as <name>_spec: a bare <name> would hide the subpackage of that name.
for _spec in (roar_spec, curves_spec, robustness_spec, randomization_spec, hermitry_spec):
    EVALUATIONS.register(_spec.NAME)(_spec.EVALUATION)


def ordered_evaluations(names: Iterable[str]) -> list[str]:
    """Registered names in page order: :data:`ORDER` first, then by name."""
    wanted = set(names)
    first = [name for name in ORDER if name in wanted]
    return first + sorted(wanted - set(first))
