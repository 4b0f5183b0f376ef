"""The ROAR and KAR table and figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from saliencybench.evaluations.roar.summary import read_summary
from saliencybench.plotting import (
    mean_std,
    mean_std_cell,
    method_style,
    percent,
    pyplot,
    save_figure,
    write_csv,
)

MODE_TITLES = {
    "roar": "ROAR: most important pixels removed",
    "kar": "KAR: least important pixels removed",
}


def roar_table(summary) -> list[dict[str, str]]:
    """Rows of the ROAR/KAR table: one per (mode, method), one column per fraction.

    Cells are test accuracy in percent as ``mean ± std`` over retraining seeds, with the
    unmasked baseline in the ``0%`` column, as in the appendix tables of Loreth (2023).
    """
    baseline_mean, baseline_std = mean_std(summary["baseline_accuracy"].values * 100.0)
    rows = []
    for mode in summary["mode"].values:
        for method in summary["attribution"].values:
            values = summary["accuracy"].sel({"mode": mode, "attribution": method}).values * 100.0
            mean, std = mean_std(values)
            row = {"mode": str(mode), "method": str(method)}
            row["0%"] = mean_std_cell(float(baseline_mean), float(baseline_std))
            for fraction, m, s in zip(summary["fraction"].values, mean, std, strict=True):
                row[f"{percent(fraction)}%"] = mean_std_cell(float(m), float(s))
            rows.append(row)
    if "unretrained_accuracy" in summary:
        rows.extend(_unretrained_rows(summary))
    return rows


RANKING_ROW = "Kendall tau, retrained vs not"


def _unretrained_rows(summary) -> list[dict[str, str]]:
    """ROAR and KAR without retraining, and how far they rank the methods as retraining does.

    One row per (mode, method) of the original model's accuracy on the masked test images,
    then per mode the Kendall tau between the methods' mean retrained accuracy and their
    accuracy without retraining at each fraction (1: the same order).
    """
    from scipy.stats import kendalltau

    unmasked = float(summary["unretrained_baseline"]) * 100.0
    fractions = summary["fraction"].values
    rows = []
    for mode in summary["mode"].values:
        for method in summary["attribution"].values:
            cell = {"mode": mode, "attribution": method}
            values = summary["unretrained_accuracy"].sel(cell).values * 100.0
            row = {"mode": f"{mode}, not retrained", "method": str(method), "0%": f"{unmasked:.1f}"}
            for fraction, value in zip(fractions, values, strict=True):
                row[f"{percent(fraction)}%"] = f"{value:.1f}"
            rows.append(row)
        row = {"mode": str(mode), "method": RANKING_ROW, "0%": ""}
        retrained = summary["accuracy"].sel(mode=mode).mean("seed", skipna=True)
        for k, fraction in enumerate(fractions):
            first = retrained.values[:, k]
            second = summary["unretrained_accuracy"].sel(mode=mode).values[:, k]
            usable = np.isfinite(first) & np.isfinite(second)
            tau = (
                kendalltau(first[usable], second[usable]).statistic if usable.sum() > 1 else np.nan
            )
            row[f"{percent(fraction)}%"] = f"{tau:+.2f}" if np.isfinite(tau) else "n/a"
        rows.append(row)
    return rows


def roar_figure(summary, outputs: Sequence[str | Path], *, title: str = "") -> None:
    """Accuracy against the share of pixels removed, ROAR and KAR side by side.

    One line per method with a band of ± one standard deviation over seeds; ``random``
    and ``sobel`` are drawn as black and gray dashed baselines (Hooker et al. 2019, Fig. 4).
    With the original model's accuracies on the masked test images, a second row of panels
    shows ROAR and KAR without retraining. Every path in ``outputs`` gets the same figure in
    the format its suffix names.
    """
    plt = pyplot()
    modes = [str(mode) for mode in summary["mode"].values]
    methods = [str(method) for method in summary["attribution"].values]
    fractions = np.concatenate([[0.0], summary["fraction"].values]) * 100.0
    baseline_mean, baseline_std = mean_std(summary["baseline_accuracy"].values * 100.0)
    unretrained = "unretrained_accuracy" in summary
    figure, axes = plt.subplots(
        1 + unretrained,
        len(modes),
        figsize=(5.2 * len(modes) + 2.2, 4.2 * (1 + unretrained)),
        sharey=True,
        squeeze=False,
    )
    for axis, mode in zip(axes[0], modes, strict=True):
        for method in methods:
            values = summary["accuracy"].sel({"mode": mode, "attribution": method}).values * 100.0
            mean, std = mean_std(values)
            mean = np.concatenate([[baseline_mean], mean])
            std = np.concatenate([[baseline_std], std])
            style = method_style(method)
            axis.plot(fractions, mean, marker="o", markersize=3.5, label=method, **style)
            axis.fill_between(fractions, mean - std, mean + std, color=style["color"], alpha=0.15)
        axis.set_title(MODE_TITLES.get(mode, mode))
    axes[0][0].set_ylabel("test accuracy after retraining (%)")
    if unretrained:
        unmasked = float(summary["unretrained_baseline"]) * 100.0
        for axis, mode in zip(axes[1], modes, strict=True):
            for method in methods:
                cell = {"mode": mode, "attribution": method}
                values = summary["unretrained_accuracy"].sel(cell).values * 100.0
                axis.plot(
                    fractions,
                    np.concatenate([[unmasked], values]),
                    marker="o",
                    markersize=3.5,
                    label=method,
                    **method_style(method),
                )
            axis.set_title(f"{MODE_TITLES.get(mode, mode)}, not retrained")
        axes[1][0].set_ylabel("test accuracy of the original model (%)")
    for axis in axes.flat:
        axis.set_xlabel("pixels removed (%)")
        axis.set_xticks(fractions)
        axis.grid(alpha=0.3)
    save_figure(figure, outputs, title=title, legend_from=axes[0][0])


def write_report(
    summary_path: str | Path, *, title: str, table: str | Path, figures: Sequence[str | Path]
) -> None:
    """The job of rule ``roar_report``: the table as CSV and the figure in every format of
    ``figures``, from a summary written by ``summary.summarize_run``."""
    summary = read_summary(summary_path)
    write_csv(roar_table(summary), table)
    roar_figure(summary, figures, title=title)
