"""Fixtures of the workflow tests: snakemake on a tiny config in a scratch folder."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from saliencybench.testing import run_snakemake

SnakemakeRun = Callable[..., subprocess.CompletedProcess]
FinishedRun = Callable[..., tuple[Path, subprocess.CompletedProcess]]


@pytest.fixture(scope="session")
def snakemake_run() -> SnakemakeRun:
    """``snakemake_run(workdir, config, *targets, **options)``: write ``config`` (unless None)
    into ``workdir`` and run snakemake there; returns the CompletedProcess and asserts nothing.
    ``options`` go to `saliencybench.testing.run_snakemake`."""

    def run(workdir: Path, config: dict | None, *targets: str, **options):
        return run_snakemake(workdir, *targets, config=config, **options)

    return run


@pytest.fixture(scope="session")
def finished_snakemake(tmp_path_factory, snakemake_run) -> FinishedRun:
    """``finished_snakemake(name, config, *targets)``: a run in a new scratch folder that must
    succeed; returns the folder and the CompletedProcess. For the module-scoped fixtures."""

    def run(name: str, config: dict, *targets: str) -> tuple[Path, subprocess.CompletedProcess]:
        workdir = tmp_path_factory.mktemp(name)
        done = snakemake_run(workdir, config, *targets)
        assert done.returncode == 0, done.stderr[-5000:]
        return workdir, done

    return run


def pytest_addoption(parser):
    parser.addoption(
        "--run-faults",
        action="store_true",
        help="run the slow kill-and-resume tests (marker faults; `make test-faults`)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-faults"):
        return
    skip = pytest.mark.skip(reason="kill-and-resume test: `make test-faults` runs it")
    for item in items:
        if "faults" in item.keywords:
            item.add_marker(skip)
