"""End-to-end randomization: `snakemake randomization` on a tiny config, then a new threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from saliencybench.evaluations.randomization import spec as randomization_spec
from saliencybench.evaluations.randomization.summary import (
    image_sensitivity,
    read_store,
    read_summary,
    sensitive_images,
)
from saliencybench.testing import job_counts, read_csv

MODEL = ("digits", "small_cnn", "standard", 0)

CONFIG = {
    "seed": 0,
    "device": "cpu",
    # a few epochs on a few hundred digits end near chance (10-20 %): the pipeline is
    # under test here, not the model, so the chance gate is off
    "chance_margin": None,
    "datasets": {"digits": {"source": "digits", "options": {"max_train": 300, "max_test": 40}}},
    "models": {"small_cnn": {}},
    "recipes": {"standard": {"epochs": 3, "batch_size": 32, "lr": 0.05}},
    "methods": {
        "saliency": {"splits": ["test"]},
        "integrated_gradients": {"n_steps": 8, "splits": ["test"]},
        "sobel": {"splits": ["test"]},
    },
    "randomization": {"max_images": 30, "bootstrap_samples": 500},
    "experiments": [
        {
            "dataset": "digits",
            "model": "small_cnn",
            "methods": ["saliency", "integrated_gradients", "sobel"],
            "evaluations": ["randomization"],
        }
    ],
}


@pytest.fixture(scope="module")
def randomization_run(finished_snakemake):
    return finished_snakemake("randomization", CONFIG, "randomization")


def _table(workdir) -> dict[str, dict[str, str]]:
    return {row["method"]: row for row in read_csv(workdir / randomization_spec.table(*MODEL))}


def test_randomization_outputs_agree_with_the_stores(randomization_run):
    workdir, done = randomization_run
    counts = job_counts(done.stderr)
    # one job per method covers cascading, independent and data randomization
    assert counts["parameter_randomization"] == 3
    assert counts["train_permuted_labels"] == 1 and counts["train"] == 1
    assert "attribute" not in counts  # the tests compute their own maps
    sidecar = json.loads((workdir / randomization_spec.permuted_sidecar(*MODEL)).read_text())
    assert sidecar["permuted_labels"]["share_changed"] > 0.8
    summary = read_summary(workdir / randomization_spec.summary_path(*MODEL))
    methods = ["saliency", "integrated_gradients", "sobel"]
    assert list(summary["attribution"].values) == methods
    assert list(summary["layer"].values) == ["fc3", "fc2", "fc1", "conv2", "conv1"]
    table = _table(workdir)
    assert list(table) == methods
    for method in methods:
        stored = read_store(workdir / randomization_spec.store_path(*MODEL, method))
        assert stored.sizes["sample"] == 30
        ssim = stored["similarity"].sel(mode="independent", metric="ssim").values
        sensitivity = image_sensitivity(ssim).mean()
        row = table[method]
        assert float(row["S^I"]) == pytest.approx(sensitivity, abs=5e-5)
        assert float(row["CI 90% low"]) <= float(row["S^I"]) <= float(row["CI 90% high"])
        share = sensitive_images(ssim, 0.99).mean() * 100
        assert float(row["sensitive images %"]) == pytest.approx(share, abs=0.05)
        data_ssim = float(stored["data_similarity"].sel(metric="ssim").mean())
        assert float(row["SSIM permuted labels"]) == pytest.approx(data_ssim, abs=5e-5)
        assert row["test"] == ("pass" if sensitivity >= 0.01 else "fail")
    assert table["saliency"]["test"] == "pass" and table["integrated_gradients"]["test"] == "pass"
    assert table["sobel"]["test"] == "fail" and float(table["sobel"]["S^I"]) == 0.0
    for kind in randomization_spec.FIGURES:
        with Image.open(workdir / randomization_spec.figure(*MODEL, kind=kind)) as image:
            image.verify()
        pdf = workdir / randomization_spec.figure(*MODEL, suffix="pdf", kind=kind)
        assert pdf.read_bytes().startswith(b"%PDF")


def test_changing_a_threshold_reruns_only_the_summary(randomization_run, snakemake_run):
    workdir, _ = randomization_run
    changed = {**CONFIG, "randomization": {**CONFIG["randomization"], "ssim_threshold": 0.5}}
    done = snakemake_run(workdir, changed, "randomization")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stderr)
    assert set(counts) - {"total"} == {
        "randomization_summary",
        "randomization_report",
        "randomization",
    }
    summary = read_summary(workdir / randomization_spec.summary_path(*MODEL))
    assert summary.attrs["ssim_threshold"] == 0.5
    stored = read_store(workdir / randomization_spec.store_path(*MODEL, "saliency"))
    ssim = stored["similarity"].sel(mode="independent", metric="ssim").values
    expected = sensitive_images(ssim, 0.5).mean()
    assert float(summary["sensitive_share"].sel(attribution="saliency")) == expected
    assert np.isfinite(summary["sensitivity_low"].values).all()


def test_permuted_epochs_retrain_only_the_permuted_label_model(randomization_run, snakemake_run):
    """The permuted-label model's own epochs change its job and what reads it, nothing else."""
    workdir, _ = randomization_run
    changed = {**CONFIG, "randomization": {**CONFIG["randomization"], "permuted_epochs": 5}}
    done = snakemake_run(workdir, changed, "randomization", "--dry-run")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts["train_permuted_labels"] == 1
    assert counts["parameter_randomization"] == 3
    assert "train" not in counts and "attribute" not in counts


def test_dropping_a_method_reruns_no_other_method(randomization_run, snakemake_run):
    """Each method's job reads its own entry only: dropping one reruns only the summary."""
    workdir, _ = randomization_run
    chosen = {**CONFIG["randomization"], "methods": ["saliency", "sobel"]}
    done = snakemake_run(workdir, {**CONFIG, "randomization": chosen}, "randomization", "--dry-run")
    assert done.returncode == 0, done.stderr[-5000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts["randomization_summary"] == 1
    assert "parameter_randomization" not in counts and "train_permuted_labels" not in counts
    assert "train" not in counts and "attribute" not in counts
