"""End-to-end hermitry: `snakemake hermitry` on a tiny config with two recipes, then the plan
for a new cut-off."""

from __future__ import annotations

import pytest
from PIL import Image

from saliencybench.evaluations.hermitry import spec as hermitry_spec
from saliencybench.evaluations.hermitry.summary import read_store, read_summary
from saliencybench.testing import job_counts, read_csv

MODELS = [("digits", "small_cnn", recipe, 0) for recipe in ("standard", "fpa")]

CONFIG = {
    "seed": 0,
    "device": "cpu",
    # a few epochs on a few hundred digits end near chance (10-20 %): the pipeline is
    # under test here, not the model, so the chance gate is off
    "chance_margin": None,
    "datasets": {"digits": {"source": "digits", "options": {"max_train": 300, "max_test": 60}}},
    "models": {"small_cnn": {}},
    "recipes": {
        "standard": {"epochs": 2, "batch_size": 32, "lr": 0.05},
        "fpa": {"epochs": 2, "batch_size": 32, "lr": 0.05, "augmentation": {"name": "fpa"}},
    },
    "methods": {
        "occlusion": {"window_size": 4, "stride": 4, "splits": ["test"]},
        "random": {"splits": ["test"]},
    },
    "hermitry": {
        "map_methods": ["random"],
        "max_per_class": 3,
        "noise_images": 10,
        "max_queries_per_image": 5,
        "fractions": [0.5],
        "steps": 2,
        "infidelity_samples": 2,
    },
    "experiments": [
        {
            "dataset": "digits",
            "model": "small_cnn",
            "recipes": ["standard", "fpa"],
            "methods": ["occlusion", "random"],
            "evaluations": ["hermitry"],
        }
    ],
}


@pytest.fixture(scope="module")
def hermitry_run(finished_snakemake):
    return finished_snakemake("hermitry", CONFIG, "hermitry")


def test_hermitry_outputs_agree_with_the_stores(hermitry_run):
    workdir, done = hermitry_run
    counts = job_counts(done.stderr)
    # occlusion is the only perturbation method of the experiment: one capture per model
    assert counts["hermitry_capture"] == 2 and counts["hermitry_reference"] == 2
    assert counts["attribute"] == 2  # random's maps rank the masked inputs
    assert counts["hermitry_recipes"] == 1
    for model in MODELS:
        captured = read_store(workdir / hermitry_spec.method_store(*model, "occlusion"))
        # 30 images (3 per class) of 8 x 8 px: the image and its 2 x 2 windows, 5 queries
        assert captured.sizes["explained"] == 30 and (captured["queries"].values == 5).all()
        assert captured.sizes["sample"] == 30 * 5
        summary = read_summary(workdir / hermitry_spec.summary_path(*model))
        table = read_csv(workdir / hermitry_spec.table(*model))
        occlusion = [row for row in table if row["method"] == "occlusion"]
        assert len(occlusion) == 11  # ten classes and their mean
        mean = float(summary["panel_hermitry"].sel(panel="occlusion").mean())
        assert float(occlusion[-1]["hermitry_ratio"]) == pytest.approx(mean, abs=5e-4)
        for row in table:
            low = float(row["hermitry_ratio"]) <= 0.3
            assert row["hermitry"] == ("low" if low else "high")
        thresholds = read_csv(workdir / hermitry_spec.table(*model, kind="hermitry_thresholds"))
        assert [float(row["threshold"]) for row in thresholds] == pytest.approx(
            summary["threshold"].values, abs=5e-5
        )
        with Image.open(workdir / hermitry_spec.figure(*model)) as image:
            image.verify()
        assert (workdir / hermitry_spec.figure(*model, suffix="pdf")).read_bytes()[:4] == b"%PDF"
    recipes = read_csv(workdir / hermitry_spec.recipes_table("digits", "small_cnn", 0))
    sources = {(row["source"], row["map"], row["level"]) for row in recipes}
    assert ("MIF", "random", "0.5") in sources and ("ROAR", "random", "0.5") in sources
    assert set(recipes[0]) == {"source", "map", "level", "standard", "fpa"}


def test_changing_the_cut_off_reruns_only_summaries_and_reports(hermitry_run, snakemake_run):
    workdir, _ = hermitry_run
    changed = {**CONFIG, "hermitry": {**CONFIG["hermitry"], "low_ratio": 0.0}}
    done = snakemake_run(workdir, changed, "hermitry", "--dry-run")  # a plan: no 4 s imports
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stdout)  # a dry run prints its plan to stdout
    assert set(counts) - {"total"} == {
        "hermitry_summary",
        "hermitry_report",
        "hermitry_recipes",
        "hermitry",
    }


def test_the_roar_fill_reruns_the_evaluation_inputs_not_the_captures(hermitry_run, snakemake_run):
    workdir, _ = hermitry_run
    changed = {**CONFIG, "roar": {"fill": "blur"}}  # read by hermitry_evaluations alone
    done = snakemake_run(workdir, changed, "hermitry", "--dry-run")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stdout)
    assert set(counts) - {"total"} == {
        "hermitry_evaluations",
        "hermitry_summary",
        "hermitry_report",
        "hermitry_recipes",
        "hermitry",
    }
    assert counts["hermitry_evaluations"] == 2
