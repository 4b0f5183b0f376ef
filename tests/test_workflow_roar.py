"""End-to-end ROAR/KAR: `snakemake roar` on a tiny grid, then one more fraction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saliencybench import store
from saliencybench.evaluations.roar import spec as roar_spec
from saliencybench.evaluations.roar.summary import read_summary
from saliencybench.plotting import parse_cell
from saliencybench.testing import job_counts, read_csv

MODEL = ("digits", "small_cnn", "standard", 0)

CONFIG = {
    "seed": 0,
    "device": "cpu",
    # a few epochs on a few hundred digits end near chance (10-20 %): the pipeline is
    # under test here, not the model, so the chance gate is off
    "chance_margin": None,
    "datasets": {"digits": {"source": "digits", "options": {"max_train": 200, "max_test": 60}}},
    "models": {"small_cnn": {}},
    "recipes": {"standard": {"epochs": 2, "batch_size": 32, "lr": 0.05}},
    "methods": {"saliency": {}},
    "roar": {"fractions": [0.5], "seeds": [0, 1], "modes": ["roar", "kar"]},
    "experiments": [{"dataset": "digits", "model": "small_cnn"}],
}


def _results(workdir: Path) -> dict[str, int]:
    return {
        str(path.relative_to(workdir)): path.stat().st_mtime_ns
        for path in (workdir / "results" / "roar").rglob("t*.json")
    }


@pytest.fixture(scope="module")
def roar_run(finished_snakemake):
    return finished_snakemake("roar", CONFIG, "roar")


def test_roar_grid_outputs(roar_run):
    workdir, done = roar_run
    counts = job_counts(done.stderr)
    # saliency plus the two baselines at one fraction: both modes and all seeds share one
    # job, which masks in memory
    assert "mask" not in counts and counts["retrain"] == 3
    assert counts["train"] == 2  # the unmasked models of seeds 0 and 1: the 0 % point
    summary = read_summary(workdir / roar_spec.summary_path(*MODEL))
    assert list(summary["attribution"].values) == ["random", "sobel", "saliency"]
    assert summary["accuracy"].shape == (3, 2, 1, 2)
    assert np.isfinite(summary["accuracy"].values).all()
    assert np.isfinite(summary["baseline_accuracy"].values).all()
    # masked stores are written only when roar.keep_masked is set
    assert not (workdir / "results" / "masked").exists()
    rows = read_csv(workdir / roar_spec.table(*MODEL))
    # per mode: 3 retrained rows, 3 rows of the original model, one Kendall tau row
    assert len(rows) == 14
    for row in rows[:6]:
        values = summary["accuracy"].sel({"mode": row["mode"], "attribution": row["method"]}) * 100
        mean, _ = parse_cell(row["50%"])
        assert mean == pytest.approx(float(values.sel(fraction=0.5).mean()), abs=0.005)
    # ROAR without retraining: one job per method, the original model on the masked tests
    assert counts["roar_unretrained"] == 3
    unretrained = summary["unretrained_accuracy"]
    for row in rows[6:]:
        mode, _, kind = row["mode"].partition(", ")
        if kind == "not retrained":
            value = float(unretrained.sel(mode=mode, attribution=row["method"], fraction=0.5))
            assert float(row["50%"]) == pytest.approx(100 * value, abs=0.05)
        else:
            assert row["method"] == "Kendall tau, retrained vs not"
    for suffix in ("png", "pdf"):
        figure = workdir / roar_spec.figure(*MODEL, suffix=suffix)
        if suffix == "png":
            with Image.open(figure) as image:
                image.verify()
        else:
            assert figure.read_bytes().startswith(b"%PDF")


def test_adding_a_fraction_runs_only_the_new_jobs(roar_run, snakemake_run):
    workdir, _ = roar_run
    before = _results(workdir)
    wider = {**CONFIG, "roar": {**CONFIG["roar"], "fractions": [0.5, 0.9]}}
    done = snakemake_run(workdir, wider, "roar")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stderr)
    assert "mask" not in counts and counts["retrain"] == 3
    assert "train" not in counts and "attribute" not in counts
    # each method's job without retraining covers every fraction: it runs again
    assert counts["roar_unretrained"] == 3
    after = _results(workdir)
    assert {key: after[key] for key in before} == before
    assert len(after) == 12
    summary = read_summary(workdir / roar_spec.summary_path(*MODEL))
    assert list(summary["fraction"].values) == [0.5, 0.9]


def test_keep_masked_writes_the_stores_the_models_were_trained_on(roar_run, snakemake_run):
    workdir, _ = roar_run
    before = _results(workdir)
    keep = {**CONFIG, "roar": {**CONFIG["roar"], "keep_masked": True}}
    done = snakemake_run(workdir, keep, "roar")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stderr)
    assert counts["mask"] == 6 and "retrain" not in counts
    assert _results(workdir) == before
    records = [json.loads((workdir / result).read_text()) for result in before]
    trained_at_half = [record for record in records if record["fraction"] == 0.5]
    assert len(trained_at_half) == 6
    for record in trained_at_half:
        masked = store.read_dataset(
            workdir / roar_spec.masked_store(*MODEL, record["method"], record["mode"], "0.5")
        )
        assert masked.content_hash == record["data_hash"]


def test_roar_method_without_train_maps_is_a_config_error(tmp_path, snakemake_run):
    bad = {
        **CONFIG,
        "methods": {"saliency": {"splits": ["test"]}},
        "roar": {**CONFIG["roar"], "methods": ["saliency"]},
    }
    done = snakemake_run(tmp_path, bad, "roar")
    assert done.returncode != 0
    assert "config key 'roar.methods': 'saliency' attributes only the test split" in done.stderr
    assert not (tmp_path / "results").exists()


def test_adding_a_method_plans_only_its_own_jobs(roar_run, snakemake_run):
    """A retrain job's settings hold neither the methods nor the ROAR section's list of
    them: naming one more reruns none of the other methods' jobs."""
    workdir, _ = roar_run
    more = {
        **CONFIG,
        "methods": {**CONFIG["methods"], "smoothgrad": {}},
        "roar": {**CONFIG["roar"], "methods": ["saliency", "smoothgrad"]},
    }
    done = snakemake_run(workdir, more, "roar", "--dry-run")  # a plan: no 4 s imports
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stdout)  # a dry run prints its plan to stdout
    assert counts["attribute"] == 1 and counts["retrain"] == 1
    assert "train" not in counts and "mask" not in counts
