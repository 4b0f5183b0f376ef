"""The project's one plotting style and the writers every evaluation's report uses.

Tables are CSV; figures are written as PNG and PDF with matplotlib's non-interactive backend
(imported when a figure is drawn). Every file is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from saliencybench import store

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


def mean_std(values: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
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


def percent(fraction: float) -> str:
    return f"{float(fraction) * 100:g}"


def mean_std_cell(mean: float, std: float) -> str:
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


def save_figure(
    figure, outputs: Sequence[str | Path], *, title: str | None = None, legend_from=None
) -> None:
    """Write ``figure`` to every path in ``outputs`` (the format from each suffix) and close it.

    Args:
        title: when given, the figure's title (none if empty) and a tight layout first.
        legend_from: an axis whose legend entries become one legend for the whole figure,
            at its right edge (the layout leaves room for it).
    """
    import matplotlib.pyplot as plt

    if legend_from is not None:
        handles, labels = legend_from.get_legend_handles_labels()
        figure.legend(handles, labels, loc="center right", frameon=False)
    if title is not None:
        if title:
            figure.suptitle(title)
        if legend_from is not None:
            figure.tight_layout(rect=(0, 0, 1 - 2.0 / figure.get_figwidth(), 1))
        else:
            figure.tight_layout()
    try:
        for output in outputs:
            with store.atomic_path(output) as tmp:
                figure.savefig(tmp, format=Path(output).suffix.lstrip("."), dpi=150)
    finally:
        plt.close(figure)


def pyplot():
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
