"""Per-rule totals of a finished run, from the files of Snakemake's ``benchmark:`` directive.

Every model job writes ``benchmarks/rules/{rule}/...tsv`` (wall seconds, CPU seconds, peak
memory). This prints one row per rule: jobs, summed wall time, the longest job, summed CPU
time and the largest peak resident memory, then the totals. Jobs without a ``benchmark:``
file (summaries, tables, the page) are not counted.

Usage: python benchmarks/rule_times.py [FOLDER] [--since EPOCH_SECONDS]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def rule_totals(folder: Path, since: float = 0.0) -> dict[str, dict[str, float]]:
    """``{rule: {jobs, wall, longest, cpu, max_rss_mb}}`` over the files written after
    ``since`` (seconds since the epoch)."""
    totals: dict[str, dict[str, float]] = defaultdict(
        lambda: {"jobs": 0, "wall": 0.0, "longest": 0.0, "cpu": 0.0, "max_rss_mb": 0.0}
    )
    for path in sorted(folder.rglob("*.tsv")):
        if path.stat().st_mtime < since:
            continue
        rule = path.relative_to(folder).parts[0]
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        for row in rows:
            entry = totals[rule]
            wall = float(row["s"])
            entry["jobs"] += 1
            entry["wall"] += wall
            entry["longest"] = max(entry["longest"], wall)
            entry["cpu"] += _number(row.get("cpu_time"))
            entry["max_rss_mb"] = max(entry["max_rss_mb"], _number(row.get("max_rss")))
    return dict(totals)


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):  # "-" where the job ended before a measurement
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("benchmarks/rules"))
    parser.add_argument("--since", type=float, default=0.0)
    args = parser.parse_args()
    totals = rule_totals(args.folder, args.since)
    if not totals:
        raise SystemExit(f"no benchmark files under {args.folder}")
    header = ("jobs", "wall s", "longest s", "cpu s", "max RSS MB")
    print(f"{'rule':26s} " + " ".join(f"{name:>{len(name) + 2}s}" for name in header))
    for rule, entry in sorted(totals.items(), key=lambda item: -item[1]["wall"]):
        print(
            f"{rule:26s} {entry['jobs']:6.0f} {entry['wall']:8.1f} {entry['longest']:11.1f} "
            f"{entry['cpu']:7.1f} {entry['max_rss_mb']:12.0f}"
        )
    jobs = sum(entry["jobs"] for entry in totals.values())
    wall = sum(entry["wall"] for entry in totals.values())
    cpu = sum(entry["cpu"] for entry in totals.values())
    print(f"{'total':26s} {jobs:6.0f} {wall:8.1f} {'':11s} {cpu:7.1f}")


if __name__ == "__main__":
    main()
