"""Benchmark of the backbone: the default experiment from an empty results folder.

Runs `snakemake attributions` (datasets, models and attribution stores, no evaluations) on
the default config in a scratch working directory (your own results/ are not touched) and
prints: wall time of the full run, wall time of the no-op rerun, the
number of jobs, and attribution throughput per method (images/s, from the job logs), each
against its target as a ratio (below 1 is within target).

Usage: python benchmarks/backbone.py [--config config.yaml] [--cores N] [--keep DIR]
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from saliencybench.testing import (  # noqa: E402
    benchmark_arguments,
    scratch_workdir,
    timed_snakemake,
)

FULL_RUN_TARGET_S = 300.0
NOOP_TARGET_S = 5.0
THROUGHPUT = re.compile(r": (\w+) on (\w+) split: (\d+) images in ([\d.]+)s")


def main() -> None:
    args = benchmark_arguments(__doc__.splitlines()[0])
    with scratch_workdir(args.keep, "saliencybench-bench-") as workdir:
        full, log = timed_snakemake(workdir, args.config.resolve(), args.cores, "attributions")
        noop, noop_log = timed_snakemake(workdir, args.config.resolve(), args.cores, "attributions")
        jobs = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
        total_jobs = int(jobs[-1][1]) if jobs else -1
        print(
            f"full run          {full:8.1f} s   ratio to {FULL_RUN_TARGET_S:.0f} s target: "
            f"{full / FULL_RUN_TARGET_S:.2f}"
        )
        print(
            f"no-op rerun       {noop:8.1f} s   ratio to {NOOP_TARGET_S:.0f} s target: "
            f"{noop / NOOP_TARGET_S:.2f}"
        )
        print(f"jobs              {total_jobs:8d}")
        assert "Nothing to be done" in noop_log, "the rerun was not a no-op"
        throughput: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for path in sorted((workdir / "logs" / "attribute").rglob("*.log")):
            for method, _split, images, seconds in THROUGHPUT.findall(path.read_text()):
                throughput[method].append((int(images), float(seconds)))
        if throughput:
            slowest = max(sum(s for _, s in v) / sum(n for n, _ in v) for v in throughput.values())
            print("attribution throughput (all datasets and splits of the config):")
            for method, runs in sorted(throughput.items()):
                images = sum(n for n, _ in runs)
                seconds = sum(s for _, s in runs)
                per_image = seconds / images
                print(
                    f"  {method:22s} {images / seconds:10.1f} images/s   "
                    f"ratio to slowest: {per_image / slowest:.3f}"
                )


if __name__ == "__main__":
    main()
