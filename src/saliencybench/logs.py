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
        threads: intra-op threads for torch, as Snakemake granted them to the job.
    """
    if threads:
        # Read by torch when it is first imported, which the stages do lazily after this.
        os.environ["OMP_NUM_THREADS"] = str(threads)
    handle = open(path, "w", buffering=1) if path else None  # noqa: SIM115
    stream = handle or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    failure = None
    try:
        with contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
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


def is_expected_failure(error: BaseException) -> bool:
    """An error the package raises on purpose, with a one-line message naming the input
    (every such class is defined in the package); anything else is a bug and keeps its
    traceback."""
    return type(error).__module__.startswith("saliencybench.")
