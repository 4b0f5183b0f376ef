"""End-to-end: snakemake on a tiny config in a scratch folder.

One run builds data, a model and three attribution stores; the rerun is a no-op; editing
one method's parameter reruns exactly that method's job; a bad config stops before any job.
"""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from saliencybench import paths, store
from saliencybench.testing import write_config

TINY_CONFIG = {
    "seed": 0,
    "device": "cpu",
    "datasets": {"digits": {"source": "digits", "options": {"max_train": 300, "max_test": 60}}},
    "models": {"small_cnn": {}},
    "recipes": {"standard": {"epochs": 3, "batch_size": 32, "lr": 0.05}},
    "methods": {
        "saliency": {},
        "integrated_gradients": {"n_steps": 8},
        "random": {},
    },
    "attribution": {"batch_size": 64},
    # no evaluations: the default target builds the stores and the report page only
    "experiments": [{"dataset": "digits", "model": "small_cnn", "evaluations": []}],
}


def _stores(workdir: Path) -> dict[str, Path]:
    return {
        method: workdir / paths.attribution_store("digits", "small_cnn", "standard", 0, method)
        for method in TINY_CONFIG["methods"]
    }


def _mtimes(workdir: Path) -> dict[str, float]:
    found = {}
    for path in (workdir / "results").rglob("*"):
        if path.name == "zarr.json" and path.parent.name.endswith(".zarr"):
            found[str(path.parent.relative_to(workdir))] = path.stat().st_mtime_ns
        elif path.suffix in (".pt", ".json") and "models" in path.parts:
            found[str(path.relative_to(workdir))] = path.stat().st_mtime_ns
    return found


@pytest.fixture(scope="module")
def finished_run(finished_snakemake):
    workdir, _ = finished_snakemake("workflow", TINY_CONFIG)
    return workdir


def test_run_writes_every_store(finished_run):
    workdir = finished_run
    data = store.read_dataset(workdir / paths.data_store("digits"))
    assert data["train"].images.shape == (300, 1, 8, 8)
    sidecar = yaml.safe_load(
        (workdir / paths.checkpoint_sidecar("digits", "small_cnn", "standard", 0)).read_text()
    )
    assert sidecar["data_hash"] == data.content_hash
    assert 0.0 <= sidecar["test_accuracy"] <= 1.0
    for method, path in _stores(workdir).items():
        attributions = store.read_attributions(path)
        assert attributions.attrs["method"] == method
        assert attributions.attrs["checkpoint_sha256"] == sidecar["checkpoint_sha256"]
        assert attributions.attrs["target_rule"] == "predicted"
        for split, count in (("train", 300), ("test", 60)):
            maps = xr.open_zarr(path, group=split, consolidated=False)["maps"]
            assert maps.shape == (count, 8, 8)
            assert np.isfinite(maps.values).all()
        assert (
            workdir / paths.log_file("attribute", f"digits/small_cnn/standard/seed0/{method}")
        ).read_text().count("images/s") == 2


def test_rerun_is_a_no_op(finished_run, snakemake_run):
    before = _mtimes(finished_run)
    done = snakemake_run(finished_run, None)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Nothing to be done" in done.stderr
    assert _mtimes(finished_run) == before


def _reversed_keys(value):
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def test_key_order_of_the_config_reruns_nothing(finished_run, snakemake_run):
    """Snakemake compares params by repr; a config written in another key order is the same."""
    before = _mtimes(finished_run)
    reordered = yaml.safe_dump(_reversed_keys(TINY_CONFIG), sort_keys=False)
    assert reordered != yaml.safe_dump(TINY_CONFIG, sort_keys=False)
    (finished_run / "config.yaml").write_text(reordered)
    try:
        done = snakemake_run(finished_run, None)
    finally:
        write_config(finished_run, TINY_CONFIG)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Nothing to be done" in done.stderr, done.stderr[-3000:]
    assert _mtimes(finished_run) == before


def test_parameter_change_reruns_only_that_method(finished_run, snakemake_run):
    workdir = finished_run
    before = _mtimes(workdir)
    old_maps = store.read_attributions(_stores(workdir)["integrated_gradients"])["test"].maps
    changed = {
        **TINY_CONFIG,
        "methods": {**TINY_CONFIG["methods"], "integrated_gradients": {"n_steps": 4}},
    }
    try:
        done = snakemake_run(workdir, changed)
    finally:
        write_config(workdir, TINY_CONFIG)
    assert done.returncode == 0, done.stderr[-3000:]
    after = _mtimes(workdir)
    rerun = sorted(key for key in before if after[key] != before[key])
    assert rerun == [
        paths.attribution_store("digits", "small_cnn", "standard", 0, "integrated_gradients")
    ]
    new_maps = store.read_attributions(_stores(workdir)["integrated_gradients"])["test"].maps
    assert not np.array_equal(old_maps, new_maps)


def test_bad_config_stops_before_any_job(tmp_path, snakemake_run):
    bad = {**TINY_CONFIG, "methods": {"integrated_gradient": {}}}
    done = snakemake_run(tmp_path, bad)
    assert done.returncode != 0
    assert "Invalid config: config key 'methods.integrated_gradient.method'" in done.stderr
    assert not (tmp_path / "results").exists()
