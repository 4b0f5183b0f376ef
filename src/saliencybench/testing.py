"""The harness that runs the workflow on a config in a scratch folder, for the tests and the
benchmarks.

Development only: it needs the source checkout (the Snakefile at ``ROOT``), not an installed
package. It imports no torch, so a test or a benchmark pays nothing for it.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "Snakefile"
TIMEOUT_S = 900
CONFIG_NAME = "config.yaml"


def write_config(workdir: Path, config: dict) -> None:
    """Write ``config`` as ``workdir/config.yaml``, the file `run_snakemake` reads by default."""
    (workdir / CONFIG_NAME).write_text(yaml.safe_dump(config))


def snakemake_command(
    workdir: Path, *extra: str, configfile: Path | str | None = CONFIG_NAME, cores: int | str = 2
) -> list[str]:
    """The `python -m snakemake` command line for ``workdir``.

    ``configfile`` is relative to ``workdir`` unless absolute; None leaves `--configfile` to
    ``extra`` (or to the Snakefile's default).
    """
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
    ]
    if configfile is not None:
        command += ["--configfile", str(Path(workdir) / configfile)]
    return [*command, "--cores", str(cores), *extra]


def run_snakemake(
    workdir: Path,
    *extra: str,
    config: dict | None = None,
    configfile: Path | str | None = CONFIG_NAME,
    cores: int | str = 2,
    timeout: float | None = TIMEOUT_S,
    ignore_warnings: bool = True,
) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` (after writing ``config`` there, when given); capture its
    output as text and return it whatever the exit status."""
    if config is not None:
        write_config(workdir, config)
    command = snakemake_command(workdir, *extra, configfile=configfile, cores=cores)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"} if ignore_warnings else None
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def timed_snakemake(
    workdir: Path, configfile: Path, cores: int | str, *targets: str
) -> tuple[float, str]:
    """For the benchmarks: run snakemake on ``targets`` (default: rule all) with no time limit;
    return wall seconds and stderr, or exit with the tail of stderr where it fails."""
    started = time.perf_counter()
    done = run_snakemake(
        workdir, *targets, configfile=configfile, cores=cores, timeout=None, ignore_warnings=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"snakemake failed:\n{done.stderr[-4000:]}")
    return seconds, done.stderr


def benchmark_arguments(description: str) -> argparse.Namespace:
    """The command line of the workflow benchmarks: --config, --cores and --keep."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    return parser.parse_args()


@contextmanager
def scratch_workdir(keep: Path | None, prefix: str) -> Iterator[Path]:
    """``keep`` (created if missing, left in place), or a new temporary folder removed on exit."""
    workdir = keep or Path(tempfile.mkdtemp(prefix=prefix))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        yield workdir
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints before running: rule -> count."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {
        match[1]: int(match[2]) for match in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV table with a header line."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
