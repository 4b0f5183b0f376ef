"""Logging for workflow jobs: everything a job prints goes to its Snakemake log file."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def job_log(path: str | os.PathLike[str] | None, threads: int | None = None) -> Iterator[None]:
    """Send logging, stderr (tqdm progress bars) and stdout of a job to ``path``.

    Args:
        path: the job's log file; None logs to stderr only.
        threads: the threads Snakemake granted the job: torch's intra-op pool and every
            BLAS and OpenMP pool are held to them (:func:`_thread_limits`).
    """
    limits = _thread_limits(threads) if threads else contextlib.nullcontext()
    handle = open(path, "w", buffering=1) if path else None  # noqa: SIM115
    stream = handle or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    failure = None
    try:
        with limits, contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
            yield
    except Exception as error:
        if not is_expected_failure(error):
            logging.getLogger("saliencybench").exception("job failed")
            raise
        # One of the package's own errors: its message is the whole story (a bad input,
        # a damaged store), so the log and the terminal get that line and no traceback.
        logging.getLogger("saliencybench").error("job failed: %s", error)
        failure = f"{type(error).__name__}: {error}"
    finally:
        root.removeHandler(handler)
        if handle:
            handle.close()
    if failure is not None:
        print(failure, file=sys.stderr)
        raise SystemExit(1)


@contextlib.contextmanager
def _thread_limits(threads: int) -> Iterator[None]:
    """Hold every thread pool of the job to the threads Snakemake granted it.

    The adapters import numpy and torch before the job starts, and both size their pools to
    every core when loaded: many jobs side by side (one per core on a large machine) would
    each run a pool of every core. ``OMP_NUM_THREADS`` reaches libraries loaded later;
    threadpoolctl limits the BLAS and OpenMP pools already loaded, and torch its own.
    """
    from threadpoolctl import threadpool_limits

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


def is_expected_failure(error: BaseException) -> bool:
    """An error the package raises on purpose, with a one-line message naming the input
    (every such class is defined in the package); anything else is a bug and keeps its
    traceback."""
    return type(error).__module__.startswith("saliencybench.")
