"""One page of every evaluation: ``results/report.html`` and the combined summaries.

Every evaluation is one entry of :data:`EVALUATIONS`, keyed by the name experiments list in
``evaluations``. An entry says which per-model summary files it reads, which tables and
figures its section shows, how its summary becomes the tidy Dataset of
``results/summary/{evaluation}.nc``, and which scorecard columns it fills, with the
direction in which a value is better. A new evaluation plugs in with one registration.

The page holds, per dataset and model: the accuracy of every trained model (from the
checkpoint sidecars), one section per evaluation with its tables and figures (PNG, embedded
as base64), and the method scorecard. Nothing here imports torch or xarray at import time,
so the Snakefile can call the path helpers while it parses.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import json
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from saliencybench import paths, store
from saliencybench.registry import Registry


class Run(NamedTuple):
    """One trained model: the unit most evaluations report on."""

    dataset: str
    model: str
    recipe: str
    seed: int


# The coordinates every combined summary gains, in this order.
RUN_DIMS = ("dataset", "model", "recipe", "seed")


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
    """How one evaluation appears in the report and in ``results/summary``.

    ``summary``, ``tables`` and ``figures`` give paths for a run; an evaluation whose
    summary covers every recipe of a model seed (the fidelity summary) sets
    ``per_recipe=False`` and ignores the run's recipe. ``tidy(summary, run)`` returns the
    Dataset to combine: dimensions with index coordinates only, the run's coordinates
    added as dimensions of length one.
    """

    title: str
    description: str
    summary: Callable[[Run], str]
    read: Callable[[str], Any]
    tidy: Callable[[Any, Run], Any]
    tables: Callable[[Run], list[str]]
    figures: Callable[[Run], list[str]]
    columns: tuple[ScoreColumn, ...] = ()
    per_recipe: bool = True


EVALUATIONS: Registry[Evaluation] = Registry("evaluation")
# Sections appear in this order; evaluations registered later follow.
ORDER = ("roar", "curves", "robustness", "randomization", "hermitry")


def ordered_evaluations(names: Iterable[str]) -> list[str]:
    """Registered names in page order: :data:`ORDER` first, then by name."""
    wanted = set(names)
    first = [name for name in ORDER if name in wanted]
    return first + sorted(wanted - set(first))


# ----------------------------------------------------------------------- runs of a config


def experiment_runs(config: Mapping[str, Any]) -> list[tuple[Run, list[str]]]:
    """Every (run, evaluations it lists) of the experiments, in config order."""
    found: dict[Run, list[str]] = {}
    for experiment in config["experiments"]:
        for recipe in experiment["recipes"]:
            for seed in experiment["seeds"]:
                run = Run(experiment["dataset"], experiment["model"], recipe, int(seed))
                listed = found.setdefault(run, [])
                listed.extend(e for e in experiment["evaluations"] if e not in listed)
    return list(found.items())


def evaluation_runs(config: Mapping[str, Any], name: str) -> list[Run]:
    """Runs whose experiments list evaluation ``name``."""
    return [run for run, listed in experiment_runs(config) if name in listed]


def configured_evaluations(config: Mapping[str, Any]) -> list[str]:
    """Evaluations some experiment lists, in page order; unknown names raise."""
    names = {name for _, listed in experiment_runs(config) for name in listed}
    for name in names:
        EVALUATIONS.get(name)
    return ordered_evaluations(names)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def summary_inputs(config: Mapping[str, Any], name: str) -> list[str]:
    """Per-model summary files that ``results/summary/{name}.nc`` combines."""
    entry = EVALUATIONS.get(name)
    return _unique(entry.summary(run) for run in evaluation_runs(config, name))


def summary_runs(config: Mapping[str, Any], name: str) -> list[list[Any]]:
    """(path, dataset, model, recipe, seed) per summary file, as plain lists for params."""
    entry = EVALUATIONS.get(name)
    rows = {}
    for run in evaluation_runs(config, name):
        rows.setdefault(entry.summary(run), [entry.summary(run), *run])
    return list(rows.values())


def report_inputs(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Everything the page reads: combined summaries, tables, PNG figures, sidecars."""
    names = configured_evaluations(config)
    runs = experiment_runs(config)
    inputs = {
        "summaries": [paths.evaluation_summary(name) for name in names],
        "sidecars": _unique(paths.checkpoint_sidecar(*run) for run, _ in runs),
        "tables": [],
        "figures": [],
    }
    for run, listed in runs:
        for name in ordered_evaluations(listed):
            entry = EVALUATIONS.get(name)
            inputs["tables"].extend(entry.tables(run))
            inputs["figures"].extend(entry.figures(run))
    inputs["tables"] = _unique(inputs["tables"])
    inputs["figures"] = _unique(inputs["figures"])
    return inputs


# ----------------------------------------------------------------------- combined summaries


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


def combine(parts: Sequence[Any], name: str):
    """One Dataset from the tidy parts of every run (outer join; missing cells NaN)."""
    import xarray as xr

    if not parts:
        raise ValueError(f"no summaries of evaluation {name!r} to combine")
    combined = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="drop")
    combined.attrs = {"format": f"saliencybench.summary/{name}/1", "evaluation": name}
    return combined


def build_summary(name: str, rows: Sequence[Sequence[Any]]):
    """The combined Dataset of evaluation ``name`` from (path, dataset, model, recipe, seed)."""
    entry = EVALUATIONS.get(name)
    parts = []
    for path, dataset, model, recipe, seed in rows:
        run = Run(dataset, model, recipe, int(seed))
        parts.append(entry.tidy(entry.read(path), run))
    return combine(parts, name)


def read_combined(path: str | Path, name: str):
    """Open ``results/summary/{name}.nc``."""
    return store.read_netcdf(path, f"saliencybench.summary/{name}/1", f"{name} summary")


def _select(summary, run: Run, per_recipe: bool = True):
    """The run's cells of a combined summary, or None where the run is absent."""
    keys = dict(zip(RUN_DIMS, run, strict=True))
    if not per_recipe:
        keys.pop("recipe")
    for key, value in keys.items():
        if value not in summary[key].values:
            return None
    return summary.sel(keys)


def _reader(module: str, function: str) -> Callable[[str], Any]:
    """A summary reader of ``saliencybench.evaluations.{module}``, imported when called
    (the evaluation modules import torch; the Snakefile imports this module)."""

    def read(path: str):
        import importlib

        return getattr(importlib.import_module(f"saliencybench.evaluations.{module}"), function)(
            path
        )

    return read


# ----------------------------------------------------------------------- ROAR


def _roar_tidy(summary, run: Run):
    renamed = summary.rename({"seed": "retrain_seed"})
    return with_run(indexed_only(renamed), run)


def roar_area_difference(summary, run: Run, mode: str) -> dict[str, float]:
    """Mean retrained accuracy over the fractions minus that of ``random``, in points.

    The area under the accuracy curve from 0 (the unmasked models) to the largest fraction
    by the trapezoidal rule, divided by that fraction, averaged over retraining seeds;
    ``random``'s area is subtracted, so ``random`` scores 0.
    """
    cells = _select(summary, run)
    if cells is None or mode not in cells["mode"].values:
        return {}
    fractions = np.concatenate([[0.0], cells["fraction"].values.astype(float)])
    baseline = float(np.nanmean(cells["baseline_accuracy"].values)) * 100.0
    areas = {}
    for method in cells["method"].values:
        accuracy = cells["accuracy"].sel({"method": method, "mode": mode}).values * 100.0
        if not np.isfinite(accuracy).any():
            continue
        curve = np.concatenate([[baseline], np.nanmean(accuracy, axis=-1)])
        widths = np.diff(fractions)
        area = float(np.sum(widths * (curve[1:] + curve[:-1]) / 2.0)) / fractions[-1]
        areas[str(method)] = area
    if "random" not in areas:
        return {}
    return {method: area - areas["random"] for method, area in areas.items()}


EVALUATIONS.register("roar")(
    Evaluation(
        title="ROAR and KAR",
        description=(
            "RemOve And Retrain / Keep And Retrain (Hooker et al. 2019): the share of pixels a "
            "method ranks highest (ROAR) or lowest (KAR) is replaced by the training mean in "
            "train and test images, and the model is retrained from scratch."
        ),
        summary=lambda run: paths.roar_summary(*run),
        read=_reader("roar", "read_summary"),
        tidy=_roar_tidy,
        tables=lambda run: [paths.roar_table(*run)],
        figures=lambda run: [paths.roar_figure(*run, suffix="png")],
        columns=(
            ScoreColumn(
                "ROAR: accuracy vs random (points)",
                "lower",
                "mean retrained accuracy over the fractions removed most-important-first, "
                "minus random's",
                lambda summary, run, context: roar_area_difference(summary, run, "roar"),
                fmt=".2f",
            ),
            ScoreColumn(
                "KAR: accuracy vs random (points)",
                "higher",
                "the same with the least important pixels removed",
                lambda summary, run, context: roar_area_difference(summary, run, "kar"),
                fmt=".2f",
            ),
        ),
    )
)


# ----------------------------------------------------------------------- curves and fidelity


def _fidelity_tidy(summary, run: Run):
    return with_run(indexed_only(summary), run, per_recipe=False)


def fidelity_scores(summary, run: Run, context: Mapping[str, Any]) -> dict[str, float]:
    """Fidelity A of each method's stored map (its estimator label in ``context``)."""
    cells = _select(summary, run)
    if cells is None:
        return {}
    labels = context.get("estimators", {})
    estimators = [str(e) for e in cells["estimator"].values]
    scores = {}
    for method, label in labels.items():
        if label in estimators:
            value = float(cells["area"].sel(estimator=label))
            if np.isfinite(value):
                scores[method] = value
    return scores


EVALUATIONS.register("curves")(
    Evaluation(
        title="Perturbation curves and fidelity A",
        description=(
            "Pixels perturbed most-important-first (MIF) and least-important-first (LIF); "
            "fidelity A is the area between the normalized LIF and MIF logit curves, x100, "
            "with a 95 % interval over images (Brocki & Chung 2023)."
        ),
        summary=lambda run: paths.fidelity_summary(run.dataset, run.model, run.seed),
        read=_reader("curves", "read_fidelity"),
        tidy=_fidelity_tidy,
        tables=lambda run: [paths.fidelity_table(run.dataset, run.model, run.seed)],
        figures=lambda run: [
            paths.curves_figure(run.dataset, run.model, run.seed, suffix="png", kind=kind)
            for kind in ("curves", "lif_example")
        ],
        columns=(
            ScoreColumn(
                "fidelity A",
                "higher",
                "area between the LIF and MIF curves of the method's stored map, x100",
                fidelity_scores,
                fmt=".1f",
            ),
        ),
        per_recipe=False,
    )
)


# ----------------------------------------------------------------------- robustness


def _robustness_tidy(summary, run: Run):
    return with_run(indexed_only(summary), run)


def robustness_scores(summary, run: Run, metric: str) -> dict[str, float]:
    """``metric`` of each method, unsmoothed, global scope (every method has one)."""
    cells = _select(summary, run)
    if cells is None:
        return {}
    part = cells[metric].sel(smoothing="none", scope="global")
    return {
        str(method): float(value)
        for method, value in zip(part["method"].values, part.values, strict=True)
        if np.isfinite(value)
    }


EVALUATIONS.register("robustness")(
    Evaluation(
        title="Infidelity and max-sensitivity",
        description=(
            "Infidelity under square removal and noisy baselines and max-sensitivity in an "
            "L-infinity box (Yeh et al. 2019), for every method and its SmoothGrad variant; "
            "lower is better in every column."
        ),
        summary=lambda run: paths.robustness_summary(*run),
        read=_reader("robustness", "read_summary"),
        tidy=_robustness_tidy,
        tables=lambda run: [paths.robustness_table(*run)],
        figures=lambda run: [paths.robustness_figure(*run, suffix="png")],
        columns=(
            ScoreColumn(
                "infidelity",
                "lower",
                "INFD of the global explanation under square removal, unsmoothed",
                lambda summary, run, context: robustness_scores(summary, run, "infidelity"),
            ),
            ScoreColumn(
                "max-sensitivity",
                "lower",
                "SENS_MAX of the global explanation, unsmoothed",
                lambda summary, run, context: robustness_scores(summary, run, "sensitivity"),
            ),
        ),
    )
)


# ----------------------------------------------------------------------- randomization


def _randomization_tidy(summary, run: Run):
    return with_run(indexed_only(summary), run)


def randomization_scores(summary, run: Run, context: Mapping[str, Any]) -> dict[str, float]:
    """S^I of the extended independent parameter randomization test per method."""
    cells = _select(summary, run)
    if cells is None:
        return {}
    return {
        str(method): float(value)
        for method, value in zip(cells["method"].values, cells["sensitivity"].values, strict=True)
        if np.isfinite(value)
    }


def _randomization_note(summary, run: Run, method: str) -> str:
    cells = _select(summary, run)
    value = float(cells["passes"].sel({"method": method}))
    return "" if not np.isfinite(value) else ("pass" if value else "fail")


EVALUATIONS.register("randomization")(
    Evaluation(
        title="Parameter randomization",
        description=(
            "Maps of models whose layers are re-initialized, cascading and independently, "
            "compared with the trained model's (Adebayo et al. 2018); the extended IPR test "
            "of Sriram & Conati: S^I = mean 1 - SSIM, pass when S^I reaches the threshold."
        ),
        summary=lambda run: paths.randomization_summary(*run),
        read=_reader("randomization", "read_summary"),
        tidy=_randomization_tidy,
        tables=lambda run: [paths.randomization_table(*run)],
        figures=lambda run: [
            paths.randomization_figure(*run, suffix="png", kind=kind)
            for kind in paths.RANDOMIZATION_FIGURES
        ],
        columns=(
            ScoreColumn(
                "S^I (IPR test)",
                "higher",
                "mean 1 - SSIM over layers and images under independent randomization; "
                "pass or fail against randomization.pass_threshold",
                randomization_scores,
                note=_randomization_note,
            ),
        ),
    )
)


# ----------------------------------------------------------------------- hermitry


def _hermitry_tidy(summary, run: Run):
    """H per entry and class, an entry labelled ``source:map:level``; H per panel."""
    labels = [
        f"{source}:{method}:{'' if not np.isfinite(level) else f'{level:g}'}"
        for source, method, level in zip(
            summary["source"].values,
            summary["method"].values,
            summary["level"].values,
            strict=True,
        )
    ]
    summary = summary.assign_coords(entry=labels)
    return with_run(indexed_only(summary), run)


def hermitry_scores(summary, run: Run, context: Mapping[str, Any]) -> dict[str, float]:
    """Mean H over classes of the inputs each captured method sends to the model."""
    cells = _select(summary, run)
    if cells is None:
        return {}
    methods = set(context.get("methods", ()))
    scores = {}
    for panel in cells["panel"].values:
        if str(panel) in methods:
            value = float(np.nanmean(cells["panel_hermitry"].sel(panel=panel).values))
            if np.isfinite(value):
                scores[str(panel)] = value
    return scores


EVALUATIONS.register("hermitry")(
    Evaluation(
        title="Hermitry ratio",
        description=(
            "The share of the inputs a perturbation method sends to the model that lie "
            "beyond the 95th percentile of class-conditional Mahalanobis distances of "
            "penultimate encodings (the hermitry paper); low at or below 0.3."
        ),
        summary=lambda run: paths.hermitry_summary(*run),
        read=_reader("hermitry", "read_summary"),
        tidy=_hermitry_tidy,
        tables=lambda run: [paths.hermitry_table(*run, kind="hermitry")],
        figures=lambda run: [paths.hermitry_figure(*run, suffix="png")],
        columns=(
            ScoreColumn(
                "hermitry H",
                "lower",
                "share of the method's queries out of distribution, mean over classes "
                "(perturbation methods only)",
                hermitry_scores,
            ),
        ),
    )
)


# ----------------------------------------------------------------------- scorecard


def rank(values: Mapping[str, float], better: str) -> dict[str, int]:
    """Competition ranks (1 = best; ties share the best rank, the next rank is skipped)."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    sign = 1.0 if better == "lower" else -1.0
    keyed = {method: sign * value for method, value in values.items() if np.isfinite(value)}
    return {
        method: 1 + sum(other < key for other in keyed.values()) for method, key in keyed.items()
    }


def rank_color(position: int, count: int) -> str:
    """Background of a cell of rank ``position`` among ``count``: ColorBrewer's YlGnBu
    (colorblind-safe), dark blue for the best, pale yellow for the worst."""
    import matplotlib

    share = 0.0 if count <= 1 else (position - 1) / (count - 1)
    red, green, blue, _ = matplotlib.colormaps["YlGnBu"](0.8 - 0.7 * share)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


@dataclass
class Scorecard:
    """Methods x columns of one run: values, ranks, notes, and each column's direction."""

    run: Run
    methods: list[str]
    columns: list[tuple[str, ScoreColumn]]
    values: dict[str, dict[str, float]]
    ranks: dict[str, dict[str, int]]
    notes: dict[str, dict[str, str]]


def scorecard(
    run: Run,
    names: Sequence[str],
    summaries: Mapping[str, Any],
    context: Mapping[str, Any],
) -> Scorecard:
    """The scorecard of ``run`` from the combined summaries of the evaluations ``names``."""
    columns, values, ranks, notes = [], {}, {}, {}
    methods: list[str] = []
    for name in ordered_evaluations(names):
        entry = EVALUATIONS.get(name)
        summary = summaries[name]
        for column in entry.columns:
            key = f"{name}:{column.label}"
            scores = column.scores(summary, run, context)
            columns.append((key, column))
            values[key] = scores
            ranks[key] = rank(scores, column.better)
            notes[key] = {m: column.note(summary, run, m) for m in scores} if column.note else {}
            methods.extend(m for m in scores if m not in methods)
    order = list(context.get("method_order", ()))
    methods.sort(key=lambda m: (order.index(m) if m in order else len(order), m))
    return Scorecard(run, methods, columns, values, ranks, notes)


# ----------------------------------------------------------------------- HTML


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #0072B2; }
h2 { margin-top: 2.5em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; }
figcaption, .note { color: #555; font-size: 0.85em; }
nav li { margin: 0.15em 0; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
"""


def _escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _anchor(*parts: str) -> str:
    return "-".join("".join(c if c.isalnum() else "_" for c in part) for part in parts)


def csv_table(path: str | Path) -> str:
    """A CSV file as an HTML table."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return "<p class='note'>(empty table)</p>"
    head = "".join(f"<th>{_escape(cell)}</th>" for cell in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_escape(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def embedded_figure(path: str | Path) -> str:
    """A PNG file as an ``<img>`` with a base64 data URI, captioned with its file name."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    name = _escape(Path(path).name)
    return (
        f"<figure><img alt='{name}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{name} (PDF beside it)</figcaption></figure>"
    )


def accuracy_rows(sidecars: Mapping[Run, Mapping[str, Any]]) -> list[dict[str, str]]:
    """Train and test accuracy of every model, from the checkpoint sidecars."""
    rows = []
    for run, sidecar in sidecars.items():

        def percent(key: str, sidecar=sidecar) -> str:
            value = sidecar.get(key)
            return "" if value is None else f"{100.0 * float(value):.2f}"

        rows.append(
            {
                "recipe": run.recipe,
                "seed": str(run.seed),
                "train accuracy %": percent("train_accuracy"),
                "test accuracy %": percent("test_accuracy"),
                "epochs": str(sidecar.get("recipe_config", {}).get("epochs", "")),
            }
        )
    return rows


def _rows_table(rows: Sequence[Mapping[str, str]]) -> str:
    if not rows:
        return "<p class='note'>(none)</p>"
    head = "".join(f"<th>{_escape(key)}</th>" for key in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_escape(value)}</td>" for value in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def scorecard_html(card: Scorecard) -> str:
    """The scorecard as an HTML table, cells colored by rank, directions in the header."""
    if not card.columns:
        return "<p class='note'>(no evaluation with scorecard columns)</p>"
    head = "<th>method</th>" + "".join(
        f"<th title='{_escape(column.meaning)}'>{_escape(column.label)}<br>"
        f"<small>{'↓' if column.better == 'lower' else '↑'} {column.better} is better</small>"
        "</th>"
        for _, column in card.columns
    )
    body = []
    for method in card.methods:
        cells = [f"<td>{_escape(method)}</td>"]
        for key, column in card.columns:
            value = card.values[key].get(method)
            if value is None:
                cells.append("<td style='background:#eee;color:#888'>–</td>")
                continue
            position = card.ranks[key][method]
            color = rank_color(position, len(card.ranks[key]))
            dark = position - 1 < 0.5 * max(len(card.ranks[key]) - 1, 1)
            text = f"{value:{column.fmt}}"
            note = card.notes[key].get(method)
            if note:
                text += f" {note}"
            cells.append(
                f"<td style='background:{color};color:{'#fff' if dark else '#000'}' "
                f"title='rank {position} of {len(card.ranks[key])}'>{_escape(text)} "
                f"<small>#{position}</small></td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    legend = "".join(
        f"<li><b>{_escape(column.label)}</b> ({column.better} is better): "
        f"{_escape(column.meaning)}</li>"
        for _, column in card.columns
    )
    return (
        f"<table class='scorecard'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
        f"</tbody></table><ul class='note'>{legend}</ul>"
        "<p class='note'>Ranks are per column among the methods with a value: 1 is best, "
        "ties share the better rank; the color runs from dark blue (best) to pale yellow "
        "(worst); gray cells have no value.</p>"
    )


def code_version(root: str | Path | None = None) -> str:
    """The package version and, inside a git checkout, the commit (``+dirty`` if edited)."""
    from importlib import metadata

    try:
        version = metadata.version("saliencybench")
    except metadata.PackageNotFoundError:
        version = "unknown"
    root = Path(root) if root else Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"saliencybench {version} (not a git checkout)"
    return f"saliencybench {version}, commit {commit}{'+dirty' if dirty else ''}"


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the validated config as canonical JSON (keys sorted)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def method_context(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the summaries do not record: each method's fidelity estimator label (its stored
    map's reduction), the captured perturbation methods, and the config's method order."""
    from saliencybench.evaluations.curves import estimator_label
    from saliencybench.methods import METHODS

    estimators = {}
    for name, entry in config["methods"].items():
        method = entry.get("method", name)
        reduction = entry.get("reduction") or METHODS.get(method).default_reduction
        estimators[name] = estimator_label(method, name, reduction)
    return {
        "estimators": estimators,
        "methods": list(config["methods"]),
        "method_order": list(config["methods"]),
    }


def render_page(
    config: Mapping[str, Any],
    summaries: Mapping[str, Any],
    sidecars: Mapping[Run, Mapping[str, Any]],
    *,
    version: str,
    root: str | Path = ".",
) -> str:
    """The whole page as one string; tables and figures are read relative to ``root``."""
    import yaml

    root = Path(root)
    context = method_context(config)
    runs = experiment_runs(config)
    models = list(dict.fromkeys((run.dataset, run.model) for run, _ in runs))
    toc, parts = [], []
    for dataset, model in models:
        mine = [
            (run, listed) for run, listed in runs if (run.dataset, run.model) == (dataset, model)
        ]
        names = ordered_evaluations({name for _, listed in mine for name in listed})
        anchor = _anchor(dataset, model)
        toc.append(f"<li><a href='#{anchor}'>{_escape(dataset)} / {_escape(model)}</a><ul>")
        parts.append(f"<h2 id='{anchor}'>{_escape(dataset)} / {_escape(model)}</h2>")
        parts.append(f"<h3 id='{anchor}-accuracy'>Model accuracy per recipe</h3>")
        toc.append(f"<li><a href='#{anchor}-accuracy'>model accuracy</a></li>")
        parts.append(_rows_table(accuracy_rows({run: sidecars[run] for run, _ in mine})))
        for name in names:
            entry = EVALUATIONS.get(name)
            section = _anchor(dataset, model, name)
            toc.append(f"<li><a href='#{section}'>{_escape(entry.title)}</a></li>")
            parts.append(f"<h3 id='{section}'>{_escape(entry.title)}</h3>")
            parts.append(f"<p>{_escape(entry.description)}</p>")
            shown: set[str] = set()
            for run, listed in mine:
                if name not in listed:
                    continue
                unit = entry.tables(run) + entry.figures(run)
                if all(path in shown for path in unit):
                    continue
                shown.update(unit)
                label = (
                    f"recipe {run.recipe}, seed {run.seed}"
                    if entry.per_recipe
                    else f"seed {run.seed}, every recipe"
                )
                parts.append(f"<h4>{_escape(label)}</h4>")
                parts.extend(csv_table(root / path) for path in entry.tables(run))
                parts.extend(embedded_figure(root / path) for path in entry.figures(run))
        scored = [name for name in names if EVALUATIONS.get(name).columns]
        section = _anchor(dataset, model, "scorecard")
        toc.append(f"<li><a href='#{section}'>method scorecard</a></li></ul></li>")
        parts.append(f"<h3 id='{section}'>Method scorecard</h3>")
        for run, listed in mine:
            wanted = [name for name in scored if name in listed]
            card = scorecard(run, wanted, summaries, context)
            parts.append(f"<h4>recipe {_escape(run.recipe)}, seed {run.seed}</h4>")
            parts.append(scorecard_html(card))
    config_text = yaml.safe_dump(json.loads(json.dumps(config, default=str)), sort_keys=False)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>saliencybench report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>saliencybench report</h1>"
        f"<p>Code: <code>{_escape(version)}</code>. Config SHA-256 (canonical JSON of the "
        f"validated config): <code>{config_hash(config)}</code> (in full at the end).</p>"
        f"<nav><ul>{''.join(toc)}<li><a href='#config'>config</a></li></ul></nav>"
        + "".join(parts)
        + "<h2 id='config'>Config</h2>"
        + f"<pre>{_escape(config_text)}</pre></body></html>"
    )


def read_sidecars(config: Mapping[str, Any], root: str | Path = ".") -> dict[Run, dict]:
    """The checkpoint sidecar of every run of the experiments."""
    sidecars = {}
    for run, _ in experiment_runs(config):
        with open(Path(root) / paths.checkpoint_sidecar(*run)) as handle:
            sidecars[run] = json.load(handle)
    return sidecars


def write_page(
    config: Mapping[str, Any],
    summary_paths: Mapping[str, str | Path],
    output: str | Path,
    *,
    root: str | Path = ".",
) -> None:
    """Read the combined summaries and sidecars, render the page and write it atomically."""
    summaries = {name: read_combined(path, name) for name, path in summary_paths.items()}
    page = render_page(
        config, summaries, read_sidecars(config, root), version=code_version(), root=root
    )
    with store.atomic_path(output) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
