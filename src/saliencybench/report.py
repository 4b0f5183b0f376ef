"""Tables and figures from the summary Datasets of the evaluations.

Tables are CSV in the layout of the papers' appendix tables; figures are written as PNG and
PDF with matplotlib's non-interactive backend. Every file is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from saliencybench import store

MODE_TITLES = {
    "roar": "ROAR: most important pixels removed",
    "kar": "KAR: least important pixels removed",
}
BASELINE_STYLES = {
    "random": {"color": "black", "linestyle": "--"},
    "sobel": {"color": "0.45", "linestyle": ":"},
}

# One colour per method in every figure, colorblind-safe: the eight colours of Okabe & Ito
# (2008) and Paul Tol's "muted" scheme. Methods of the registry have fixed entries; another
# name (a second configuration of a method) gets a palette colour from a hash of its name.
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
TOL_MUTED = (
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
    "#DDCC77", "#CC6677", "#882255", "#AA4499", "#DDDDDD",
)  # fmt: skip
METHOD_COLORS = {
    "random": "#000000",
    "sobel": "#737373",
    "saliency": OKABE_ITO[5],
    "input_x_gradient": OKABE_ITO[2],
    "integrated_gradients": OKABE_ITO[6],
    "smoothgrad": OKABE_ITO[3],
    "smoothgrad_sq": OKABE_ITO[7],
    "vargrad": OKABE_ITO[1],
    "guided_backprop": TOL_MUTED[0],
    "deconvolution": TOL_MUTED[1],
    "gradcam": TOL_MUTED[3],
    "guided_gradcam": TOL_MUTED[4],
    "deeplift": TOL_MUTED[8],
    "occlusion": TOL_MUTED[7],
    "lime": TOL_MUTED[2],
    "kernel_shap": TOL_MUTED[5],
    "anchor": TOL_MUTED[6],
    "square": "#661100",
    "noisy_baseline": "#6699CC",
}
# Lines that are not methods (recipes, sources) cycle through the same safe colours.
LINE_COLORS = (OKABE_ITO[5], OKABE_ITO[6], OKABE_ITO[3], OKABE_ITO[7], OKABE_ITO[1],
               OKABE_ITO[2], TOL_MUTED[0], TOL_MUTED[7])  # fmt: skip


def method_color(name: str) -> str:
    """The colour of method ``name`` in every figure."""
    import zlib

    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    palette = TOL_MUTED[:-1] + OKABE_ITO[1:]
    return palette[zlib.crc32(name.encode()) % len(palette)]


def method_style(name: str) -> dict[str, str]:
    """Line colour and style of a method: dashed black ``random``, dotted gray ``sobel``."""
    return BASELINE_STYLES.get(name) or {"color": method_color(name), "linestyle": "-"}


def _mean_std(values: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation over seeds, skipping missing (NaN) runs.

    A cell with no run is NaN; a cell with one run has standard deviation 0.
    """
    values = np.asarray(values, dtype=np.float64)
    present = np.isfinite(values)
    count = present.sum(axis=axis)
    total = np.where(present, values, 0.0).sum(axis=axis)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    deviation = np.where(present, values - np.expand_dims(mean, axis), 0.0)
    variance = (deviation**2).sum(axis=axis) / np.maximum(count - 1, 1)
    std = np.where(count > 1, np.sqrt(variance), 0.0)
    return mean, std


def roar_table(summary) -> list[dict[str, str]]:
    """Rows of the ROAR/KAR table: one per (mode, method), one column per fraction.

    Cells are test accuracy in percent as ``mean ± std`` over retraining seeds, with the
    unmasked baseline in the ``0%`` column, as in the appendix tables of Loreth (2023).
    """
    baseline_mean, baseline_std = _mean_std(summary["baseline_accuracy"].values * 100.0)
    rows = []
    for mode in summary["mode"].values:
        for method in summary["method"].values:
            values = summary["accuracy"].sel({"mode": mode, "method": method}).values * 100.0
            mean, std = _mean_std(values)
            row = {"mode": str(mode), "method": str(method)}
            row["0%"] = _cell(float(baseline_mean), float(baseline_std))
            for fraction, m, s in zip(summary["fraction"].values, mean, std, strict=True):
                row[f"{_percent(fraction)}%"] = _cell(float(m), float(s))
            rows.append(row)
    return rows


def _percent(fraction: float) -> str:
    return f"{float(fraction) * 100:g}"


def _cell(mean: float, std: float) -> str:
    return "" if not np.isfinite(mean) else f"{mean:.2f} ± {std:.2f}"


def parse_cell(cell: str) -> tuple[float, float]:
    """Inverse of the table's cell format: ``"95.40 ± 1.23"`` to ``(95.4, 1.23)``."""
    mean, std = cell.split("±")
    return float(mean), float(std)


def write_csv(rows: Sequence[dict[str, str]], output: str | Path) -> None:
    """Write table rows (dicts with the same keys) as CSV, atomically."""
    import csv

    with store.atomic_path(output) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)


def roar_figure(summary, outputs: Sequence[str | Path], *, title: str = "") -> None:
    """Accuracy against the share of pixels removed, ROAR and KAR side by side.

    One line per method with a band of ± one standard deviation over seeds; ``random``
    and ``sobel`` are drawn as black and gray dashed baselines (Hooker et al. 2019, Fig. 4).
    Every path in ``outputs`` gets the same figure in the format its suffix names.
    """
    plt = _pyplot()
    modes = [str(mode) for mode in summary["mode"].values]
    methods = [str(method) for method in summary["method"].values]
    fractions = np.concatenate([[0.0], summary["fraction"].values]) * 100.0
    baseline_mean, baseline_std = _mean_std(summary["baseline_accuracy"].values * 100.0)
    figure, axes = plt.subplots(
        1, len(modes), figsize=(5.2 * len(modes) + 2.2, 4.2), sharey=True, squeeze=False
    )
    for axis, mode in zip(axes[0], modes, strict=True):
        for method in methods:
            values = summary["accuracy"].sel({"mode": mode, "method": method}).values * 100.0
            mean, std = _mean_std(values)
            mean = np.concatenate([[baseline_mean], mean])
            std = np.concatenate([[baseline_std], std])
            style = method_style(method)
            axis.plot(fractions, mean, marker="o", markersize=3.5, label=method, **style)
            axis.fill_between(fractions, mean - std, mean + std, color=style["color"], alpha=0.15)
        axis.set_title(MODE_TITLES.get(mode, mode))
        axis.set_xlabel("pixels removed (%)")
        axis.set_xticks(fractions)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy after retraining (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center right", frameon=False)
    if title:
        figure.suptitle(title)
    figure.tight_layout(rect=(0, 0, 1 - 2.0 / figure.get_figwidth(), 1))
    try:
        for output in outputs:
            suffix = Path(output).suffix
            with store.atomic_path(output) as tmp:
                figure.savefig(tmp, format=suffix.lstrip("."), dpi=150)
    finally:
        plt.close(figure)


# ----------------------------------------------------------------------- curves and fidelity


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


def _save(figure, outputs: Sequence[str | Path]) -> None:
    import matplotlib.pyplot as plt

    try:
        for output in outputs:
            with store.atomic_path(output) as tmp:
                figure.savefig(tmp, format=Path(output).suffix.lstrip("."), dpi=150)
    finally:
        plt.close(figure)


def _pyplot():
    """pyplot on the non-interactive backend, with the project's one style: colorblind-safe
    line colours, light grids, no top and right spines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    plt.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=list(LINE_COLORS)),
            "axes.spines.top": False,
            "axes.spines.right": False,
            "savefig.dpi": 150,
            "font.size": 9,
        }
    )
    return plt


def curves_figure(summary, outputs: Sequence[str | Path], *, title: str = "") -> None:
    """MIF (top) and LIF (bottom) mean normalized curves per estimator, a line per recipe.

    The layout of Figure 3 of Brocki & Chung (2023).
    """
    plt = _pyplot()
    estimators = [str(e) for e in summary["estimator"].values]
    fractions = summary["fraction"].values * 100.0
    figure, axes = plt.subplots(
        2,
        len(estimators),
        figsize=(2.6 * len(estimators) + 1.0, 5.2),
        sharex=True,
        sharey="row",
        squeeze=False,
    )
    for column, estimator in enumerate(estimators):
        for row, order in enumerate(("mif", "lif")):
            axis = axes[row][column]
            for recipe in summary["recipe"].values:
                curve = summary["curve"].sel(
                    {"recipe": recipe, "estimator": estimator, "order": order}
                )
                axis.plot(fractions, curve.values, label=str(recipe))
            axis.axhline(1.0, color="0.6", linewidth=0.6)
            axis.grid(alpha=0.3)
            if row == 0:
                axis.set_title(estimator)
            else:
                axis.set_xlabel("pixels perturbed (%)")
        axes[0][0].set_ylabel("MIF: normalized logit")
        axes[1][0].set_ylabel("LIF: normalized logit")
    axes[0][-1].legend(title="recipe", frameon=False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, outputs)


def lif_example_figure(
    summary, outputs: Sequence[str | Path], *, estimator: str | None = None, title: str = ""
) -> None:
    """One image's LIF curve (top) above its importance scores in LIF order (bottom).

    The layout of Figure 4 of Brocki & Chung (2023): masking pixels with negative scores
    should coincide with a rising logit. ``estimator`` defaults to the first signed one
    (``IG_sum``, ``SG'_sum``, ``VG'_sum``) present, else the first.
    """
    plt = _pyplot()
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
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, outputs)


# ----------------------------------------------------------------------- randomization

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
    for method in summary["method"].values:
        cell = summary.sel({"method": method})
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
    plt = _pyplot()
    methods = [str(m) for m in summary["method"].values]
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
                    {"method": method, "mode": mode, "metric": metric}
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
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center right", frameon=False)
    if title:
        figure.suptitle(title)
    figure.tight_layout(rect=(0, 0, 1 - 2.0 / figure.get_figwidth(), 1))
    _save(figure, outputs)


def randomization_sensitivity_figure(
    summary, outputs: Sequence[str | Path], *, title: str = ""
) -> None:
    """``S^I`` per method with its bootstrap interval and the pass threshold as a dashed
    red line (Sriram & Conati, Figure 3); bars of methods that fail are gray."""
    plt = _pyplot()
    methods = [str(m) for m in summary["method"].values]
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
    _save(figure, outputs)


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
    plt = _pyplot()
    methods = [str(m) for m in summary["method"].values]
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
        cell = summary.sel({"method": method})
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
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, outputs)


# ----------------------------------------------------------------------- robustness

ROBUSTNESS_SCOPE_TITLES = {
    "local": "local, noisy baseline",
    "global": "global, square removal",
}


def _robustness_cell(mean: float, half_width: float) -> str:
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
    for method in summary["method"].values:
        for smoothing in summary["smoothing"].values:
            label = str(method) if smoothing == "none" else f"{method}-SG"
            row = {"method": label}
            cells = summary.sel({"method": method, "smoothing": smoothing})
            for scope in summary["scope"].values:
                part = cells.sel({"scope": scope})
                perturbation = "square" if scope == "global" else "noisy baseline"
                row[f"SENS_MAX ({scope})"] = _robustness_cell(
                    float(part["sensitivity"]), float(part["sensitivity_ci"])
                )
                row[f"INFD {perturbation} ({scope})"] = _robustness_cell(
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
    plt = _pyplot()
    scopes = [str(scope) for scope in summary["scope"].values]
    methods = [str(method) for method in summary["method"].values]
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
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, outputs)


# ----------------------------------------------------------------------- hermitry

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
    plt = _pyplot()
    panels = [str(p) for p in summary["panel"].values]
    names = [str(n) for n in summary["class_name"].values]
    grid = summary["grid"].values
    figure, axes = plt.subplots(
        len(names),
        len(panels),
        figsize=(1.9 * len(panels) + 1.0, 1.05 * len(names) + 1.0),
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
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, outputs)


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
    plt = _pyplot()
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
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, outputs)
