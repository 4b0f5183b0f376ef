"""Job logs: the package's own errors end a job with their one line, bugs with a traceback."""

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
