"""End to end: the report page of a tiny run of every evaluation, Snakemake's own report,
the combined summaries, and every paper preset planned against a fake dataset layout."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from fakes import write_cifar, write_image, write_mnist, write_state_dict
from PIL import Image

from saliencybench import html_report, paths, planning
from saliencybench.evaluations import EVALUATIONS, ORDER
from saliencybench.evaluations.roar import spec as roar_spec
from saliencybench.summaries import read_combined
from saliencybench.testing import ROOT, job_counts

RUN = ("digits", "small_cnn", "standard", 0)

# Every evaluation at its smallest: each Snakemake job costs ~4 s of imports, so the methods
# are the ROAR baselines, one gradient method and one perturbation method for hermitry.
CONFIG = {
    "seed": 0,
    "device": "cpu",
    # a few epochs on a few hundred digits end near chance (10-20 %): the pipeline is
    # under test here, not the model, so the chance gate is off
    "chance_margin": None,
    "datasets": {"digits": {"source": "digits", "options": {"max_train": 150, "max_test": 30}}},
    "models": {"small_cnn": {}},
    "recipes": {"standard": {"epochs": 3, "batch_size": 32, "lr": 0.05}},
    "methods": {
        "random": {},
        "sobel": {},
        "saliency": {},
        "occlusion": {"window_size": 4, "stride": 4, "splits": ["test"]},
    },
    "roar": {"methods": ["saliency"], "fractions": [0.5], "modes": ["roar"], "seeds": [0]},
    "curves": {"steps": 4, "max_images": 20},
    "robustness": {
        "methods": ["saliency", "random"],
        "max_images": 4,
        "infidelity": {"n_samples": 10},
        "sensitivity": {"n_samples": 3},
        "smoothing": {"nt_samples": 2},
    },
    "randomization": {
        "methods": ["saliency", "sobel"],
        "max_images": 10,
        "bootstrap_samples": 100,
        "data_randomization": False,
    },
    "hermitry": {
        "map_methods": ["random"],
        "max_per_class": 2,
        "noise_images": 5,
        "max_queries_per_image": 3,
        "fractions": [0.5],
        "steps": 2,
        "infidelity_samples": 2,
    },
    "experiments": [
        {
            "dataset": "digits",
            "model": "small_cnn",
            "evaluations": ["roar", "curves", "robustness", "randomization", "hermitry"],
        }
    ],
    # the thesis's ROAR numbers: the run measures random's cell at 50 %, not the others
    "reference": "thesis_mnist_roar",
}


@pytest.fixture(scope="module")
def report_run(finished_snakemake):
    return finished_snakemake("report", CONFIG)  # the default target


def _page(workdir: Path) -> str:
    return (workdir / paths.report_page()).read_text(encoding="utf-8")


def test_default_target_ends_with_the_report(report_run):
    workdir, done = report_run
    counts = job_counts(done.stderr)
    assert counts["report"] == 1
    assert counts["evaluation_summary"] == 5  # one combined summary per evaluation
    page = _page(workdir)
    # accuracy, then one section per evaluation in registry order, then the scorecard
    titles = [EVALUATIONS.get(name).title for name in ORDER]
    positions = [page.index("Model accuracy per recipe")]
    positions += [page.index(f">{title}</h3>") for title in titles]
    positions.append(page.index("Method scorecard"))
    assert positions == sorted(positions)
    for name in ORDER:
        for column in EVALUATIONS.get(name).columns:
            assert html.escape(column.label) in page
    headers = re.findall(r"<small>[↓↑] (lower|higher) is better</small>", page)
    assert headers == [column.better for name in ORDER for column in EVALUATIONS.get(name).columns]
    assert "saliencybench 0.1.0" in page
    # the sidecar's test accuracy is on the page, in percent
    sidecar = yaml.safe_load((workdir / paths.checkpoint_sidecar(*RUN)).read_text())
    assert f"{100 * sidecar['test_accuracy']:.2f}" in page


def test_page_opens_with_the_published_numbers(report_run):
    workdir, done = report_run
    assert job_counts(done.stderr)["reproduction"] == 1
    page = _page(workdir)
    assert page.index("Published vs measured") < page.index("Model accuracy per recipe")
    table = workdir / paths.reproduction_table("thesis_mnist_roar")
    rows = list(csv.DictReader(table.open(newline="")))
    measured = [row["what"] for row in rows if row["verdict"] == "measured"]
    assert measured == ["ROAR accuracy, random, 50 % removed"]
    assert "98.64" in page and "not measured" in page


def test_page_renders_in_a_browser(report_run):
    """Headless Chromium: every image loads and is drawn at half its size or more, the
    body does not overflow the window, every table sits in its scrolling box."""
    from saliencybench.page_check import BrowserMissing, check_page

    workdir, _ = report_run
    try:
        result = check_page(workdir / paths.report_page())
    except BrowserMissing as missing:
        pytest.skip(str(missing))
    assert len(result.measured["images"]) == len(re.findall(r"<img ", _page(workdir)))
    assert result.problems == []


def _config(workdir: Path) -> dict:
    from saliencybench.config import validate

    return validate(yaml.safe_load((workdir / "config.yaml").read_text()))


def test_every_figure_is_embedded_and_exists(report_run):
    workdir, _ = report_run
    page = _page(workdir)
    inputs = planning.report_inputs(_config(workdir))
    assert inputs["figures"]
    for figure in inputs["figures"]:
        assert (workdir / figure).is_file(), figure
        assert (workdir / figure).with_suffix(".pdf").is_file(), figure
        assert f"alt='{Path(figure).name}'" in page
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == len(inputs["figures"])
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            assert image.format == "PNG" and min(image.size) > 100
    assert html_report.config_hash(_config(workdir)) in page


def test_scorecard_agrees_with_the_tables(report_run):
    workdir, _ = report_run
    page = _page(workdir)
    randomization = xr.open_dataset(workdir / paths.evaluation_summary("randomization"))
    s_i = randomization["sensitivity"].sel(dataset="digits", model="small_cnn", seed=0)
    s_i = s_i.sel(recipe="standard")
    # sobel ignores the model: S^I 0 and a fail, saliency above it and ranked first
    assert float(s_i.sel(attribution="sobel")) == pytest.approx(0.0, abs=1e-6)
    assert float(s_i.sel(attribution="saliency")) > 0.01
    scorecard = page[page.index("Method scorecard") :]
    assert re.search(r"0\.\d+ pass <small>#1</small>", scorecard)
    assert re.search(r"0 fail <small>#2</small>", scorecard)


def test_combined_summaries_have_the_run_dimensions(report_run):
    workdir, _ = report_run
    for name in ORDER:
        summary = read_combined(workdir / paths.evaluation_summary(name), name)
        for dim in planning.RUN_DIMS:
            assert summary.sizes[dim] == 1, (name, dim)
        assert summary["dataset"].values.tolist() == ["digits"]
    roar = xr.open_dataset(workdir / paths.evaluation_summary("roar"))
    per_model = xr.open_dataset(workdir / roar_spec.summary_path(*RUN))
    np.testing.assert_array_equal(
        roar["accuracy"].sel(dataset="digits", model="small_cnn", recipe="standard", seed=0),
        per_model["accuracy"].values,
    )


def test_snakemake_report_lists_the_figures(report_run, snakemake_run):
    workdir, _ = report_run
    done = snakemake_run(workdir, CONFIG, "--report", "snakemake-report.zip")
    assert done.returncode == 0, done.stderr[-3000:]
    with zipfile.ZipFile(workdir / "snakemake-report.zip") as archive:
        names = archive.namelist()
    for figure in planning.report_inputs(_config(workdir))["figures"]:
        assert any(name.endswith(Path(figure).name) for name in names), figure
    assert any(name.endswith("report.html") for name in names)


# ----------------------------------------------------------------------- paper presets

PRESETS = sorted((ROOT / "configs" / "papers").glob("*.yaml"))


def _fake_layouts(root: Path) -> dict[str, str]:
    """Tiny files in each real dataset's on-disk format, for `snakemake -n`."""
    rng = np.random.default_rng(0)
    write_mnist(root / "mnist", rng, compress=True)
    write_cifar(root / "cifar10" / "cifar-10-batches-py", rng)
    for label in ("apple_pie", "sushi"):
        write_image(root / "food-101" / "images" / label / "0.jpg", (12, 12))
    (root / "food-101" / "meta").mkdir()
    (root / "food-101" / "meta" / "train.txt").write_text("apple_pie/0\nsushi/0\n")
    (root / "food-101" / "meta" / "test.txt").write_text("apple_pie/0\nsushi/0\n")
    for split in ("train", "val"):
        for label in ("n04409515", "n04004767", "n07836838"):
            write_image(root / "imagenet" / split / label / "0.JPEG", (12, 12))
    return {
        "mnist": str(root / "mnist"),
        "cifar10": str(root / "cifar10"),
        "image_folder": str(root / "food-101"),
        "imagenet": str(root / "imagenet"),
    }


def _overrides(preset: dict, layouts: dict[str, str], weights: Path) -> list[str]:
    """`--config` values pointing every dataset path and weights file at the fakes."""
    datasets, models = {}, {}
    for name, entry in preset["datasets"].items():
        path = entry.get("options", {}).get("path")
        if path is None:
            continue
        source = entry["source"]
        where = layouts["imagenet"] if "imagenet" in name else layouts[source]
        datasets[name] = {"options": {"path": where}}
    for name, entry in preset["models"].items():
        if entry and entry.get("weights"):
            models[name] = {"weights": str(weights)}
    values = []
    if datasets:
        values.append(f"datasets={yaml.safe_dump(datasets, default_flow_style=True).strip()}")
    if models:
        values.append(f"models={yaml.safe_dump(models, default_flow_style=True).strip()}")
    return values


def test_every_preset_has_a_smoke_variant():
    assert {path.name for path in PRESETS} == {
        path.name for path in (ROOT / "configs" / "papers" / "smoke").glob("*.yaml")
    }
    assert {
        "thesis_mnist_roar.yaml",
        "brocki2023_fpa_cifar10.yaml",
        "yeh2019_mnist.yaml",
        "hermitry_imagenet3.yaml",
    } <= {path.name for path in PRESETS}


@pytest.mark.parametrize("preset", PRESETS, ids=[path.stem for path in PRESETS])
def test_paper_preset_plans_against_a_fake_layout(tmp_path, preset, snakemake_run):
    layouts = _fake_layouts(tmp_path / "data")
    weights = tmp_path / "weights.pth"
    write_state_dict(weights)
    loaded = yaml.safe_load(preset.read_text())
    command = ["--configfile", str(preset), "--dry-run", "--config"]
    done = _plan(snakemake_run, tmp_path, command + _overrides(loaded, layouts, weights))
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts["report"] == 1 and counts["all"] == 1
    listed = {name for e in loaded["experiments"] for name in e["evaluations"]}
    assert counts["evaluation_summary"] == len(listed)


def test_preset_without_its_dataset_stops_at_validation(tmp_path, snakemake_run):
    preset = ROOT / "configs" / "papers" / "thesis_mnist_roar.yaml"
    done = _plan(snakemake_run, tmp_path, ["--configfile", str(preset), "--dry-run"])
    assert done.returncode != 0
    assert "Invalid config: config key 'datasets.mnist': dataset path" in done.stdout + done.stderr


def _plan(snakemake_run, workdir: Path, extra: list[str]):
    """snakemake in ``workdir`` with the given arguments (a preset as --configfile)."""
    return snakemake_run(workdir, None, *extra, configfile=None, timeout=300)


@pytest.mark.parametrize("preset", PRESETS, ids=[path.stem for path in PRESETS])
def test_smoke_preset_plans(tmp_path, preset, snakemake_run):
    smoke = preset.parent / "smoke" / preset.name
    done = _plan(snakemake_run, tmp_path, ["--configfile", str(smoke), "--dry-run"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert job_counts(done.stdout + done.stderr)["report"] == 1


MNIST_TRAIN_IMAGES = 60_000  # MNIST's training split, on which the thesis trains
SAMPLES = sorted((ROOT / "configs" / "papers" / "sample").glob("*.yaml"))


@pytest.mark.parametrize("sample", SAMPLES, ids=[path.stem for path in SAMPLES])
def test_sample_variant_keeps_its_presets_recipe_and_optimizer_steps(
    tmp_path, sample, snakemake_run
):
    """A sample variant runs its preset on the embedded data: the same methods, fill,
    fractions and recipe, with the epochs scaled so that the number of SGD steps is the
    paper's (within 1 %); and it plans."""
    preset = yaml.safe_load((ROOT / "configs" / "papers" / sample.name).read_text())
    variant = yaml.safe_load(sample.read_text())
    assert variant["reference"] == preset["reference"]
    assert variant["methods"] == preset["methods"]
    for key in ("fill", "fractions", "methods"):
        assert variant["roar"][key] == preset["roar"][key], key
    (name, recipe), (_, paper_recipe) = (*variant["recipes"].items(), *preset["recipes"].items())
    assert {k: v for k, v in recipe.items() if k != "epochs"} == {
        k: v for k, v in paper_recipe.items() if k != "epochs"
    }
    train_images = variant["datasets"]["mnist"]["options"]["max_train"]
    paper_steps = paper_recipe["epochs"] * math.ceil(MNIST_TRAIN_IMAGES / recipe["batch_size"])
    steps_per_epoch = math.ceil(train_images / recipe["batch_size"])
    assert abs(recipe["epochs"] * steps_per_epoch / paper_steps - 1) <= 0.01, name
    done = _plan(snakemake_run, tmp_path, ["--configfile", str(sample), "--dry-run"])
    assert done.returncode == 0, done.stderr[-3000:]
    methods = len(preset["roar"]["methods"]) + 2  # with the random and sobel controls
    retrain_jobs = job_counts(done.stdout + done.stderr)["retrain"]
    assert retrain_jobs == len(preset["roar"]["fractions"]) * methods
