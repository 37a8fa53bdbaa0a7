"""Faults on backend "slurm" with real SLURM jobs and real processes, and the
conformance kit on backend "slurm".

* a worker process SIGKILLed mid-call: every result, and the run's log names the lost worker;
* a job over its ``--mem``: SLURM kills it (``FAILED``, ``ExitCode=0:9``), its calls run again;
* a job cancelled mid-run (``scancel``): a replacement job is submitted, every result comes.

Nothing mocks sbatch or dask-jobqueue. Without a cluster these tests skip, except with
``REQUIRE_SLURM=1`` (CI), where they fail (the ``slurm`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest
from acme_dask import cluster_cleanup, slurm_cluster_setup
from acme_dask.setup import running_client

from acme_core import ParallelComputationError, ParallelMap
from acme_core.testing import BackendConformance
from tests.helpers.funcs import slurm_job_of
from tests.helpers.slurm_fault_funcs import hog_once, started_nap
from tests.helpers.slurm_helpers import (
    active_jobs,
    assert_gone,
    final_state,
    squeue_jobs,
    worker_processes,
)

pytestmark = pytest.mark.usefixtures("no_dask_client_left")


def _name(what: str) -> str:
    return f"acmefault_{what}_{uuid.uuid4().hex[:6]}"


def _when_started(marker_dir: str, call: int, action: Callable[[int], None]) -> threading.Thread:
    """In a thread: once call ``call`` has started (its marker file), ``action(pid)``."""
    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = glob.glob(os.path.join(marker_dir, f"started_{call}_*"))
            if found:
                action(int(found[0].rsplit("_", 1)[1]))
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _lost_lines(logfile: str) -> list[str]:
    """acme-dask's log lines about workers lost while running calls of the run."""
    with open(logfile) as fh:
        return [line for line in fh if "was lost while running call(s)" in line]


def _calls_in(line: str) -> list[int]:
    """The call indices a lost-worker log line names."""
    listed = line.split("call(s) [", 1)[1].split("]", 1)[0]
    return [int(i) for i in listed.split(",")]


# ------------------------------------------------------------------ faults
def test_a_worker_process_sigkilled_mid_call_costs_no_call(slurm, tmp_path):
    """The dask worker process running call 5 is SIGKILLed (from outside, as the OOM killer
    would) while the call sleeps: its nanny starts a new one, dask runs the call again,
    and the run's log names the lost worker, its SLURM job and the calls it held."""
    name, markers = _name("sigkill"), tmp_path / "markers"
    markers.mkdir()
    killed: list[int] = []

    def kill(pid: int) -> None:
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)

    watcher = _when_started(str(markers), 5, kill)
    start = time.monotonic()
    pmap = ParallelMap(started_nap, list(range(12)), str(markers), 0.5, backend="slurm",
                       n_workers=2, output_dir=str(tmp_path / "run"), setup_interactive=False,
                       logfile=str(tmp_path / "run.log"), backend_options={"job_name": name})
    from acme_core import load

    pmap.compute()
    print(f"run with a SIGKILLed worker: {time.monotonic() - start:.1f} s")
    watcher.join(5)
    results = load(str(tmp_path / "run"))
    assert [int(np.ravel(r)[0]) for r in results] == [10 * x for x in range(12)]
    assert not pmap.failures
    (pid,) = killed
    runs_of_5 = sorted(int(n.rsplit("_", 1)[1]) for n in os.listdir(markers)
                       if n.startswith("started_5_"))
    assert len(runs_of_5) == 2 and pid in runs_of_5, runs_of_5   # killed once, ran again
    lines = _lost_lines(str(tmp_path / "run.log"))
    assert len(lines) == 1 and 5 in _calls_in(lines[0]), lines
    (job,) = [j for j in squeue_jobs(name) if f"SLURM job {j} " in lines[0]]
    print(lines[0].strip())
    print(f"jobs gone {assert_gone(name):.1f} s after the run (job {job} lost a worker)")


def test_a_job_over_its_memory_is_killed_by_slurm_and_its_calls_run_again(slurm, tmp_path,
                                                                          monkeypatch):
    """Call 2 allocates and touches 2 GB in a job of ``--mem=1000M`` (first attempt only):
    SLURM's RSS poller kills the job (FAILED, ExitCode 0:9), the calls it held run again on
    the other worker, and nothing is missing. dask's own memory limit (``--memory-limit``,
    which dask-jobqueue passes to every worker) would act first through the nanny; its
    termination is switched off in the jobs' environment so that SLURM acts."""
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__MEMORY__TERMINATE", "False")  # jobs inherit it
    name, markers = _name("oom"), tmp_path / "markers"
    markers.mkdir()
    start = time.monotonic()
    pmap = ParallelMap(hog_once, list(range(6)), str(markers), 2, 2.0, backend="slurm",
                       n_workers=2, mem_per_worker="1GB", write_worker_results=False,
                       setup_interactive=False, logfile=str(tmp_path / "run.log"),
                       backend_options={"job_name": name, "log_directory": str(tmp_path)})
    assert pmap.compute() == [float(x) for x in range(6)]
    print(f"run with a job killed for memory: {time.monotonic() - start:.1f} s")
    job = (markers / "hog").read_text()
    assert job in squeue_jobs(name)
    fields = final_state(job)
    print(f"job {job}: JobState={fields['JobState']} ExitCode={fields['ExitCode']} "
          f"Reason={fields.get('Reason')}")
    assert (fields["JobState"], fields["ExitCode"]) == ("FAILED", "0:9")
    script = subprocess.run(["scontrol", "write", "batch_script", job, "-"],
                            capture_output=True, text=True, timeout=30).stdout
    assert "--mem=1000M" in script and "--memory-limit" in script   # dask's limit was there
    err = (tmp_path / f"{name}-{job}.err").read_text()
    assert "exceeded memory limit" in err, err[-2000:]
    assert "memory budget" not in err                               # not the nanny's doing
    lines = _lost_lines(str(tmp_path / "run.log"))
    assert any(f"SLURM job {job} " in line and 2 in _calls_in(line) for line in lines), lines
    print(f"jobs gone {assert_gone(name):.1f} s after the run")


def test_a_job_cancelled_mid_run_is_replaced_and_every_call_finishes(slurm, tmp_path):
    """The run's only job is cancelled while call 3 runs: no worker is left, so the run
    can only finish if acme-dask submits a replacement job, which it does once
    dask-jobqueue has forgotten the lost one (distributed's ``lost-worker-timeout``,
    15 s by default, set to 2 s here to keep the test short)."""
    import dask

    name, markers = _name("scancel"), tmp_path / "markers"
    markers.mkdir()
    cancelled: list[str] = []

    def cancel(pid: int) -> None:
        (job,) = active_jobs(name)
        cancelled.append(job)
        subprocess.run(["scancel", job], check=True, timeout=30)

    watcher = _when_started(str(markers), 3, cancel)
    start = time.monotonic()
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "2s"}):
        pmap = ParallelMap(started_nap, list(range(8)), str(markers), 0.5, backend="slurm",
                           n_workers=1, write_worker_results=False, setup_interactive=False,
                           logfile=str(tmp_path / "run.log"),
                           backend_options={"job_name": name, "log_directory": str(tmp_path)})
        assert pmap.compute() == [10 * x for x in range(8)]
    print(f"run with its only job cancelled: {time.monotonic() - start:.1f} s")
    watcher.join(5)
    (job,) = cancelled
    assert final_state(job)["JobState"] == "CANCELLED"
    replacements = [j for j in squeue_jobs(name) if j != job]
    assert len(replacements) == 1, squeue_jobs(name)
    assert any(f"SLURM job {job} " in line for line in _lost_lines(str(tmp_path / "run.log")))
    print(f"cancelled job {job}, replacement {replacements[0]}; "
          f"jobs gone {assert_gone(name):.1f} s after the run")


# ------------------------------------------------------------------ conformance
class _SharedWorkers:
    """Two SLURM workers the class's runs attach to, (re)started on demand."""

    def __init__(self, log_directory: str) -> None:
        self.name, self.logs, self.client = _name("kitshared"), log_directory, None

    def ensure(self) -> None:
        if self.client is None or self.client.status != "running":
            self.client = slurm_cluster_setup(n_workers=2, mem_per_worker="1GB",
                                              interactive=False, reuse=False,
                                              job_name=self.name, log_directory=self.logs)

    def stop(self) -> None:
        client, self.client = self.client, None
        if client is not None and client.status == "running":
            cluster_cleanup(client)
        assert_gone(self.name)


@pytest.fixture(scope="class")
def shared_slurm_workers(slurm, tmp_path_factory):
    shared = _SharedWorkers(str(tmp_path_factory.mktemp("kit_logs")))
    yield shared
    shared.stop()


class TestSlurm(BackendConformance):
    """The conformance kit on backend "slurm". Its runs attach to two SLURM workers started
    once for the class with ``slurm_cluster_setup`` (as ACME users do), so the kit costs
    one job start instead of one per run; the leftover test (``acme_own_workers``) gets no
    shared workers: its run starts its own jobs, and :meth:`live_workers` checks that none
    of them, and no process of them, is left 15 s after ``stop_client=True``."""

    shares_a_dask_client = True
    backend = "slurm"
    own_jobs = _name("kitown")
    backend_options = {"job_name": own_jobs}

    @pytest.fixture(autouse=True)
    def _workers(self, request, shared_slurm_workers, tmp_path):
        if request.node.get_closest_marker("acme_own_workers"):
            shared_slurm_workers.stop()
        else:
            shared_slurm_workers.ensure()
        yield

    def pmap(self, func, *args, **kwargs):
        kwargs.setdefault("setup_interactive", False)
        if running_client() is not None:
            kwargs.setdefault("n_workers", "auto")    # attached: nothing to ask for
        return super().pmap(func, *args, **kwargs)

    def live_workers(self) -> set:
        return set(active_jobs(self.own_jobs)) | set(worker_processes(self.own_jobs))

    def test_runs_attach_to_the_shared_slurm_workers(self, shared_slurm_workers):
        """Not a kit test: proves the kit's runs above ran in the shared SLURM jobs."""
        pmap = self.pmap(slurm_job_of, list(range(8)), write_worker_results=False)
        jobs = {job for _, job in self.compute(pmap)}
        assert jobs == set(active_jobs(shared_slurm_workers.name)) and len(jobs) == 2, jobs


def test_a_call_over_its_time_limit_fails_alone_on_slurm(slurm, tmp_path):
    """timeout= on backend "slurm": the worker running call 3 (which never returns) is
    killed by its nanny inside its SLURM job (while the jobs stay, with stop_client=False),
    the call fails with kind "timeout", every other call finishes, and no job is left."""
    from tests.helpers.fault_funcs import hang_on
    from tests.helpers.fault_runs import process_gone
    from tests.helpers.waiting import wait_for

    name, markers = _name("timeout"), tmp_path / "markers"
    markers.mkdir()
    pmap = ParallelMap(hang_on, list(range(8)), str(markers), write_worker_results=False,
                       backend="slurm", n_workers=2, timeout=5, setup_interactive=False,
                       stop_client=False,
                       backend_options={"job_name": name, "log_directory": str(tmp_path)})
    start = time.monotonic()
    try:
        with pytest.raises(ParallelComputationError) as err:
            pmap.compute()
        print(f"run with a hung call: {time.monotonic() - start:.1f} s")
        rows = list(err.value.failures)
        assert [(r.index, r.kind, r.attempts) for r in rows] == [(3, "timeout", 1)], rows
        assert "timeout=5 s" in rows[0].message
        ran = [int(n.split("_")[0]) for n in os.listdir(markers)]
        assert sorted(set(ran)) == list(range(8)) and ran.count(3) == 1
        (hung,) = [int(n.split("_")[1]) for n in os.listdir(markers) if n.startswith("3_")]
        assert wait_for(lambda: process_gone(hung), 30)     # the jobs still run: it was killed
        assert len(active_jobs(name)) == 2
    finally:
        cluster_cleanup()
    print(f"jobs gone {assert_gone(name):.1f} s after the run")
