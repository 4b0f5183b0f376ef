"""End-to-end hermitry: `snakemake hermitry` on a tiny config with two recipes, then the plan
for a new cut-off."""

from __future__ import annotations

import csv

import pytest
from PIL import Image
from test_workflow_roar import _job_counts, _snakemake

from saliencybench import paths
from saliencybench.evaluations.hermitry import read_store, read_summary

MODELS = [("digits", "small_cnn", recipe, 0) for recipe in ("standard", "fpa")]

CONFIG = {
    "seed": 0,
    "device": "cpu",
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
def hermitry_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hermitry")
    done = _snakemake(workdir, CONFIG, "hermitry")
    assert done.returncode == 0, done.stderr[-5000:]
    return workdir, done


def _csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_hermitry_outputs_agree_with_the_stores(hermitry_run):
    workdir, done = hermitry_run
    counts = _job_counts(done.stderr)
    # occlusion is the only perturbation method of the experiment: one capture per model
    assert counts["hermitry_capture"] == 2 and counts["hermitry_reference"] == 2
    assert counts["attribute"] == 2  # random's maps rank the masked inputs
    assert counts["hermitry_recipes"] == 1
    for model in MODELS:
        captured = read_store(workdir / paths.hermitry_method_store(*model, "occlusion"))
        # 30 images (3 per class) of 8 x 8 px: the image and its 2 x 2 windows, 5 queries
        assert captured.sizes["explained"] == 30 and (captured["queries"].values == 5).all()
        assert captured.sizes["sample"] == 30 * 5
        summary = read_summary(workdir / paths.hermitry_summary(*model))
        table = _csv(workdir / paths.hermitry_table(*model))
        occlusion = [row for row in table if row["method"] == "occlusion"]
        assert len(occlusion) == 11  # ten classes and their mean
        mean = float(summary["panel_hermitry"].sel(panel="occlusion").mean())
        assert float(occlusion[-1]["hermitry_ratio"]) == pytest.approx(mean, abs=5e-4)
        for row in table:
            low = float(row["hermitry_ratio"]) <= 0.3
            assert row["hermitry"] == ("low" if low else "high")
        thresholds = _csv(workdir / paths.hermitry_table(*model, kind="hermitry_thresholds"))
        assert [float(row["threshold"]) for row in thresholds] == pytest.approx(
            summary["threshold"].values, abs=5e-5
        )
        with Image.open(workdir / paths.hermitry_figure(*model)) as image:
            image.verify()
        assert (workdir / paths.hermitry_figure(*model, suffix="pdf")).read_bytes()[:4] == b"%PDF"
    recipes = _csv(workdir / paths.hermitry_recipes_table("digits", "small_cnn", 0))
    sources = {(row["source"], row["map"], row["level"]) for row in recipes}
    assert ("MIF", "random", "0.5") in sources and ("ROAR", "random", "0.5") in sources
    assert set(recipes[0]) == {"source", "map", "level", "standard", "fpa"}


def test_changing_the_cut_off_reruns_only_summaries_and_reports(hermitry_run):
    workdir, _ = hermitry_run
    changed = {**CONFIG, "hermitry": {**CONFIG["hermitry"], "low_ratio": 0.0}}
    done = _snakemake(workdir, changed, "hermitry", "--dry-run")  # a plan: no 4 s imports
    assert done.returncode == 0, done.stderr[-5000:]
    counts = _job_counts(done.stdout)  # a dry run prints its plan to stdout
    assert set(counts) - {"total"} == {
        "hermitry_summary",
        "hermitry_report",
        "hermitry_recipes",
        "hermitry",
    }
