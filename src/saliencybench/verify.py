"""Check every stored result against what was written: ``snakemake verify``.

Each Zarr store and NetCDF summary is read as its consumers read it, array hashes included;
each checkpoint is compared with the SHA-256 its sidecar records; each JSON file must parse.
The broken ones are listed with the rule that rebuilds each. Torch-free: it runs in the
main Snakemake process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from saliencybench import store

log = logging.getLogger("saliencybench")

#: What a rule finder returns for a path no rule produces.
NO_RULE = "(no rule: written by hand or by another version)"


@dataclass(frozen=True)
class Finding:
    """One result that did not pass, or a stale temporary left by a killed write."""

    path: Path
    problem: str
    rule: str


def _store_format(path: Path) -> str | None:
    """The ``format`` attribute of a saliencybench Zarr store at ``path``, else None."""
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    found = meta.get("attributes", {}).get("format") if isinstance(meta, dict) else None
    return found if isinstance(found, str) and found.startswith("saliencybench.") else None


def artifacts(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Every result under ``root``: Zarr stores (not descended into), ``.nc``, ``.pt`` and
    ``.json`` files. Stale temporaries are skipped (see :func:`stale_temporaries`)."""
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        kept = []
        for name in sorted(subfolders):
            if _is_temporary(name):
                continue
            if name.endswith(".zarr") or _store_format(here / name):
                yield here / name
            else:
                kept.append(name)
        subfolders[:] = kept
        for name in sorted(files):
            if not _is_temporary(name) and name.endswith((".nc", ".pt", ".json")):
                yield here / name


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and (".tmp-" in name or ".old-" in name)


def stale_temporaries(root: str | os.PathLike[str]) -> list[Path]:
    """Temporary siblings (``.NAME.tmp-*``, ``.NAME.old-*``) that killed writes left."""
    found = []
    for folder, subfolders, files in os.walk(root):
        for name in subfolders + files:
            if _is_temporary(name):
                found.append(Path(folder) / name)
        subfolders[:] = [name for name in subfolders if not _is_temporary(name)]
    return sorted(found)


def check(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with one result, in one line; None when it passes."""
    path = Path(path)
    try:
        if path.suffix == ".pt":
            return _check_checkpoint(path)
        if path.suffix == ".json":
            store.read_json(path, "JSON file")
            return None
        if path.suffix == ".nc":
            _read_netcdf(path)
            return None
        found = _store_format(path)
        if found is None:
            return "not a readable saliencybench Zarr store (no format attribute)"
        if found == store.DATASET_FORMAT:
            store.read_dataset(path)
        elif found == store.ATTRIBUTION_FORMAT:
            store.read_attributions(path)
        else:
            store.read_xarray(path, found, "store")
    except store.StoreError as error:
        return _without_path(str(error), path)
    except (OSError, ValueError) as error:
        return f"unreadable ({type(error).__name__}: {error})"
    return None


def _without_path(message: str, path: Path) -> str:
    return message.removeprefix(f"{path}: ")


def _read_netcdf(path: Path) -> None:
    import h5netcdf

    try:
        with h5netcdf.File(path, "r") as handle:
            found = handle.attrs.get("format")
    except OSError as error:
        raise store.StoreError(f"{path}: unreadable NetCDF file ({error})") from None
    store.read_netcdf(path, str(found), "summary")


def _check_checkpoint(path: Path) -> str | None:
    sidecar = path.with_suffix(".json")
    try:
        expected = store.read_json(sidecar, "checkpoint sidecar").get("checkpoint_sha256")
    except store.StoreError:
        return f"its sidecar {sidecar.name} is missing or damaged"
    if expected and store.file_hash(path) != expected:
        return f"SHA-256 differs from the one its sidecar {sidecar.name} records"
    return None


def rule_finder(output_patterns: Mapping[str, list[str]]) -> Callable[[str], str | None]:
    """``rule_of(path)``: the first rule with an output pattern (a regular expression, as
    Snakemake compiles them) that ``path`` matches, or None."""
    compiled = [
        (rule, re.compile(pattern))
        for rule, patterns in output_patterns.items()
        for pattern in patterns
    ]

    def rule_of(path: str) -> str | None:
        return next((rule for rule, regex in compiled if regex.match(path)), None)

    return rule_of


def report(
    root: str | os.PathLike[str], output_patterns: Mapping[str, list[str]]
) -> tuple[str, list[Finding]]:
    """Verify ``root``, log a line per result, and return the verdict and the broken ones."""
    started = time.perf_counter()
    findings, checked = verify(root, rule_finder(output_patterns), log.info)
    verdict = render(findings, checked, stale_temporaries(root))
    log.info("%s (%.1fs)", verdict, time.perf_counter() - started)
    return verdict, findings


def verify(
    root: str | os.PathLike[str],
    rule_of: Callable[[str], str | None],
    progress: Callable[[str], None] = print,
) -> tuple[list[Finding], int]:
    """Check every result under ``root``.

    Args:
        rule_of: the name of the rule whose output a path is (relative to the working
            directory, as the rules name them), or None.
        progress: called with a line per result checked.

    Returns:
        The results that failed, each with the rule that rebuilds it, and how many were
        checked.
    """
    findings, checked = [], 0
    for path in artifacts(root):
        checked += 1
        problem = check(path)
        if problem is not None:
            findings.append(Finding(path, problem, rule_of(str(path)) or NO_RULE))
        progress(f"{'BROKEN' if problem else 'ok':6} {path}")
    return findings, checked


def render(findings: list[Finding], checked: int, temporaries: list[Path]) -> str:
    """The verdict for the terminal: totals, each broken result with its rule, what to do."""
    lines = [f"{checked} results checked: {len(findings)} broken"]
    for finding in findings:
        lines.append(f"{finding.path}: {finding.problem} [rule {finding.rule}]")
    if findings:
        lines.append(
            "Delete the broken results and rerun snakemake: it rebuilds them with the rules "
            "named, and everything that depends on them."
        )
    if temporaries:
        lines.append(
            f"{len(temporaries)} stale temporaries of killed writes (each is removed when its "
            "result is next written; `make clean` removes them with all results): "
            + ", ".join(str(path) for path in temporaries[:5])
            + (" ..." if len(temporaries) > 5 else "")
        )
    return "\n".join(lines)
