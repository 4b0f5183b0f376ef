"""End-to-end robustness: `snakemake robustness` on a tiny config, then a config error."""

from __future__ import annotations

import copy
import csv

import pytest
from PIL import Image
from test_workflow_roar import _job_counts, _snakemake

from saliencybench import paths
from saliencybench.evaluations.robustness import read_summary

MODEL = ("digits", "small_cnn", "standard", 0)

CONFIG = {
    "seed": 0,
    "device": "cpu",
    "datasets": {"digits": {"source": "digits", "options": {"max_train": 200, "max_test": 40}}},
    "models": {"small_cnn": {}},
    "recipes": {"standard": {"epochs": 2, "batch_size": 32, "lr": 0.05}},
    "methods": {
        "saliency": {"splits": ["test"]},
        "square": {"splits": ["test"]},
    },
    "robustness": {
        "methods": ["saliency", "square"],
        "max_images": 8,
        "infidelity": {"n_samples": 20},
        "sensitivity": {"n_samples": 4},
        "smoothing": {"nt_samples": 3},
    },
    "experiments": [
        {"dataset": "digits", "model": "small_cnn", "evaluations": ["robustness"]},
    ],
}


@pytest.fixture(scope="module")
def robustness_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("robustness")
    done = _snakemake(workdir, CONFIG, "robustness")
    assert done.returncode == 0, done.stderr[-5000:]
    return workdir, done


def test_robustness_outputs(robustness_run):
    workdir, done = robustness_run
    assert _job_counts(done.stderr)["robustness_metrics"] == 2
    summary = read_summary(workdir / paths.robustness_summary(*MODEL))
    assert list(summary["method"].values) == ["saliency", "square"]
    assert (summary["images"].sel({"method": "saliency"}).values == 8).all()
    with open(workdir / paths.robustness_table(*MODEL), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["method"] for row in rows] == ["saliency", "saliency-SG", "square"]
    cell = summary.sel({"method": "saliency", "smoothing": "none", "scope": "global"})
    shown = float(rows[0]["INFD square (global)"].split(" ± ")[0])
    assert shown == pytest.approx(float(cell["infidelity"]), rel=1e-2)
    with Image.open(workdir / paths.robustness_figure(*MODEL, suffix="png")) as image:
        image.verify()
    assert (workdir / paths.robustness_figure(*MODEL, suffix="pdf")).read_bytes()[:4] == b"%PDF"


def test_unknown_robustness_method_stops_before_any_job(tmp_path):
    config = copy.deepcopy(CONFIG)
    config["robustness"]["methods"] = ["saliency", "squares"]  # a typo
    done = _snakemake(tmp_path, config, "robustness")
    assert done.returncode != 0
    assert "config key 'robustness.methods': 'squares' is not defined in 'methods'" in done.stderr
    assert not (tmp_path / "results").exists()
