"""Benchmark of job start-up: the import time of every job adapter in a fresh interpreter.

Every Snakemake job is a fresh Python process, so what an adapter imports is paid once per
job. For each adapter in ``workflow_scripts/`` this runs its import lines (everything before
``snakemake = globals()...``) in a new interpreter, best of ``--repeats``, and reports the
seconds and whether torch was loaded. The page job also runs the code that imports lazily
(``method_context`` and every evaluation's summary reader), as the real job does. Summary,
table and page jobs should load no torch.

Usage: python benchmarks/startup.py [--repeats N] [ADAPTER ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow_scripts"

# What the page and summary jobs import after their top lines: the summary readers.
LAZY = {
    "report_page": (
        "import yaml\n"
        "from saliencybench import html_report\n"
        "from saliencybench.config import validate\n"
        "from saliencybench.evaluations import EVALUATIONS\n"
        "import importlib\n"
        "config = validate(yaml.safe_load(open('config.yaml')))\n"
        "html_report.method_context(config)\n"
        "for name in EVALUATIONS:\n"
        "    importlib.import_module(f'saliencybench.evaluations.{name}.summary')\n"
    ),
    "evaluation_summary": (
        "from saliencybench.evaluations import EVALUATIONS\n"
        "import importlib\n"
        "for name in EVALUATIONS:\n"
        "    importlib.import_module(f'saliencybench.evaluations.{name}.summary')\n"
    ),
}


def import_lines(script: Path) -> str:
    """The adapter's source up to the line that reads the injected ``snakemake`` object."""
    lines = []
    for line in script.read_text().splitlines():
        if line.startswith("snakemake ="):
            break
        lines.append(line)
    return "\n".join(lines)


def measure(code: str, repeats: int) -> tuple[float, bool]:
    """Best wall seconds of ``code`` in a fresh interpreter, and whether it loaded torch."""
    probe = (
        "import time, sys\n"
        "started = time.perf_counter()\n"
        f"exec(compile({code!r}, 'adapter', 'exec'))\n"
        "print(time.perf_counter() - started, 'torch' in sys.modules)\n"
    )
    best, torch_loaded = float("inf"), False
    env_path = str(ROOT / "src")
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
            check=True,
        )
        seconds, loaded = done.stdout.split()
        best = min(best, float(seconds))
        torch_loaded = loaded == "True"
    return best, torch_loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("adapters", nargs="*", help="adapter names (default: every adapter)")
    args = parser.parse_args()
    print(f"{'adapter':<28} {'import s':>9}  torch")
    rows = []
    for script in sorted(SCRIPTS.glob("*.py")):
        if args.adapters and script.stem not in args.adapters:
            continue
        code = import_lines(script) + "\n" + LAZY.get(script.stem, "")
        seconds, loaded = measure(code, args.repeats)
        rows.append((script.stem, seconds, loaded))
        print(f"{script.stem:<28} {seconds:9.2f}  {'yes' if loaded else 'no'}")
    light = [row for row in rows if not row[2]]
    heavy = [row for row in rows if row[2]]
    if light and heavy:
        light_mean = sum(row[1] for row in light) / len(light)
        heavy_mean = sum(row[1] for row in heavy) / len(heavy)
        print(
            f"mean start-up without torch {light_mean:.2f} s ({len(light)} adapters), with "
            f"torch {heavy_mean:.2f} s ({len(heavy)}): ratio {light_mean / heavy_mean:.2f}"
        )


if __name__ == "__main__":
    main()
