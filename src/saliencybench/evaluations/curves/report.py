"""The fidelity table and the curve figures, from the fidelity summary (torch-free)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from saliencybench.evaluations.curves.summary import read_fidelity
from saliencybench.plotting import pyplot, save_figure, write_csv


def fidelity_table(summary) -> list[dict[str, str]]:
    """Rows of the fidelity table: one per recipe, one column per estimator, ``A ± CI``.

    The layout of Table 1 of Brocki & Chung (2023); A is x100, the interval 95 %.
    """
    rows = []
    for recipe in summary["recipe"].values:
        row = {"recipe": str(recipe)}
        for estimator in summary["estimator"].values:
            cell = summary.sel({"recipe": recipe, "estimator": estimator})
            area, ci = float(cell["area"]), float(cell["area_ci"])
            row[str(estimator)] = "" if not np.isfinite(area) else f"{area:.1f} ± {ci:.1f}"
        rows.append(row)
    return rows


# Panels per row of the curves figure: at 3.2 inches a panel, four fill a page at 150 dpi
# without being scaled below half their size.
CURVE_COLUMNS = 4


def curves_figure(summary, outputs: Sequence[str | Path], *, title: str = "") -> None:
    """Mean normalized curves, one panel per estimator in rows of :data:`CURVE_COLUMNS`:
    MIF solid and LIF dashed, a colour per recipe (the curves of Figure 3 of Brocki & Chung
    2023, folded into a grid so that any number of estimators stays legible)."""
    plt = pyplot()
    estimators = [str(e) for e in summary["estimator"].values]
    fractions = summary["fraction"].values * 100.0
    columns = min(CURVE_COLUMNS, len(estimators))
    rows = -(-len(estimators) // columns)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(3.2 * columns + 0.6, 2.7 * rows + 0.6),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, estimator in enumerate(estimators):
        axis = axes[index // columns][index % columns]
        for r, recipe in enumerate(summary["recipe"].values):
            for order, style in (("mif", "-"), ("lif", "--")):
                curve = summary["curve"].sel(
                    {"recipe": recipe, "estimator": estimator, "order": order}
                )
                axis.plot(
                    fractions,
                    curve.values,
                    linestyle=style,
                    color=colours[r % len(colours)],
                    label=f"{recipe}, {order.upper()}",
                )
        axis.axhline(1.0, color="0.6", linewidth=0.6)
        axis.grid(alpha=0.3)
        axis.set_title(estimator, fontsize="medium")
    for index in range(len(estimators), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.supylabel("logit / unperturbed logit (MIF solid, LIF dashed)")
    figure.supxlabel("pixels perturbed (%)")
    for column in range(columns):
        last = max(i for i in range(column, len(estimators), columns))
        axes[last // columns][column].xaxis.set_tick_params(labelbottom=True)
    axes[0][0].legend(frameon=False, fontsize="small")
    save_figure(figure, outputs, title=title)


def lif_example_figure(
    summary, outputs: Sequence[str | Path], *, estimator: str | None = None, title: str = ""
) -> None:
    """One image's LIF curve (top) above its importance scores in LIF order (bottom).

    The layout of Figure 4 of Brocki & Chung (2023): masking pixels with negative scores
    should coincide with a rising logit. ``estimator`` defaults to the first signed one
    (``IG_sum``, ``SG'_sum``, ``VG'_sum``) present, else the first.
    """
    plt = pyplot()
    estimators = [str(e) for e in summary["estimator"].values]
    if estimator is None:
        signed = [e for e in ("IG_sum", "SG'_sum", "VG'_sum") if e in estimators]
        estimator = signed[0] if signed else estimators[0]
    recipes = [str(r) for r in summary["recipe"].values]
    fractions = summary["fraction"].values * 100.0
    figure, axes = plt.subplots(
        2, len(recipes), figsize=(3.4 * len(recipes) + 0.6, 5.2), sharex=True, squeeze=False
    )
    for column, recipe in enumerate(recipes):
        cell = summary.sel({"recipe": recipe, "estimator": estimator})
        axes[0][column].plot(fractions, cell["example_curve"].sel(order="lif").values)
        axes[0][column].set_title(f"{recipe}: {estimator}")
        scores = cell["example_scores"].values
        scores = scores[np.isfinite(scores)]
        axes[1][column].plot(np.linspace(0, 100, len(scores)), scores, color="tab:red")
        axes[1][column].axhline(0.0, color="0.6", linewidth=0.6)
        axes[1][column].set_xlabel("pixels perturbed in LIF order (%)")
        for axis in axes[:, column]:
            axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("normalized logit")
    axes[1][0].set_ylabel("importance score")
    save_figure(figure, outputs, title=title)


def write_report(
    summary_path: str | Path,
    *,
    title: str,
    table: str | Path,
    curves: Sequence[str | Path],
    lif_example: Sequence[str | Path],
) -> None:
    """The fidelity table (CSV) and both figures (one file per format) of one summary."""
    summary = read_fidelity(summary_path)
    write_csv(fidelity_table(summary), table)
    curves_figure(summary, curves, title=title)
    lif_example_figure(summary, lif_example, title=title)
