"""The report's pieces: scorecard ranks and scores, combined summaries, provenance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.stats import rankdata

from saliencybench import html_report
from saliencybench.config import ConfigError, load_schema, validate
from saliencybench.evaluations import EVALUATIONS
from saliencybench.evaluations.roar import spec as roar_spec
from saliencybench.models import build_model
from saliencybench.planning import Run
from saliencybench.summaries import combine
from saliencybench.training import Recipe, train_model

RUN = Run("digits", "small_cnn", "standard", 0)


@pytest.mark.parametrize("better", ["lower", "higher"])
def test_rank_is_competition_ranking(better):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, 12).astype(float)  # ties on purpose
    values[3] = np.nan
    names = [f"m{i}" for i in range(len(values))]
    ranks = html_report.rank(dict(zip(names, values, strict=True)), better)
    finite = np.isfinite(values)
    signed = values[finite] if better == "lower" else -values[finite]
    expected = rankdata(signed, method="min").astype(int)
    assert [ranks[n] for n, keep in zip(names, finite, strict=True) if keep] == list(expected)
    assert "m3" not in ranks
    with pytest.raises(ValueError, match="lower' or 'higher"):
        html_report.rank({"a": 1.0}, "up")


def test_rank_colors_run_from_dark_to_pale():
    def lightness(color: str) -> float:
        return sum(int(color[i : i + 2], 16) for i in (1, 3, 5))

    colors = [html_report.rank_color(position, 4) for position in range(1, 5)]
    assert [lightness(c) for c in colors] == sorted(lightness(c) for c in colors)
    assert html_report.rank_color(1, 1) == colors[0]


def _roar_summary(accuracy: dict[str, list[float]], baseline: float, fractions: list[float]):
    methods = list(accuracy)
    values = np.array([accuracy[m] for m in methods])[:, None, :, None] / 100.0
    summary = xr.Dataset(
        {
            "accuracy": (("attribution", "mode", "fraction", "seed"), values),
            "baseline_accuracy": (("seed",), [baseline / 100.0]),
        },
        coords={"attribution": methods, "mode": ["roar"], "fraction": fractions, "seed": [0]},
    )
    return EVALUATIONS.get("roar").tidy(summary, RUN)


def test_roar_score_is_the_mean_accuracy_difference_to_random():
    # Accuracy falls linearly from the 90 % baseline to the value at the last fraction: the
    # mean over [0, 0.9] is the midpoint, (90 + end) / 2; random ends at 60, saliency at 30.
    fractions = [0.3, 0.6, 0.9]
    summary = _roar_summary(
        {"random": [80.0, 70.0, 60.0], "saliency": [70.0, 50.0, 30.0]}, 90.0, fractions
    )
    scores = roar_spec.area_difference(summary, RUN, "roar")
    assert scores["random"] == 0.0
    assert scores["saliency"] == pytest.approx((90 + 30) / 2 - (90 + 60) / 2)
    assert roar_spec.area_difference(summary, RUN, "kar") == {}
    other = Run("digits", "small_cnn", "standard", 1)
    assert roar_spec.area_difference(summary, other, "roar") == {}


def test_combine_joins_runs_with_different_methods():
    fractions = [0.5]
    first = _roar_summary({"random": [50.0], "saliency": [40.0]}, 90.0, fractions)
    second = _roar_summary({"random": [55.0], "gradcam": [45.0]}, 95.0, fractions)
    second = second.assign_coords(seed=[1])
    combined = combine([first, second], "roar")
    assert combined.attrs["format"] == "saliencybench.summary/roar/2"
    assert sorted(combined["attribution"].values.tolist()) == ["gradcam", "random", "saliency"]
    cell = combined["accuracy"].sel(seed=1, dataset="digits", model="small_cnn")
    assert np.isnan(float(cell.sel({"attribution": "saliency"}).squeeze()))
    assert float(cell.sel(attribution="gradcam").squeeze()) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="no summaries"):
        combine([], "roar")


def test_every_evaluation_the_schema_allows_is_registered():
    schema = load_schema()
    allowed = schema["properties"]["experiments"]["items"]["properties"]["evaluations"]
    assert set(allowed["items"]["enum"]) == set(EVALUATIONS.names())
    for name in EVALUATIONS:
        for column in EVALUATIONS.get(name).columns:
            assert column.better in ("lower", "higher")


def test_code_version_outside_git(tmp_path):
    assert html_report.code_version(tmp_path).endswith("(not a git checkout)")
    assert html_report.config_hash({"a": 1, "b": [2]}) == html_report.config_hash(
        {"b": [2], "a": 1}
    )


def test_zero_epochs_keep_the_loaded_weights():
    config = {
        "datasets": {"digits": {}},
        "models": {"small_cnn": {}},
        "recipes": {"pretrained": {"epochs": 0}},
        "methods": {"saliency": {}},
        "experiments": [{"dataset": "digits", "model": "small_cnn", "recipes": ["pretrained"]}],
    }
    validate(config)
    config["recipes"]["pretrained"]["epochs"] = -1
    with pytest.raises(ConfigError, match="recipes.pretrained.epochs"):
        validate(config)
    model = build_model("small_cnn", in_channels=1, num_classes=10, image_size=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = torch.randn(8, 1, 16, 16), torch.arange(8)
    history = train_model(model, images, labels, Recipe(epochs=0), seed=0)
    assert history == []
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_every_registered_method_has_its_own_fixed_color():
    from matplotlib.colors import to_rgb

    from saliencybench.methods import METHODS
    from saliencybench.plotting import METHOD_COLORS, method_color, method_style

    names = METHODS.names()
    assert set(names) <= set(METHOD_COLORS)
    assert len({method_color(name) for name in names}) == len(names)
    assert method_color("my_second_lime") == method_color("my_second_lime")
    to_rgb(method_color("my_second_lime"))
    assert method_style("random")["linestyle"] == "--"


# ----------------------------------------------------------------------- layout


def _write_csv(path, header, rows):
    path.write_text("\n".join(",".join(row) for row in [header, *rows]) + "\n")
    return path


def test_tables_scroll_in_their_box_and_fold_per_class_rows(tmp_path):
    per_class = [["0.100", "lime", f"c{k}"] for k in range(12)] + [["0.200", "lime", "mean"]]
    table = html_report.csv_table(
        _write_csv(tmp_path / "h.csv", ["H", "method", "class"], per_class)
    )
    shown, folded = table.split("<details>")
    assert shown.count("<tr>") == 2 and "<td>mean</td>" in shown  # header and the mean row
    assert "<summary>per-class rows (12)</summary>" in folded and folded.count("<tr>") == 13
    assert table.count("<div class='table-box'><table>") == 2
    rows = [[str(k), "x"] for k in range(html_report.FOLD_ROWS + 1)]
    long = html_report.csv_table(_write_csv(tmp_path / "long.csv", ["k", "v"], rows))
    assert long.startswith("<details><summary>long.csv: 31 rows</summary>")
    short = html_report.csv_table(_write_csv(tmp_path / "short.csv", ["k", "v"], rows[:3]))
    assert short.startswith("<div class='table-box'>") and "<details>" not in short


def test_page_check_finds_what_overflows_and_what_is_too_small(tmp_path):
    """The browser check on a page built to fail it, and on the same page fixed."""
    from PIL import Image

    from saliencybench.page_check import BrowserMissing, check_page, chromium

    try:
        chromium()
    except BrowserMissing as missing:
        pytest.skip(str(missing))
    figure = tmp_path / "wide.png"
    Image.new("RGB", (6000, 300), "white").save(figure)
    cells = "".join(f"<td>column {k} with a long heading</td>" for k in range(60))
    bad = (
        "<!DOCTYPE html><html><head><style>"
        + html_report.STYLE
        + "</style></head><body>"
        + f"<table><tr>{cells}</tr></table>"
        + html_report.embedded_figure(figure)
        + "<img alt='broken.png' src='data:image/png;base64,AAAA'></body></html>"
    )
    (tmp_path / "bad.html").write_text(bad)
    problems = check_page(tmp_path / "bad.html").problems
    assert any("broken.png does not load" in p for p in problems)
    assert any("wide.png is drawn at 20% of its size" in p for p in problems)
    assert any("overflows sideways" in p for p in problems)
    assert any("1 of 1 tables are not in a scrolling box" in p for p in problems)
    Image.new("RGB", (1600, 300), "white").save(figure)
    good = bad.replace(f"<table><tr>{cells}</tr></table>", html_report._table_html(["a"], [["b"]]))
    good = good.replace("<img alt='broken.png' src='data:image/png;base64,AAAA'>", "")
    good = good.split("<figure>")[0] + html_report.embedded_figure(figure) + "</body></html>"
    (tmp_path / "good.html").write_text(good)
    assert check_page(tmp_path / "good.html").problems == []
