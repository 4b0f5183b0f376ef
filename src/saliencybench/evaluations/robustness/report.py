"""The infidelity and max-sensitivity table and figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from saliencybench.evaluations.robustness.summary import read_summary
from saliencybench.plotting import pyplot, save_figure, write_csv

ROBUSTNESS_SCOPE_TITLES = {
    "local": "local, noisy baseline",
    "global": "global, square removal",
}


def _interval_cell(mean: float, half_width: float) -> str:
    if not np.isfinite(mean):
        return ""
    if not np.isfinite(half_width):
        return f"{mean:.3g}"
    return f"{mean:.3g} ± {half_width:.2g}"


def robustness_table(summary) -> list[dict[str, str]]:
    """Rows of the robustness table, the layout of Table 1 of Yeh et al. (2019).

    One row per method and one per its SmoothGrad variant (``name-SG``); per scope a
    ``SENS_MAX`` and an ``INFD`` column, cells ``mean ± 95 % CI half-width`` over images.
    Lower is better in every column. Empty cells: no explanation in that scope (a global
    method has no local one) or no smoothed variant (the optimal explanations).
    """
    rows = []
    for method in summary["attribution"].values:
        for smoothing in summary["smoothing"].values:
            label = str(method) if smoothing == "none" else f"{method}-SG"
            row = {"method": label}
            cells = summary.sel({"attribution": method, "smoothing": smoothing})
            for scope in summary["scope"].values:
                part = cells.sel({"scope": scope})
                perturbation = "square" if scope == "global" else "noisy baseline"
                row[f"SENS_MAX ({scope})"] = _interval_cell(
                    float(part["sensitivity"]), float(part["sensitivity_ci"])
                )
                row[f"INFD {perturbation} ({scope})"] = _interval_cell(
                    float(part["infidelity"]), float(part["infidelity_ci"])
                )
            if any(value for key, value in row.items() if key != "method"):
                rows.append(row)
    return rows


def robustness_figure(summary, outputs: Sequence[str | Path], *, title: str = "") -> None:
    """Each method beside its SmoothGrad variant: SENS_MAX (top) and INFD (bottom) per scope.

    Bars are means over images with 95 % intervals; Yeh et al. (2019) find that smoothing
    lowers both for every base method.
    """
    plt = pyplot()
    scopes = [str(scope) for scope in summary["scope"].values]
    methods = [str(method) for method in summary["attribution"].values]
    metrics = (("sensitivity", "SENS_MAX"), ("infidelity", "INFD"))
    figure, axes = plt.subplots(
        len(metrics),
        len(scopes),
        figsize=(max(4.0, 0.7 * len(methods) + 2.0) * len(scopes), 6.5),
        squeeze=False,
    )
    positions = np.arange(len(methods))
    width = 0.38
    colors = {"none": "#0072B2", "smoothgrad": "#E69F00"}
    for row, (metric, label) in enumerate(metrics):
        for column, scope in enumerate(scopes):
            axis = axes[row][column]
            for offset, smoothing in ((-width / 2, "none"), (width / 2, "smoothgrad")):
                cell = summary.sel({"smoothing": smoothing, "scope": scope})
                axis.bar(
                    positions + offset,
                    cell[metric].values,
                    width,
                    yerr=np.nan_to_num(cell[f"{metric}_ci"].values),
                    color=colors[smoothing],
                    label="method" if smoothing == "none" else "method-SG",
                )
            axis.set_xticks(positions, methods, rotation=45, ha="right")
            axis.set_ylabel(f"{label} (lower is better)")
            if row == 0:
                axis.set_title(ROBUSTNESS_SCOPE_TITLES.get(scope, scope))
            axis.grid(axis="y", alpha=0.3)
    axes[0][0].legend()
    save_figure(figure, outputs, title=title)


def write_report(
    summary_path: str | Path,
    *,
    title: str,
    table: str | Path,
    figures: Sequence[str | Path],
) -> None:
    """The robustness table (CSV) and figure (one file per path in ``figures``) of a summary."""
    summary = read_summary(summary_path)
    write_csv(robustness_table(summary), table)
    robustness_figure(summary, figures, title=title)
