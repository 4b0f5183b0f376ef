"""End-to-end ROAR/KAR: `snakemake roar` on a tiny grid, then one more fraction."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_workflow import _snakemake as run_snakemake
from test_workflow import _write_config

from saliencybench import paths, store
from saliencybench.evaluations.roar import read_summary
from saliencybench.report import parse_cell

MODEL = ("digits", "small_cnn", "standard", 0)

CONFIG = {
    "seed": 0,
    "device": "cpu",
    "datasets": {"digits": {"source": "digits", "options": {"max_train": 200, "max_test": 60}}},
    "models": {"small_cnn": {}},
    "recipes": {"standard": {"epochs": 2, "batch_size": 32, "lr": 0.05}},
    "methods": {"saliency": {}},
    "roar": {"fractions": [0.5], "seeds": [0, 1], "modes": ["roar", "kar"]},
    "experiments": [{"dataset": "digits", "model": "small_cnn"}],
}


def _snakemake(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    """Write ``config`` into ``workdir`` and run snakemake there."""
    _write_config(workdir, config)
    return run_snakemake(workdir, *extra)


def _job_counts(stderr: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints before running: rule -> count."""
    table = stderr.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {
        match[1]: int(match[2]) for match in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)
    }


def _results(workdir: Path) -> dict[str, int]:
    return {
        str(path.relative_to(workdir)): path.stat().st_mtime_ns
        for path in (workdir / "results" / "roar").rglob("t*.json")
    }


@pytest.fixture(scope="module")
def roar_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("roar")
    done = _snakemake(workdir, CONFIG, "roar")
    assert done.returncode == 0, done.stderr[-5000:]
    return workdir, done


def test_roar_grid_outputs(roar_run):
    workdir, done = roar_run
    counts = _job_counts(done.stderr)
    # saliency plus the two baselines at one fraction: both modes and all seeds share one
    # job, which masks in memory
    assert "mask" not in counts and counts["retrain"] == 3
    assert counts["train"] == 2  # the unmasked models of seeds 0 and 1: the 0 % point
    summary = read_summary(workdir / paths.roar_summary(*MODEL))
    assert list(summary["method"].values) == ["random", "sobel", "saliency"]
    assert summary["accuracy"].shape == (3, 2, 1, 2)
    assert np.isfinite(summary["accuracy"].values).all()
    assert np.isfinite(summary["baseline_accuracy"].values).all()
    # masked stores are written only when roar.keep_masked is set
    assert not (workdir / "results" / "masked").exists()
    with open(workdir / paths.roar_table(*MODEL), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    for row in rows:
        values = summary["accuracy"].sel({"mode": row["mode"], "method": row["method"]}) * 100
        mean, _ = parse_cell(row["50%"])
        assert mean == pytest.approx(float(values.sel(fraction=0.5).mean()), abs=0.005)
    for suffix in ("png", "pdf"):
        figure = workdir / paths.roar_figure(*MODEL, suffix=suffix)
        if suffix == "png":
            with Image.open(figure) as image:
                image.verify()
        else:
            assert figure.read_bytes().startswith(b"%PDF")


def test_adding_a_fraction_runs_only_the_new_jobs(roar_run):
    workdir, _ = roar_run
    before = _results(workdir)
    wider = {**CONFIG, "roar": {**CONFIG["roar"], "fractions": [0.5, 0.9]}}
    done = _snakemake(workdir, wider, "roar")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = _job_counts(done.stderr)
    assert "mask" not in counts and counts["retrain"] == 3
    assert "train" not in counts and "attribute" not in counts
    after = _results(workdir)
    assert {key: after[key] for key in before} == before
    assert len(after) == 12
    summary = read_summary(workdir / paths.roar_summary(*MODEL))
    assert list(summary["fraction"].values) == [0.5, 0.9]


def test_keep_masked_writes_the_stores_the_models_were_trained_on(roar_run):
    workdir, _ = roar_run
    before = _results(workdir)
    keep = {**CONFIG, "roar": {**CONFIG["roar"], "keep_masked": True}}
    done = _snakemake(workdir, keep, "roar")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = _job_counts(done.stderr)
    assert counts["mask"] == 6 and "retrain" not in counts
    assert _results(workdir) == before
    records = [json.loads((workdir / result).read_text()) for result in before]
    trained_at_half = [record for record in records if record["fraction"] == 0.5]
    assert len(trained_at_half) == 6
    for record in trained_at_half:
        masked = store.read_dataset(
            workdir / paths.masked_store(*MODEL, record["method"], record["mode"], "0.5")
        )
        assert masked.content_hash == record["data_hash"]


def test_roar_method_without_train_maps_is_a_config_error(tmp_path):
    bad = {
        **CONFIG,
        "methods": {"saliency": {"splits": ["test"]}},
        "roar": {**CONFIG["roar"], "methods": ["saliency"]},
    }
    done = _snakemake(tmp_path, bad, "roar")
    assert done.returncode != 0
    assert "config key 'roar.methods': 'saliency' attributes only the test split" in done.stderr
    assert not (tmp_path / "results").exists()
