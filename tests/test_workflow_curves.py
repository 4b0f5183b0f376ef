"""End-to-end curves: `snakemake curves` on two recipes, then one changed curve setting."""

from __future__ import annotations

import pytest
from PIL import Image

from saliencybench.evaluations.curves import spec as curves_spec
from saliencybench.evaluations.curves.summary import read_fidelity
from saliencybench.testing import job_counts, read_csv

MODEL = ("digits", "small_cnn", 0)

CONFIG = {
    "seed": 0,
    "device": "cpu",
    # a few epochs on a few hundred digits end near chance (10-20 %): the pipeline is
    # under test here, not the model, so the chance gate is off
    "chance_margin": None,
    "datasets": {"digits": {"source": "digits", "options": {"max_train": 200, "max_test": 60}}},
    "models": {"small_cnn": {}},
    "recipes": {
        "standard": {"epochs": 2, "batch_size": 32, "lr": 0.05},
        "fpa": {"epochs": 2, "batch_size": 32, "lr": 0.05, "augmentation": {"name": "fpa"}},
    },
    "methods": {
        "integrated_gradients": {"n_steps": 8, "store_raw": True, "splits": ["test"]},
        "random": {"splits": ["test"]},
        "sobel": {"splits": ["test"]},
    },
    "curves": {"steps": 8, "max_images": 40},
    "experiments": [
        {
            "dataset": "digits",
            "model": "small_cnn",
            "recipes": ["standard", "fpa"],
            "evaluations": ["curves"],
        }
    ],
}


@pytest.fixture(scope="module")
def curves_run(finished_snakemake):
    return finished_snakemake("curves", CONFIG, "curves")


def test_curves_outputs(curves_run):
    workdir, done = curves_run
    counts = job_counts(done.stderr)
    assert counts["perturbation_curves"] == 6  # three methods, two recipes
    summary = read_fidelity(workdir / curves_spec.summary_path(*MODEL))
    assert list(summary["recipe"].values) == ["standard", "fpa"]
    # IG evaluated signed and unsigned from its raw attributions, in the paper's order
    assert list(summary["estimator"].values) == ["Random", "IG_sum", "IG_abs", "sobel_sum"]
    assert (summary["images"].values == 40).all()
    rows = read_csv(workdir / curves_spec.table(*MODEL))
    assert [row["recipe"] for row in rows] == ["standard", "fpa"]
    assert all("±" in row["IG_sum"] for row in rows)
    for kind in ("curves", "lif_example"):
        with Image.open(workdir / curves_spec.figure(*MODEL, suffix="png", kind=kind)) as image:
            image.verify()
        pdf = workdir / curves_spec.figure(*MODEL, suffix="pdf", kind=kind)
        assert pdf.read_bytes().startswith(b"%PDF")


def test_dropping_a_method_reruns_no_other_methods_curves(curves_run, snakemake_run):
    """The curves job's settings hold no method list: only the summary and report rerun."""
    workdir, _ = curves_run
    fewer = [{**CONFIG["experiments"][0], "methods": ["random", "sobel"]}]
    done = snakemake_run(workdir, {**CONFIG, "experiments": fewer}, "curves", "--dry-run")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stdout)  # a dry run prints its plan to stdout
    assert set(counts) - {"total"} == {"fidelity_summary", "fidelity_report", "curves"}


def test_changing_the_steps_reruns_only_the_curves(curves_run, snakemake_run):
    workdir, _ = curves_run
    changed = {**CONFIG, "curves": {**CONFIG["curves"], "steps": 4}}
    done = snakemake_run(workdir, changed, "curves")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stderr)
    assert counts["perturbation_curves"] == 6
    assert "attribute" not in counts and "train" not in counts
    summary = read_fidelity(workdir / curves_spec.summary_path(*MODEL))
    assert len(summary["fraction"]) == 5
