"""What the array hashes of the stores cost a finished run, as a share of its job time.

Every store is hashed once when written and once by every job that reads it. This script
takes a folder where snakemake has run (its `results/` and `.snakemake/metadata/`), times
the hashing of each store as `snakemake verify` does it, counts the jobs that read the store
from Snakemake's metadata, and prints

    hashing = sum over stores of hash time x (1 write + reads)

next to the summed wall time of the jobs that made the results. "Upper bound" also counts
the reopening of xarray and NetCDF stores after writing (hashes are taken as a reader sees
the arrays) and the reading that `verify` does around the hashing.

    python benchmarks/hashing.py [WORKDIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections import defaultdict
from pathlib import Path

from saliencybench import paths, store
from saliencybench import verify as verify_module


def _jobs(workdir: Path) -> list[dict]:
    """One record per job of Snakemake's metadata: rule, inputs and wall seconds."""
    folder = workdir / ".snakemake" / "metadata"
    if not folder.is_dir():
        raise SystemExit(f"{folder}: no Snakemake metadata; run snakemake in {workdir} first")
    jobs: dict[object, dict] = {}
    for entry in folder.iterdir():
        try:
            record = json.loads(entry.read_text())
        except (OSError, ValueError):
            continue
        output = base64.b64decode(entry.name.replace("@", "/") + "==").decode(errors="replace")
        key = (record.get("job_hash"), record.get("starttime"), record.get("rule"))
        job = jobs.setdefault(
            key,
            {
                "rule": record.get("rule"),
                "inputs": set(record.get("input") or []),
                "seconds": (record.get("endtime") or 0) - (record.get("starttime") or 0),
                "outputs": set(),
            },
        )
        job["outputs"].add(output)
    return list(jobs.values())


class _Timer:
    """Wraps the store's hash functions and sums the seconds spent in them."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._digest, self._content = store.array_digest, store.content_hash

    def __enter__(self) -> _Timer:
        def timed(function):
            def wrapper(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - started

            return wrapper

        store.array_digest = timed(self._digest)
        store.content_hash = timed(self._content)
        return self

    def __exit__(self, *exc) -> None:
        store.array_digest, store.content_hash = self._digest, self._content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", default=".", type=Path)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings per store")
    args = parser.parse_args()
    os.chdir(args.workdir)
    jobs = _jobs(Path("."))
    job_seconds = sum(job["seconds"] for job in jobs)
    reads: dict[str, int] = defaultdict(int)
    for job in jobs:
        for name in job["inputs"]:
            reads[name] += 1

    rows, hashing, upper = [], 0.0, 0.0
    for path in verify_module.artifacts(paths.RESULTS):
        if path.suffix in (".json", ".pt"):
            continue  # checkpoints were hashed before stores carried hashes; JSON is not
        best_hash, best_check = float("inf"), float("inf")
        for _ in range(args.repeats):
            with _Timer() as timer:
                started = time.perf_counter()
                problem = verify_module.check(path)
                checked = time.perf_counter() - started
            if problem:
                raise SystemExit(f"{path}: {problem}; run `snakemake verify` first")
            best_hash, best_check = min(best_hash, timer.seconds), min(best_check, checked)
        count = 1 + reads.get(str(path), 0)
        reopen = best_check if path.suffix == ".nc" or _is_xarray(path) else 0.0
        hashing += count * best_hash
        upper += count * best_hash + reopen + best_check
        rows.append((path, count - 1, best_hash))

    rows.sort(key=lambda row: -row[2] * (row[1] + 1))
    print(f"{len(rows)} stores, {len(jobs)} jobs, {job_seconds:.1f} s of job wall time")
    print(f"{'hash s':>8} {'reads':>5}  store (the ten costliest)")
    for path, count, seconds in rows[:10]:
        print(f"{seconds:8.4f} {count:5d}  {path}")
    print(f"hashing: {hashing:.2f} s = {100 * hashing / job_seconds:.2f} % of job time")
    print(f"upper bound: {upper:.2f} s = {100 * upper / job_seconds:.2f} % of job time")


def _is_xarray(path: Path) -> bool:
    found = verify_module._store_format(path)
    return found not in (None, store.DATASET_FORMAT, store.ATTRIBUTION_FORMAT)


if __name__ == "__main__":
    main()
