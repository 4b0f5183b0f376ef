"""The randomization table and figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from saliencybench.evaluations.randomization.summary import read_summary
from saliencybench.plotting import (
    method_color,
    method_style,
    pyplot,
    save_figure,
    write_csv,
)

RANDOMIZATION_METRIC_LABELS = {
    "ssim": "SSIM",
    "spearman_abs": "Spearman rank correlation |map|",
    "spearman": "Spearman rank correlation (signed)",
}
RANDOMIZATION_MODE_TITLES = {
    "cascading": "cascading: layers re-initialized from the output down to",
    "independent": "independent: the one layer re-initialized",
}


def randomization_table(summary) -> list[dict[str, str]]:
    """Rows of the randomization table: one per method.

    The extended IPR test of Sriram & Conati: ``S^I`` with its bootstrap interval, pass or
    fail, and the share of images for which the method is sensitive to every layer; then
    the similarity with every layer randomized (the end of the cascade, Adebayo et al.
    2018) and with the model trained on permuted labels (empty without that test).
    """
    level = f"{summary.attrs['confidence'] * 100:g}%"
    rows = []
    for method in summary["attribution"].values:
        cell = summary.sel({"attribution": method})
        full = cell["similarity"].sel(mode="cascading").isel(layer=-1)
        data = cell["data_similarity"]

        def number(value, digits: int = 4) -> str:
            value = float(value)
            return f"{value:.{digits}f}" if np.isfinite(value) else ""

        rows.append(
            {
                "method": str(method),
                "S^I": number(cell["sensitivity"]),
                f"CI {level} low": number(cell["sensitivity_low"]),
                f"CI {level} high": number(cell["sensitivity_high"]),
                "test": "pass" if int(cell["passes"]) else "fail",
                "sensitive images %": number(float(cell["sensitive_share"]) * 100.0, 1),
                "images": str(int(cell["images"])),
                "SSIM all layers": number(full.sel(metric="ssim")),
                "Spearman |m| all layers": number(full.sel(metric="spearman_abs")),
                "SSIM permuted labels": number(data.sel(metric="ssim")),
                "Spearman |m| permuted labels": number(data.sel(metric="spearman_abs")),
            }
        )
    return rows


def randomization_layers_figure(summary, outputs: Sequence[str | Path], *, title: str = "") -> None:
    """Mean similarity of the original and the randomized maps per layer, a line per method.

    Columns: cascading and independent randomization; rows: SSIM and the two Spearman
    correlations (Adebayo et al. 2018, Figs. 2 and 4). The x axis runs from the output
    layer towards the input; SSIM panels show the threshold of Sriram & Conati.
    """
    plt = pyplot()
    methods = [str(m) for m in summary["attribution"].values]
    modes = [str(m) for m in summary["mode"].values]
    metrics = [str(m) for m in summary["metric"].values]
    layers = [str(layer) for layer in summary["layer"].values]
    positions = np.arange(len(layers))
    figure, axes = plt.subplots(
        len(metrics),
        len(modes),
        figsize=(max(4.5, 0.38 * len(layers) + 2.0) * len(modes) + 2.2, 3.0 * len(metrics) + 1.0),
        sharex=True,
        sharey="row",
        squeeze=False,
    )
    for row, metric in enumerate(metrics):
        for column, mode in enumerate(modes):
            axis = axes[row][column]
            for method in methods:
                values = summary["similarity"].sel(
                    {"attribution": method, "mode": mode, "metric": metric}
                )
                axis.plot(
                    positions,
                    values.values,
                    marker="o",
                    markersize=3.5,
                    label=method,
                    **method_style(method),
                )
            if metric == "ssim":
                axis.axhline(
                    summary.attrs["ssim_threshold"],
                    color="tab:red",
                    linestyle="--",
                    linewidth=0.8,
                    label=f"SSIM {summary.attrs['ssim_threshold']:g}",
                )
            axis.axhline(0.0, color="0.6", linewidth=0.6)
            axis.grid(alpha=0.3)
            if row == 0:
                axis.set_title(RANDOMIZATION_MODE_TITLES.get(mode, mode), fontsize=10)
            if row == len(metrics) - 1:
                axis.set_xticks(positions, layers, rotation=60, ha="right", fontsize=8)
            if column == 0:
                axis.set_ylabel(RANDOMIZATION_METRIC_LABELS.get(metric, metric))
    save_figure(figure, outputs, title=title, legend_from=axes[0][0])


def randomization_sensitivity_figure(
    summary, outputs: Sequence[str | Path], *, title: str = ""
) -> None:
    """``S^I`` per method with its bootstrap interval and the pass threshold as a dashed
    red line (Sriram & Conati, Figure 3); bars of methods that fail are gray."""
    plt = pyplot()
    methods = [str(m) for m in summary["attribution"].values]
    values = summary["sensitivity"].values
    errors = np.abs(
        np.stack(
            [
                values - summary["sensitivity_low"].values,
                summary["sensitivity_high"].values - values,
            ]
        )
    )
    passes = summary["passes"].values.astype(bool)
    figure, axis = plt.subplots(figsize=(0.7 * len(methods) + 2.5, 4.2))
    positions = np.arange(len(methods))
    bars = axis.bar(
        positions,
        values,
        yerr=errors,
        capsize=3,
        color=[method_color(m) if ok else "0.75" for m, ok in zip(methods, passes, strict=True)],
    )
    # A failing method's bar can be invisible (S^I = 0): every bar says its value.
    axis.bar_label(
        bars,
        labels=[
            f"{v:.3f}" + ("" if ok else "\nfail") for v, ok in zip(values, passes, strict=True)
        ],
        padding=2,
        fontsize=8,
    )
    threshold = summary.attrs["pass_threshold"]
    axis.axhline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:g}")
    axis.set_xticks(positions, methods, rotation=45, ha="right")
    level = f"{summary.attrs['confidence'] * 100:g} %"
    axis.set_ylabel(f"$S^I$ (bootstrap {level} interval)")
    axis.grid(axis="y", alpha=0.3)
    # Headroom above the tallest interval for the value labels and the legend.
    top = np.nanmax(np.concatenate([values, summary["sensitivity_high"].values, [threshold]]))
    axis.set_ylim(0.0, 1.3 * top if np.isfinite(top) and top > 0 else 1.0)
    axis.legend(frameon=False, loc="upper right")
    if title:
        axis.set_title(title)
    figure.tight_layout()
    save_figure(figure, outputs)


def _unit(values: np.ndarray) -> np.ndarray:
    """A map min-max scaled to [0, 1] (all zeros when constant), as the SSIM sees it."""
    low, high = np.nanmin(values), np.nanmax(values)
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def randomization_examples_figure(
    summary, outputs: Sequence[str | Path], *, title: str = ""
) -> None:
    """One image's maps under progressive (cascading) randomization, a row per method.

    Columns: the image, the map of the trained model, then the maps with the layers from
    the output down to the named one re-initialized, and the map of the model trained on
    permuted labels when there is one (Adebayo et al. 2018, Fig. 2). Each map is min-max
    scaled to [0, 1], as for SSIM.
    """
    plt = pyplot()
    methods = [str(m) for m in summary["attribution"].values]
    layers = [str(layer) for layer in summary["layer"].values]
    has_data = bool(np.isfinite(summary["example_data_maps"].values).any())
    titles = ["image", "original", *layers] + (["permuted labels"] if has_data else [])
    image = np.moveaxis(summary["example_image"].values, 0, -1)
    image = image[..., 0] if image.shape[-1] == 1 else image
    figure, axes = plt.subplots(
        len(methods),
        len(titles),
        figsize=(1.25 * len(titles) + 1.6, 1.3 * len(methods) + 0.8),
        squeeze=False,
    )
    for row, method in enumerate(methods):
        cell = summary.sel({"attribution": method})
        maps = [cell["example_original"].values]
        maps += list(cell["example_maps"].sel(mode="cascading").values)
        if has_data:
            maps.append(cell["example_data_maps"].values)
        axes[row][0].imshow(image, cmap="gray" if image.ndim == 2 else None)
        for column, values in enumerate(maps, start=1):
            axes[row][column].imshow(_unit(values), cmap="viridis", vmin=0, vmax=1)
        axes[row][0].set_ylabel(method, rotation=0, ha="right", va="center", fontsize=8)
        for axis in axes[row]:
            axis.set_xticks([])
            axis.set_yticks([])
    for column, name in enumerate(titles):
        axes[0][column].set_title(name, fontsize=7, rotation=45, ha="left", va="bottom")
    save_figure(figure, outputs, title=title)


# ----------------------------------------------------------------------- the report job


def write_report(
    summary_path: str | Path,
    *,
    title: str,
    table: str | Path,
    layers: Sequence[str | Path],
    sensitivity: Sequence[str | Path],
    examples: Sequence[str | Path],
) -> None:
    """Write the table and the three figures of one model's randomization summary.

    Args:
        title: the figures' title.
        table: the CSV table.
        layers, sensitivity, examples: the files of each figure (PNG and PDF).
    """
    summary = read_summary(summary_path)
    write_csv(randomization_table(summary), table)
    randomization_layers_figure(summary, layers, title=title)
    randomization_sensitivity_figure(summary, sensitivity, title=title)
    randomization_examples_figure(summary, examples, title=title)
