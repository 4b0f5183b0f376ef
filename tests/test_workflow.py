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
from saliencybench.testing import job_counts, write_config

TINY_CONFIG = {
    "seed": 0,
    "device": "cpu",
    # a few epochs on a few hundred digits end near chance (10-20 %): the pipeline is
    # under test here, not the model, so the chance gate is off
    "chance_margin": None,
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


def test_verify_passes_a_finished_run_and_names_what_is_broken(
    finished_run, snakemake_run, tmp_path
):
    """`snakemake verify` reads every result as its consumers do; on a copy, a deleted chunk
    of an attribution store and an edited checkpoint are listed with the rules that rebuild
    them, and the exit status says so."""
    import shutil

    done = snakemake_run(finished_run, None, "verify")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "0 broken" in done.stdout + done.stderr

    copy = tmp_path / "copy"
    shutil.copytree(finished_run / "results", copy / "results")
    shutil.copy(finished_run / "config.yaml", copy / "config.yaml")
    maps = copy / _stores(Path("."))["saliency"] / "test" / "maps"
    next(p for p in sorted(maps.rglob("*")) if p.is_file() and p.name != "zarr.json").unlink()
    checkpoint = copy / paths.checkpoint("digits", "small_cnn", "standard", 0)
    checkpoint.write_bytes(checkpoint.read_bytes() + b"\0")
    stale = copy / "results" / "data" / ".digits.zarr.tmp-0123abcd"
    stale.mkdir()
    done = snakemake_run(copy, None, "verify")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "2 broken" in output
    assert "saliency.zarr: array 'test/maps' differs from what was written" in output
    assert "[rule attribute]" in output and "[rule train]" in output
    assert "seed0.pt: SHA-256 differs" in output
    assert "1 stale temporaries" in output and ".digits.zarr.tmp-0123abcd" in output


def test_a_model_not_clearly_above_chance_stops_the_job_that_explains_it(tmp_path, snakemake_run):
    """The gate in the workflow: a model below chance + chance_margin fails the job that
    explains it with one line, in the job's log and on the terminal, and no traceback."""
    strict = {**TINY_CONFIG, "chance_margin": 0.5, "methods": {"saliency": {}}}
    target = paths.attribution_store("digits", "small_cnn", "standard", 0, "saliency")
    done = snakemake_run(tmp_path, strict, target)
    assert done.returncode != 0
    sidecar = yaml.safe_load(
        (tmp_path / paths.checkpoint_sidecar("digits", "small_cnn", "standard", 0)).read_text()
    )
    assert sidecar["test_accuracy"] < sidecar["chance_accuracy"] + 0.5
    log = (
        tmp_path / paths.log_file("attribute", "digits/small_cnn/standard/seed0/saliency")
    ).read_text()
    assert "job failed: model small_cnn (dataset digits, recipe standard, seed 0)" in log
    assert "not clearly above chance" in log and "(config key chance_margin: 0.5)" in log
    assert "Traceback" not in log
    assert "ModelNotLearnedError: model small_cnn (dataset digits" in done.stderr
    assert not (tmp_path / target).exists()


def test_changing_the_chance_margin_reruns_nothing(finished_run, snakemake_run):
    """The margin decides whether a job may run, not what it writes: only the page, which
    shows the whole config, is redrawn."""
    # up to date first: earlier tests may leave a job whose params they changed and restored
    assert snakemake_run(finished_run, TINY_CONFIG).returncode == 0
    try:
        done = snakemake_run(finished_run, {**TINY_CONFIG, "chance_margin": 0.05}, "--dry-run")
    finally:
        write_config(finished_run, TINY_CONFIG)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts == {"report": 1, "all": 1, "total": 2}, done.stdout[-3000:]
