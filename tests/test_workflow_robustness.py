"""End-to-end robustness: `snakemake robustness` on a tiny config, then a config error."""

from __future__ import annotations

import copy

import pytest
from PIL import Image

from saliencybench.evaluations.robustness import spec as robustness_spec
from saliencybench.evaluations.robustness.summary import read_summary
from saliencybench.testing import job_counts, read_csv

MODEL = ("digits", "small_cnn", "standard", 0)

CONFIG = {
    "seed": 0,
    "device": "cpu",
    # a few epochs on a few hundred digits end near chance (10-20 %): the pipeline is
    # under test here, not the model, so the chance gate is off
    "chance_margin": None,
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
def robustness_run(finished_snakemake):
    return finished_snakemake("robustness", CONFIG, "robustness")


def test_robustness_outputs(robustness_run):
    workdir, done = robustness_run
    assert job_counts(done.stderr)["robustness_metrics"] == 3  # saliency twice, square once
    summary = read_summary(workdir / robustness_spec.summary_path(*MODEL))
    assert list(summary["attribution"].values) == ["saliency", "square"]
    assert (summary["images"].sel(attribution="saliency").values == 8).all()
    rows = read_csv(workdir / robustness_spec.table(*MODEL))
    assert [row["method"] for row in rows] == ["saliency", "saliency-SG", "square"]
    cell = summary.sel(attribution="saliency", smoothing="none", scope="global")
    shown = float(rows[0]["INFD square (global)"].split(" ± ")[0])
    assert shown == pytest.approx(float(cell["infidelity"]), rel=1e-2)
    with Image.open(workdir / robustness_spec.figure(*MODEL, suffix="png")) as image:
        image.verify()
    assert (workdir / robustness_spec.figure(*MODEL, suffix="pdf")).read_bytes()[:4] == b"%PDF"


def test_dropping_a_method_reruns_no_other_methods_metrics(robustness_run, snakemake_run):
    """The metrics job's settings hold no method list: only the summary and report rerun."""
    workdir, _ = robustness_run
    config = copy.deepcopy(CONFIG)
    config["robustness"]["methods"] = ["saliency"]
    done = snakemake_run(workdir, config, "robustness", "--dry-run")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stdout)  # a dry run prints its plan to stdout
    assert set(counts) - {"total"} == {"robustness_summary", "robustness_report", "robustness"}


def test_unknown_robustness_method_stops_before_any_job(tmp_path, snakemake_run):
    config = copy.deepcopy(CONFIG)
    config["robustness"]["methods"] = ["saliency", "squares"]  # a typo
    done = snakemake_run(tmp_path, config, "robustness")
    assert done.returncode != 0
    assert "config key 'robustness.methods': 'squares' is not defined in 'methods'" in done.stderr
    assert not (tmp_path / "results").exists()
