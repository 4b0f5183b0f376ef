"""Runs killed with SIGKILL at several moments, then resumed as the README says: the rerun
stops on Snakemake's lock, `--unlock` releases it, the next rerun finishes, nothing stale or
broken is left, and every array and checkpoint equals those of an uninterrupted run.

Slow (a few minutes): `make test-faults` runs these; `make test` skips them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from saliencybench import paths, store
from saliencybench.testing import run_snakemake, snakemake_command, write_config
from saliencybench.verify import artifacts, stale_temporaries

pytestmark = pytest.mark.faults

CONFIG = {
    "seed": 0,
    "device": "cpu",
    "chance_margin": None,
    "datasets": {"digits": {"source": "digits", "options": {"max_train": 400, "max_test": 100}}},
    "models": {"small_cnn": {}},
    "recipes": {"standard": {"epochs": 4, "batch_size": 32, "lr": 0.05}},
    "methods": {
        "saliency": {"store_raw": True},
        "integrated_gradients": {"n_steps": 16, "store_raw": True},
        "smoothgrad": {"nt_samples": 8, "store_raw": True},
        "random": {},
    },
    "attribution": {"batch_size": 32},
    "experiments": [{"dataset": "digits", "model": "small_cnn", "evaluations": []}],
}
RUN = ("digits", "small_cnn", "standard", 0)


def _fingerprint(workdir: Path) -> dict[str, object]:
    """What must not change between an uninterrupted and a resumed run: the array hashes
    of every store and the bytes of every checkpoint."""
    found: dict[str, object] = {}
    for path in artifacts(workdir / paths.RESULTS):
        name = str(path.relative_to(workdir))
        if path.suffix == ".pt":
            found[name] = store.file_hash(path)
        elif path.suffix == ".zarr":
            found[name] = json.loads((path / "zarr.json").read_text())["attributes"][store.HASHES]
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, object]:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    done = run_snakemake(workdir, config=CONFIG)
    assert done.returncode == 0, done.stderr[-3000:]
    return _fingerprint(workdir)


def _train_started(workdir: Path) -> bool:
    return (workdir / paths.log_file("train", paths.model_stem(*RUN))).exists()


def _attribution_in_flight(workdir: Path) -> bool:
    stem = f"{paths.model_stem(*RUN)}/integrated_gradients"
    return (workdir / paths.log_file("attribute", stem)).exists()


def _store_write_begun(workdir: Path) -> bool:
    """A temporary sibling of an attribution store exists: the kill lands inside a write
    (or, when the write is quicker than the polling, just after one)."""
    folder = workdir / paths.RESULTS / "attributions"
    return folder.is_dir() and any(
        ".tmp-" in path.name or path.suffix == ".zarr" for path in folder.rglob("*")
    )


MOMENTS = {
    "while training": (_train_started, 2.0),
    "while attributing": (_attribution_in_flight, 1.0),
    "inside a store write": (_store_write_begun, 0.0),
}


def _kill_when(workdir: Path, condition, delay: float) -> None:
    """Start snakemake in its own session and SIGKILL it and its jobs once ``condition``
    holds (and ``delay`` seconds more)."""
    write_config(workdir, CONFIG)
    process = subprocess.Popen(
        snakemake_command(workdir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    deadline = time.monotonic() + 600
    try:
        while not condition(workdir):
            assert process.poll() is None, "the run finished before the moment to kill it"
            assert time.monotonic() < deadline, "the moment to kill never came"
            time.sleep(0.02)
        time.sleep(delay)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_killed_run_resumes_to_the_same_results(tmp_path, reference, moment):
    condition, delay = MOMENTS[moment]
    _kill_when(tmp_path, condition, delay)
    assert _fingerprint(tmp_path) != reference, "the kill came after the run had finished"

    locked = run_snakemake(tmp_path)
    assert locked.returncode != 0
    assert "LockException" in locked.stderr and "Directory cannot be locked" in locked.stderr

    unlocked = run_snakemake(tmp_path, "--unlock")
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    resumed = run_snakemake(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    assert stale_temporaries(tmp_path / paths.RESULTS) == []
    verified = run_snakemake(tmp_path, "verify")
    assert verified.returncode == 0, verified.stdout[-3000:]
    assert _fingerprint(tmp_path) == reference
