"""The hermitry tables and figures, and the report jobs that write them from summaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from saliencybench.evaluations.hermitry.summary import read_summary
from saliencybench.plotting import pyplot, save_figure, write_csv

HERMITRY_SOURCE_LABELS = {
    "train_train": "train-train",
    "train_val": "train-val",
    "white_noise": "train-white noise",
    "foreign": "train-foreign",
    "roar": "ROAR",
    "mif": "MIF",
    "lif": "LIF",
    "infidelity_square": "infidelity, square",
    "infidelity_noisy": "infidelity, noisy baseline",
}


def _entry_label(source: str, method: str, level: float) -> str:
    label = HERMITRY_SOURCE_LABELS.get(source, source)
    if method:
        label = f"{label} {method}"
    if np.isfinite(level):
        label = f"{label} {level:g}"
    return label


def hermitry_table(summary, *, model: str) -> list[dict[str, str]]:
    """Rows of the hermitry table, the layout of Table 4 of the hermitry paper.

    One row per captured method (then per control) and class: H, the method, the model,
    the class, and ``low`` (H at or below ``low_ratio``) or ``high``; low rows first, then
    high, each sorted by H, as the paper's two halves. A row ``mean`` per source follows.
    """
    low_ratio = float(summary.attrs["low_ratio"])
    panels = [str(p) for p in summary["panel"].values]
    rows, means = [], []
    for p, panel in enumerate(panels):
        ratios = summary["panel_hermitry"].values[p]
        for k, name in enumerate(summary["class_name"].values):
            if not np.isfinite(ratios[k]):
                continue
            rows.append(
                {
                    "hermitry_ratio": f"{ratios[k]:.3f}",
                    "method": HERMITRY_SOURCE_LABELS.get(panel, panel),
                    "model": model,
                    "class": str(name),
                    "hermitry": "low" if ratios[k] <= low_ratio else "high",
                }
            )
        mean = float(np.nanmean(ratios))
        means.append(
            {
                "hermitry_ratio": f"{mean:.3f}",
                "method": HERMITRY_SOURCE_LABELS.get(panel, panel),
                "model": model,
                "class": "mean",
                "hermitry": "low" if mean <= low_ratio else "high",
            }
        )
    rows.sort(key=lambda row: (row["hermitry"] != "low", float(row["hermitry_ratio"])))
    return rows + means


def hermitry_thresholds_table(summary) -> list[dict[str, str]]:
    """T_c per class (the hermitry paper's Appendix B), raw and normalized, with the fit."""
    return [
        {
            "class": str(summary["class_name"].values[k]),
            "threshold": f"{summary['threshold'].values[k]:.4f}",
            "normalized_threshold": f"{summary['normalized_threshold'].values[k]:.6f}",
            "percentile": f"{float(summary.attrs['percentile']):g}",
            "covariance": str(summary.attrs["covariance"]),
            "shrinkage": f"{summary['shrinkage'].values[k]:.4f}",
            "train_images": str(int(summary["train_count"].values[k])),
            "validation_images": str(int(summary["validation_count"].values[k])),
        }
        for k in range(len(summary["class"]))
    ]


def hermitry_figure(summary, outputs: Sequence[str | Path], *, title: str = "") -> None:
    """KDE of normalized Mahalanobis distances, a row per class and a column per source.

    The hermitry paper's Figure 3 (captured methods) and Appendix C (controls): distances
    divided by the largest of the panel (or by T_c when that is larger), the part at or
    below the threshold gray (in distribution), the part above black (hermits).
    """
    plt = pyplot()
    panels = [str(p) for p in summary["panel"].values]
    names = [str(n) for n in summary["class_name"].values]
    grid = summary["grid"].values
    figure, axes = plt.subplots(
        len(names),
        len(panels),
        figsize=(1.45 * len(panels) + 1.0, 1.05 * len(names) + 1.0),
        squeeze=False,
        sharex=True,
    )
    for p, panel in enumerate(panels):
        for k, name in enumerate(names):
            axis = axes[k][p]
            density = summary["density"].values[p, k]
            threshold = summary["panel_threshold"].values[p, k]
            inside = grid <= threshold
            axis.fill_between(grid, density, where=inside, color="0.7", linewidth=0)
            axis.fill_between(grid, density, where=~inside, color="black", linewidth=0)
            axis.plot(grid, density, color="black", linewidth=0.6)
            if np.isfinite(threshold):
                axis.axvline(threshold, color="0.3", linewidth=0.6, linestyle=":")
            ratio = summary["panel_hermitry"].values[p, k]
            axis.text(
                0.98, 0.85, f"H={ratio:.2f}", transform=axis.transAxes, ha="right", fontsize=7
            )
            axis.set_yticks([])
            axis.set_xlim(0, 1)
            if k == 0:
                axis.set_title(HERMITRY_SOURCE_LABELS.get(panel, panel), fontsize=9)
            if p == 0:
                axis.set_ylabel(name, fontsize=8)
            if k == len(names) - 1:
                axis.set_xlabel("normalized distance", fontsize=7)
            axis.tick_params(labelsize=6)
    save_figure(figure, outputs, title=title)


def hermitry_recipes_table(summaries: dict[str, object]) -> list[dict[str, str]]:
    """Mean H over classes per source and level, a column per training recipe.

    Rows: every entry of the first recipe's summary (captured methods, controls, ROAR
    fractions, MIF/LIF steps, infidelity perturbations); recipes without the entry leave
    the cell empty.
    """
    recipes = list(summaries)
    first = summaries[recipes[0]]
    rows = []
    for e in range(len(first["entry"])):
        source = str(first["source"].values[e])
        method = str(first["method"].values[e])
        level = float(first["level"].values[e])
        row = {
            "source": HERMITRY_SOURCE_LABELS.get(source, source),
            "map": method,
            "level": "" if not np.isfinite(level) else f"{level:g}",
        }
        for recipe in recipes:
            summary = summaries[recipe]
            match = (
                (summary["source"].values == source)
                & (summary["method"].values == method)
                & (
                    np.isclose(summary["level"].values, level)
                    | (np.isnan(summary["level"].values) & np.isnan(level))
                )
            )
            values = summary["hermitry_mean"].values[match]
            row[recipe] = f"{values[0]:.3f}" if len(values) else ""
        rows.append(row)
    return rows


def hermitry_recipes_figure(
    summaries: dict[str, object], outputs: Sequence[str | Path], *, title: str = ""
) -> None:
    """H (mean over classes) against the share of pixels perturbed, MIF, LIF and ROAR, a
    column per map method and a line per recipe: does FPA training keep masked inputs in
    distribution?"""
    plt = pyplot()
    recipes = list(summaries)
    sources = ("mif", "lif", "roar")
    first = summaries[recipes[0]]
    methods = sorted({str(m) for m in first["method"].values if str(m)})
    if not methods:
        methods = [""]
    figure, axes = plt.subplots(
        len(sources),
        len(methods),
        figsize=(2.8 * len(methods) + 1.0, 2.4 * len(sources) + 0.8),
        squeeze=False,
        sharey=True,
    )
    for row, source in enumerate(sources):
        for column, method in enumerate(methods):
            axis = axes[row][column]
            for recipe in recipes:
                summary = summaries[recipe]
                rows = (summary["source"].values == source) & (summary["method"].values == method)
                if rows.any():
                    axis.plot(
                        summary["level"].values[rows],
                        summary["hermitry_mean"].values[rows],
                        marker="o",
                        markersize=3,
                        label=recipe,
                    )
            axis.axhline(float(first.attrs["low_ratio"]), color="0.5", linestyle=":", linewidth=0.8)
            axis.set_ylim(-0.02, 1.02)
            if row == 0:
                axis.set_title(method, fontsize=9)
            if column == 0:
                axis.set_ylabel(f"H, {HERMITRY_SOURCE_LABELS[source]}")
            if row == len(sources) - 1:
                axis.set_xlabel("share of pixels perturbed")
            axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    save_figure(figure, outputs, title=title)


# ----------------------------------------------------------------------- jobs


def write_report(
    summary_path: str | Path,
    *,
    model: str,
    title: str,
    table: str | Path,
    thresholds: str | Path,
    figures: Sequence[str | Path],
) -> None:
    """Table 4 (:func:`hermitry_table`), the thresholds and Figure 3 of one model."""
    summary = read_summary(summary_path)
    write_csv(hermitry_table(summary, model=model), table)
    write_csv(hermitry_thresholds_table(summary), thresholds)
    hermitry_figure(summary, figures, title=title)


def write_recipes(
    summary_paths: Mapping[str, str | Path],
    *,
    title: str,
    table: str | Path,
    figures: Sequence[str | Path],
) -> None:
    """H of every source compared across training recipes, from summaries by recipe."""
    summaries = {recipe: read_summary(path) for recipe, path in summary_paths.items()}
    write_csv(hermitry_recipes_table(summaries), table)
    hermitry_recipes_figure(summaries, figures, title=title)
