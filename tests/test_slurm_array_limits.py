"""Backend "slurm-array" under other site settings: small limits (``MaxArraySize=101``) and
SLURM accounting on. The local SLURM is restarted with them for one test class and
restored to its defaults right after (a restart cancels every job on the cluster)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid

import pytest

from acme_core import ParallelMap
from tests.helpers.read_back import first_values
from tests.helpers.slurm_array_funcs import tiny

START = os.environ.get("LOCAL_SLURM_START", "/work/shared/slurm/start-slurm.sh")


def _restart(**limits: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCAL_SLURM_")}
    proc = subprocess.run(["bash", START], env={**env, **limits}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _config(name: str) -> str:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                         timeout=60).stdout
    return re.search(rf"^{name}\s*=\s*(\S+)", out, re.MULTILINE).group(1)


@pytest.fixture(scope="class")
def max_array_101(slurm):
    """The local SLURM with ``MaxArraySize=101`` for one class, the defaults after it."""
    if not os.path.exists(START):
        pytest.skip(f"{START} not found (set LOCAL_SLURM_START)")
    _restart(LOCAL_SLURM_MAX_ARRAY_SIZE="101")
    assert _config("MaxArraySize") == "101"
    yield 101
    _restart()
    assert _config("MaxArraySize") == "1001"


@pytest.fixture(scope="class")
def accounting_on(slurm):
    """The local SLURM with accounting (slurmdbd, sacct) for one class, the defaults after."""
    if not os.path.exists(START):
        pytest.skip(f"{START} not found (set LOCAL_SLURM_START)")
    _restart(LOCAL_SLURM_ACCOUNTING="1")
    assert _config("AccountingStorageType") == "accounting_storage/slurmdbd"
    yield slurm
    _restart()
    assert _config("AccountingStorageType") == "accounting_storage/none"


def _sbatch_lines(output_dir: str) -> list[str]:
    with open(os.path.join(output_dir, ".acme_slurm", "submissions.log")) as fh:
        return fh.read().splitlines()


class ListeningSockets(threading.Thread):
    """Samples this process's listening sockets (psutil) until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set = set()
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self.done.wait(0.5):
            self.seen |= {c.laddr for c in me.net_connections("inet") if c.status == "LISTEN"}
            self.samples += 1


@pytest.mark.slow
@pytest.mark.soak  # restarts the shared SLURM (cancelling every job) and waits for 100,000 calls
@pytest.mark.usefixtures("max_array_101")
class TestMaxArraySize101:
    """MaxArraySize=101: many calls in few arrays; more tasks than that in offset arrays."""

    def test_100000_tiny_calls_complete_in_few_arrays_and_few_files(self, tmp_path):
        _hundred_thousand(tmp_path)

    def test_more_tasks_than_max_array_size_go_out_as_offset_arrays(self, tmp_path):
        _offset_arrays(tmp_path)


@pytest.mark.slow
@pytest.mark.soak  # restarts the shared SLURM with slurmdbd, and a requeue waits minutes
@pytest.mark.usefixtures("accounting_on")
class TestAccountingOn:
    """The failure-kind tests of test_slurm_array.py again, with sacct answering."""

    def test_raising_call(self, accounting_on, tmp_path):
        from tests import test_slurm_array as plain

        plain.test_one_raising_call_shows_once_as_error(accounting_on, tmp_path)

    def test_memory_kill(self, accounting_on, tmp_path, caplog):
        from tests import test_slurm_array as plain

        plain.test_memory_kill_is_out_of_memory_and_reruns_with_twice_the_memory(
            accounting_on, tmp_path, caplog)

    def test_scancel_and_requeue(self, accounting_on, tmp_path, caplog):
        from tests import test_slurm_array as plain

        plain.test_scancel_and_requeue_lose_no_call_and_use_no_retries(
            accounting_on, tmp_path, caplog, requeue=True)


def _hundred_thousand(tmp_path) -> None:
    n = 100_000
    out = str(tmp_path / "run")
    sockets = ListeningSockets()
    sockets.start()
    start = time.perf_counter()
    pmap = ParallelMap(tiny, list(range(n)), output_dir=out, storage="hdf5-shards",
                       backend="slurm-array", verbose=False,
                       backend_options={"poll_interval": 2.0,
                                        "job_name": f"acme-sa-100k-{uuid.uuid4().hex[:6]}"})
    pmap.compute()
    took = time.perf_counter() - start
    sockets.done.set()
    sockets.join()
    lines = _sbatch_lines(out)
    tasks = sum(int(re.search(r"tasks=(\d+)", line).group(1)) for line in lines)
    # result files: the container and the payload folder (manifest, log and replay record
    # are the run's bookkeeping, not results)
    payload = os.path.join(out, "tiny_payload")
    files = [pmap.results_container] + [os.path.join(payload, f) for f in os.listdir(payload)]
    print(f"100000 calls: {took:.1f} s, {len(lines)} sbatch calls, {tasks} array tasks, "
          f"{len(files)} files, {sockets.samples} socket samples")
    assert len(lines) <= 10
    assert len(files) <= tasks + 5, files
    assert sockets.samples > 0 and sockets.seen == set()
    on_slurm = first_values(out)
    on_joblib = ParallelMap(tiny, list(range(n)), write_worker_results=False, backend="joblib",
                            n_workers=2, verbose=False).compute()
    assert on_slurm == on_joblib


def _offset_arrays(tmp_path) -> None:
    out = str(tmp_path / "run")
    pmap = ParallelMap(tiny, list(range(300)), output_dir=out, backend="slurm-array",
                       verbose=False,
                       backend_options={"poll_interval": 2.0, "calls_per_task": 1,
                                        "job_name": f"acme-sa-300-{uuid.uuid4().hex[:6]}"})
    pmap.compute()
    lines = _sbatch_lines(out)
    assert [re.search(r"offset=(\d+) tasks=(\d+)", line).groups() for line in lines] == [
        ("0", "101"), ("101", "101"), ("202", "98")]
    assert all("--array=0-" in line for line in lines)
    assert first_values(out) == [3.0 * x + 1.0 for x in range(300)]
