"""One page of every evaluation: ``results/report.html``.

Every evaluation registers an :class:`~saliencybench.evaluations.base.Evaluation` in
:data:`~saliencybench.evaluations.EVALUATIONS`: which per-model summary files it reads, which
tables and figures its section shows, and which scorecard columns it fills, with the
direction in which a value is better.

The page holds, per dataset and model: the accuracy of every trained model (from the
checkpoint sidecars), one section per evaluation with its tables and figures (PNG, embedded
as base64), and the method scorecard. Neither this module nor what the page job imports
loads torch.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench import paths, store
from saliencybench.evaluations import EVALUATIONS, ScoreColumn, ordered_evaluations
from saliencybench.evaluations.curves.spec import estimator_label
from saliencybench.planning import Run, experiment_runs, method_reduction
from saliencybench.summaries import read_combined

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
.table-box { max-width: 100%; overflow-x: auto; margin: 0.6em 0 1.2em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; }
figcaption, .note { color: #555; font-size: 0.85em; }
nav li { margin: 0.15em 0; }
details { margin: 0.4em 0 1.2em; }
summary { cursor: pointer; color: #0072B2; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
"""


def _escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _anchor(*parts: str) -> str:
    return "-".join("".join(c if c.isalnum() else "_" for c in part) for part in parts)


# Tables longer than this fold into a <details> element; their per-class rows always do.
FOLD_ROWS = 30


def _table_html(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table in a box that scrolls sideways when the table is wider than the page."""
    head = "".join(f"<th>{_escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return (
        f"<div class='table-box'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def _folded(summary: str, table: str) -> str:
    return f"<details><summary>{_escape(summary)}</summary>{table}</details>"


def csv_table(path: str | Path) -> str:
    """A CSV file as an HTML table. A table with a ``class`` column shows its rows of class
    ``mean`` and folds the per-class rows; any other table longer than :data:`FOLD_ROWS`
    rows is folded whole."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return "<p class='note'>(empty table)</p>"
    header, body = rows[0], rows[1:]
    if "class" in header:
        column = header.index("class")
        means = [row for row in body if row[column] == "mean"]
        per_class = [row for row in body if row[column] != "mean"]
        shown = _table_html(header, means) if means else ""
        folded = _folded(f"per-class rows ({len(per_class)})", _table_html(header, per_class))
        return shown + (folded if per_class else "")
    if len(body) > FOLD_ROWS:
        return _folded(f"{Path(path).name}: {len(body)} rows", _table_html(header, body))
    return _table_html(header, body)


def embedded_figure(path: str | Path) -> str:
    """A PNG file as an ``<img>`` with a base64 data URI, captioned with its file name."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    name = _escape(Path(path).name)
    return (
        f"<figure><img alt='{name}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{name} (PDF beside it)</figcaption></figure>"
    )


def _significant(text: str) -> str:
    """A CSV number with four significant digits; other text as it is."""
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def reproduction_section(reference: str, root: str | Path = ".") -> str:
    """The "Published vs measured" section from the table that
    ``reproduction.write_reproduction`` wrote: cells (published, measured ± interval,
    difference), rankings (Kendall tau) and claims (reproduced or not)."""
    from saliencybench.reproduction import load_reference

    paper = load_reference(reference)
    with open(Path(root) / paths.reproduction_table(reference), newline="") as handle:
        rows = list(csv.DictReader(handle))
    parts = [
        f"<p>{_escape(paper['paper'])}: {_escape(paper['title'])}. "
        + (f"{_escape(paper['note'])} " if paper.get("note") else "")
        + f"Table: <code>{_escape(paths.reproduction_table(reference))}</code>.</p>"
    ]
    cells = [
        {
            "source": row["source"],
            "what": row["what"],
            "units": row["units"],
            "published": _significant(row["published"]),
            "measured": _significant(row["measured"])
            + (f" ± {_significant(row['interval'])}" if row["interval"] else ""),
            "difference": _significant(row["difference"]),
        }
        for row in rows
        if row["kind"] == "cell"
    ]
    rankings = [
        {
            "source": row["source"],
            "methods ranked": row["what"],
            "Kendall tau": _significant(row["measured"]) or row["verdict"],
        }
        for row in rows
        if row["kind"] == "ranking"
    ]
    claims = [
        {
            "source": row["source"],
            "claim": row["what"],
            "verdict": row["verdict"],
            "measured": row["measured"],
        }
        for row in rows
        if row["kind"] == "claim"
    ]
    for title, table in (("Cells", cells), ("Rank agreement", rankings), ("Claims", claims)):
        if table:
            parts.append(f"<h3>{title}</h3>{_rows_table(table)}")
    return "".join(parts)


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
    return _table_html(list(rows[0]), [list(row.values()) for row in rows])


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
        f"<div class='table-box'><table class='scorecard'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div><ul class='note'>{legend}</ul>"
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
    estimators = {
        name: estimator_label(entry.get("method", name), name, method_reduction(entry))
        for name, entry in config["methods"].items()
    }
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
    if config.get("reference"):
        toc.append("<li><a href='#reproduction'>published vs measured</a></li>")
        parts.append("<h2 id='reproduction'>Published vs measured</h2>")
        parts.append(reproduction_section(config["reference"], root))
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
        sidecars[run] = store.read_json(
            Path(root) / paths.checkpoint_sidecar(*run), "checkpoint sidecar"
        )
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
