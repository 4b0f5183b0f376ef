"""Published numbers beside measured ones: a paper's reference file against a run's summaries.

A reference file (``configs/papers/references/<name>.yaml``, schema
``schemas/reference.schema.yaml``) lists a paper's table cells, each with a *measure*: where
the same number lives in the combined summaries ``results/summary/{evaluation}.nc`` (the
variable, the coordinates to select, an interval). Its qualitative claims are comparisons
of two measures, or of a measure with a number, optionally for each of several methods. A
preset names its reference with the config key ``reference``; the ``reproduction`` rule
writes ``results/tables/reproduction_{name}.csv`` and the page shows it.

Torch-free: numpy, xarray, scipy and PyYAML.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

log = logging.getLogger("saliencybench")
ROOT = Path(__file__).resolve().parents[2]
REFERENCES = ROOT / "configs" / "papers" / "references"
SCHEMA_PATH = ROOT / "schemas" / "reference.schema.yaml"
EACH = "{each}"
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
COLUMNS = (
    "kind",
    "source",
    "what",
    "units",
    "published",
    "measured",
    "interval",
    "difference",
    "verdict",
)


class ReferenceError(ValueError):
    """A reference file that is missing or does not follow its schema; one line."""


def reference_path(name: str) -> Path:
    """The file of reference ``name``."""
    return REFERENCES / f"{name}.yaml"


def reference_names() -> list[str]:
    return sorted(path.stem for path in REFERENCES.glob("*.yaml"))


def load_reference(name_or_path: str | Path) -> dict[str, Any]:
    """Read and validate a reference file (by name, or by path).

    Raises:
        ReferenceError: a missing file, a YAML error or a schema violation, naming the file
            and the key.
    """
    import jsonschema

    path = Path(name_or_path)
    if path.suffix != ".yaml":
        path = reference_path(str(name_or_path))
    if not path.is_file():
        known = ", ".join(reference_names()) or "(none)"
        raise ReferenceError(f"{path}: no such reference file; references: {known}")
    try:
        reference = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ReferenceError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(reference),
        key=lambda e: len(e.absolute_path),
    )
    if errors:
        error = errors[-1]
        key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        raise ReferenceError(f"{path}: key '{key}': {error.message}")
    return reference


def evaluations_of(reference: Mapping[str, Any]) -> list[str]:
    """The evaluations whose summaries the reference reads, in order of first use."""
    names: list[str] = []
    for cell in reference["cells"]:
        names.append(cell["measure"]["evaluation"])
    for claim in reference["claims"]:
        for side in ("left", "right"):
            if isinstance(claim[side], Mapping):
                names.append(claim[side]["evaluation"])
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Measured:
    """A number of the run with its interval (NaN where the run has none)."""

    value: float
    interval: float = math.nan

    @property
    def known(self) -> bool:
        return math.isfinite(self.value)


NOT_MEASURED = Measured(math.nan)


def _substitute(select: Mapping[str, Any], each: str | float | None) -> dict[str, Any]:
    if each is None:
        return dict(select)
    return {key: each if value == EACH else value for key, value in select.items()}


def measure(
    summaries: Mapping[str, Any], spec: Mapping[str, Any], each: str | float | None = None
) -> Measured:
    """The number ``spec`` (a reference measure) names in ``summaries``.

    Args:
        summaries: the combined summaries by evaluation name (xarray Datasets).
        spec: ``evaluation``, ``variable``, ``select``, optional ``interval`` and ``scale``.
        each: the value that ``"{each}"`` in ``select`` stands for.

    Returns:
        The mean over every dimension left after the selection (NaN values left out), and
        its interval; :data:`NOT_MEASURED` when the run has no such evaluation, variable or
        coordinate.
    """
    summary = summaries.get(spec["evaluation"])
    if summary is None or spec["variable"] not in summary:
        return NOT_MEASURED
    select = _substitute(spec["select"], each)
    try:
        selected = summary[spec["variable"]].sel(select)
    except (KeyError, ValueError):
        return NOT_MEASURED
    values = np.asarray(selected.values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if not len(values):
        return NOT_MEASURED
    scale = float(spec.get("scale", 1.0))
    interval = math.nan
    name = spec.get("interval")
    if name == "std":
        interval = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    elif name is not None and name in summary:
        try:
            half = np.asarray(summary[name].sel(select).values, dtype=np.float64).ravel()
        except (KeyError, ValueError):
            half = np.array([])
        half = half[np.isfinite(half)]
        interval = float(half.mean()) if len(half) else math.nan
    return Measured(float(values.mean()) * scale, interval * abs(scale))


# ----------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    """One line of the reproduction table."""

    kind: str  # cell, claim or ranking
    source: str
    what: str
    units: str = ""
    published: float | str = ""
    measured: float | str = ""
    interval: float | str = ""
    difference: float | str = ""
    verdict: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in COLUMNS}


def _number(value: float) -> float | str:
    return "" if not math.isfinite(value) else value


def cell_rows(reference: Mapping[str, Any], summaries: Mapping[str, Any]) -> list[Row]:
    rows = []
    for cell in reference["cells"]:
        measured = measure(summaries, cell["measure"])
        rows.append(
            Row(
                "cell",
                cell["source"],
                cell["what"],
                cell["units"],
                cell["value"],
                _number(measured.value),
                _number(measured.interval),
                _number(measured.value - cell["value"]),
                "measured" if measured.known else "not measured",
            )
        )
    return rows


def check_claim(claim: Mapping[str, Any], summaries: Mapping[str, Any]) -> tuple[str, str]:
    """Whether the run reproduces a claim.

    Returns:
        ``(verdict, detail)``: verdict ``reproduced``, ``not reproduced`` (naming the first
        case that fails) or ``not measured`` (a number the run does not have); a verdict
        on two numbers closer than their intervals (combined in quadrature) says so.
    """
    compare = OPERATORS[claim["op"]]
    details = []
    within = False
    for each in claim.get("for_each") or [None]:
        left = measure(summaries, claim["left"], each)
        right_spec = claim["right"]
        right = (
            Measured(float(right_spec))
            if isinstance(right_spec, (int, float))
            else measure(summaries, right_spec, each)
        )
        label = f"{each}: " if each is not None else ""
        if not (left.known and right.known):
            return "not measured", f"{label}no value in the run"
        details.append(f"{label}{left.value:.4g} {claim['op']} {right.value:.4g}")
        # two numbers closer than their intervals allow the claim either way
        spread = math.hypot(*(m.interval for m in (left, right) if math.isfinite(m.interval)))
        close = spread > 0 and abs(left.value - right.value) <= spread
        within |= close
        if not compare(left.value, right.value):
            suffix = " (within the intervals)" if close else ""
            return "not reproduced" + suffix, details[-1]
    return "reproduced" + (" (within the intervals)" if within else ""), "; ".join(details)


def claim_rows(reference: Mapping[str, Any], summaries: Mapping[str, Any]) -> list[Row]:
    rows = []
    for claim in reference["claims"]:
        verdict, detail = check_claim(claim, summaries)
        rows.append(Row("claim", claim["source"], claim["text"], measured=detail, verdict=verdict))
    return rows


def ranking_rows(cells: Sequence[Mapping[str, Any]], rows: Sequence[Row]) -> list[Row]:
    """Kendall tau between the published and measured values of each group of cells."""
    from scipy.stats import kendalltau

    groups: dict[str, list[tuple[float, float]]] = {}
    sources: dict[str, str] = {}
    for cell, row in zip(cells, rows, strict=True):
        if "group" not in cell:
            continue
        sources.setdefault(cell["group"], cell["source"])
        pairs = groups.setdefault(cell["group"], [])
        if isinstance(row.measured, float):
            pairs.append((cell["value"], row.measured))
    out = []
    for group, pairs in groups.items():
        if len(pairs) < 2:
            out.append(Row("ranking", sources[group], group, "Kendall tau", verdict="not measured"))
            continue
        published, measured = zip(*pairs, strict=True)
        tau = kendalltau(published, measured).statistic
        out.append(
            Row(
                "ranking",
                sources[group],
                f"{group} ({len(pairs)} methods)",
                "Kendall tau",
                1.0,
                _number(float(tau)),
                verdict="same order" if math.isclose(tau, 1.0) else "measured",
            )
        )
    return out


def reproduction_table(reference: Mapping[str, Any], summaries: Mapping[str, Any]) -> list[Row]:
    """Every cell, ranking and claim of ``reference`` against ``summaries``."""
    cells = cell_rows(reference, summaries)
    return [
        *cells,
        *ranking_rows(reference["cells"], cells),
        *claim_rows(reference, summaries),
    ]


def write_reproduction(
    reference_file: str | Path, summary_paths: Mapping[str, str | Path], output: str | Path
) -> list[Row]:
    """The ``reproduction`` job: read the reference and the summaries, write the CSV."""
    from saliencybench.plotting import write_csv
    from saliencybench.summaries import read_combined

    reference = load_reference(reference_file)
    summaries = {name: read_combined(path, name) for name, path in summary_paths.items()}
    rows = reproduction_table(reference, summaries)
    write_csv([row.as_dict() for row in rows], output)
    claims = [row for row in rows if row.kind == "claim"]
    log.info(
        "%s: %d of %d cells measured; %d of %d claims reproduced",
        reference["paper"],
        sum(row.verdict == "measured" for row in rows if row.kind == "cell"),
        len(reference["cells"]),
        sum(row.verdict == "reproduced" for row in claims),
        len(claims),
    )
    return rows


def describe_tables(tables: Sequence[str | Path]) -> str:
    """A plain-text digest of reproduction tables: per table, the cells measured, the
    rank agreements and every claim with its verdict."""
    import csv

    lines = []
    for table in tables:
        with open(table, newline="") as handle:
            rows = list(csv.DictReader(handle))
        cells = [row for row in rows if row["kind"] == "cell"]
        measured = sum(row["verdict"] == "measured" for row in cells)
        lines.append(f"{table}: {measured} of {len(cells)} published cells measured")
        for row in rows:
            if row["kind"] == "ranking" and row["measured"]:
                lines.append(f"  Kendall tau {float(row['measured']):+.2f}  {row['what']}")
        for row in rows:
            if row["kind"] == "claim":
                lines.append(f"  {row['verdict']:<37} {row['what']}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(describe_tables(sys.argv[1:]))
