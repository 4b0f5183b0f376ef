"""Job logs: the package's own errors end a job with their one line, bugs with a traceback."""

import subprocess
import sys

import pytest

from saliencybench.logs import job_log
from saliencybench.store import StoreError


def test_expected_failure_is_one_line_in_log_and_terminal(tmp_path, capsys):
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as stopped, job_log(log):
        raise StoreError("results/x.zarr: array 'test/maps' differs; delete it and rerun")
    assert stopped.value.code == 1
    written = log.read_text()
    assert "job failed: results/x.zarr: array 'test/maps' differs" in written
    assert "Traceback" not in written
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["StoreError: results/x.zarr: array 'test/maps' differs; delete it and rerun"]


def test_a_bug_keeps_its_traceback(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(ZeroDivisionError), job_log(log):
        print(1 / 0)
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()


def test_a_job_holds_every_thread_pool_to_its_threads(tmp_path):
    """numpy and torch are imported before the job starts, as the adapters import them."""
    script = """
import numpy, torch
from threadpoolctl import threadpool_info
from saliencybench.logs import job_log
torch.set_num_threads(4)
with job_log(None, 1):
    inside = (torch.get_num_threads(), {pool["num_threads"] for pool in threadpool_info()})
print(inside, torch.get_num_threads())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.strip() == "(1, {1}) 4"
