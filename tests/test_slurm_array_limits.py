"""Backend "slurm-array" against small site limits (``MaxArraySize=101``): the local SLURM
is restarted with that limit for this module only and restored right after (a restart
cancels every job on the cluster, so nothing else here runs under the small limit)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest

from acme_core import ParallelMap
from tests.slurm_array_funcs import tiny

START = os.environ.get("LOCAL_SLURM_START", "/work/shared/slurm/start-slurm.sh")


def _restart(**limits: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCAL_SLURM_MAX_")}
    proc = subprocess.run(["bash", START], env={**env, **limits}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _config(name: str) -> str:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                         timeout=60).stdout
    return re.search(rf"^{name}\s*=\s*(\S+)", out, re.MULTILINE).group(1)


@pytest.fixture(scope="module")
def max_array_101(slurm):
    """The local SLURM with ``MaxArraySize=101`` for this module, the defaults after it."""
    if not os.path.exists(START):
        pytest.skip(f"{START} not found (set LOCAL_SLURM_START)")
    _restart(LOCAL_SLURM_MAX_ARRAY_SIZE="101")
    assert _config("MaxArraySize") == "101"
    yield 101
    _restart()
    assert _config("MaxArraySize") == "1001"


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
def test_100000_tiny_calls_complete_in_few_arrays_and_few_files(max_array_101, tmp_path):
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
    files = [os.path.join(d, f) for d, sub, fs in os.walk(out) if ".acme_slurm" not in d
             for f in fs]
    print(f"100000 calls: {took:.1f} s, {len(lines)} sbatch calls, {tasks} array tasks, "
          f"{len(files)} files, {sockets.samples} socket samples")
    assert len(lines) <= 10
    assert len(files) <= tasks + 5, files
    assert sockets.samples > 0 and sockets.seen == set()
    from acme_core.load import load

    on_slurm = [float(np.ravel(r)[0]) for r in load(out)]
    on_joblib = ParallelMap(tiny, list(range(n)), write_worker_results=False, backend="joblib",
                            n_workers=2, verbose=False).compute()
    assert on_slurm == on_joblib


@pytest.mark.slow
def test_more_tasks_than_max_array_size_go_out_as_offset_arrays(max_array_101, tmp_path):
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
    from acme_core.load import load

    assert [float(np.ravel(r)[0]) for r in load(out)] == [3.0 * x + 1.0 for x in range(300)]
