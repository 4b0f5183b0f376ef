"""What every evaluation declares: :class:`Evaluation`, its :class:`ScoreColumn`s, and the
helpers that turn a per-model summary into the tidy rows of ``results/summary``.

Torch-free and xarray-free at import time: the Snakefile and the page job import it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from saliencybench.planning import RUN_DIMS, Run


@dataclass(frozen=True)
class ScoreColumn:
    """One scorecard column: a number per method of one run, and which way is better.

    ``scores(summary, run, context)`` gets the evaluation's combined tidy Dataset and returns
    ``{method: value}``; ``context`` carries what the summary cannot say (the estimator
    label of each method's stored map). ``note(summary, run, method)`` may add text to a
    cell; ``fmt`` formats the value.
    """

    label: str
    better: str  # "lower" or "higher"
    meaning: str
    scores: Callable[[Any, Run, Mapping[str, Any]], dict[str, float]]
    fmt: str = ".3g"
    note: Callable[[Any, Run, str], str] | None = None


@dataclass(frozen=True)
class Evaluation:
    """One evaluation as the workflow plans it and the report shows it.

    Args:
        name: the name experiments list in ``evaluations``; also its folder and rule file.
        title, description: the heading and paragraph of its section on the page.
        summary: path of the per-model summary of a run; an evaluation whose summary covers
            every recipe of a model seed (the fidelity summary) sets ``per_recipe=False``
            and ignores the run's recipe.
        read: opens a per-model summary (imported when called: summaries need xarray).
        tidy: ``tidy(summary, run)``, the Dataset to combine into
            ``results/summary/{name}.nc``: dimensions with index coordinates only, the run's
            coordinates added as dimensions of length one.
        tables, figures: the CSV tables and PNG figures of a run that the page shows.
        targets: every file ``snakemake {name}`` builds for a config.
        check: config checks beyond the schema (cross-references of its section), raising
            ``ConfigError``; may fill defaults in place.
        columns: its scorecard columns.
    """

    name: str
    title: str
    description: str
    summary: Callable[[Run], str]
    read: Callable[[str], Any]
    tidy: Callable[[Any, Run], Any]
    tables: Callable[[Run], list[str]]
    figures: Callable[[Run], list[str]]
    targets: Callable[[Mapping[str, Any]], list[str]]
    check: Callable[[dict[str, Any]], None] | None = None
    columns: tuple[ScoreColumn, ...] = ()
    per_recipe: bool = True


def lazy(module: str, function: str) -> Callable[..., Any]:
    """``module.function``, imported on the first call (keeps the spec import light)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), function)(*args, **kwargs)

    return call


def unique(items) -> list:
    """``items`` without repeats, in first-seen order."""
    return list(dict.fromkeys(items))


# ----------------------------------------------------------------------- tidy summaries


def indexed_only(dataset):
    """The variables whose every dimension has an index coordinate; other coordinates go.

    Per-image examples (pixels, image axes) do not line up across datasets and models, so
    they stay in the per-model summaries.
    """
    indexed = set(dataset.indexes)
    keep = [name for name, var in dataset.data_vars.items() if set(var.dims) <= indexed]
    dropped = [name for name in dataset.coords if name not in indexed]
    return dataset[keep].drop_vars(dropped)


def with_run(dataset, run: Run, per_recipe: bool = True):
    """``dataset`` with the run's coordinates added as dimensions of length one."""
    names = dict(zip(RUN_DIMS, run, strict=True))
    if not per_recipe:
        names.pop("recipe")
    return dataset.expand_dims({key: [value] for key, value in names.items()})


def tidy_run(summary, run: Run):
    """The usual tidy form: indexed variables only, with the run's coordinates."""
    return with_run(indexed_only(summary), run)


def select_run(summary, run: Run, per_recipe: bool = True):
    """The run's cells of a combined summary, or None where the run is absent."""
    keys = dict(zip(RUN_DIMS, run, strict=True))
    if not per_recipe:
        keys.pop("recipe")
    for key, value in keys.items():
        if value not in summary[key].values:
            return None
    return summary.sel(keys)
