"""Backend "slurm-array" on the real local SLURM: conformance, storages, failure kinds and
their escalation (tests/helpers/slurm_array_funcs.py holds the mapped functions)."""

from __future__ import annotations

import logging
import os
import subprocess
import uuid

import pytest
from acme_slurm import EscalationPolicy

from acme_core import ParallelComputationError, ParallelMap, plugins
from acme_core.testing import BackendConformance
from tests.helpers.read_back import assert_same_results, first_values, run_and_read_back
from tests.helpers.slurm_array_funcs import counted, grow, raise_on, runs_of, slow_one, tiny
from tests.helpers.slurm_helpers import active_jobs
from tests.helpers.waiting import wait_until

FAST = {"poll_interval": 1.0}


def _name(tag: str) -> str:
    return f"acme-sa-{tag}-{uuid.uuid4().hex[:6]}"


def submissions(output_dir: str) -> list[str]:
    """The sbatch calls of a run (one line each in its state folder)."""
    path = os.path.join(output_dir, ".acme_slurm", "submissions.log")
    with open(path) as fh:
        return fh.read().splitlines()


# ------------------------------------------------------------------ conformance
class TestSlurmArrayConformance(BackendConformance):
    backend = "slurm-array"
    backend_options = {**FAST, "job_name": _name("kit")}
    timeout = 300.0

    @pytest.fixture(autouse=True)
    def _cluster(self, slurm):
        return slurm

    def live_workers(self) -> set:
        return set(active_jobs(self.backend_options["job_name"]))


# ------------------------------------------------------------------ storages, results
@pytest.mark.parametrize("storage", sorted(plugins.storages()))
def test_every_storage_equals_joblib(slurm, storage, tmp_path):
    on_slurm = run_and_read_back(tiny, list(range(60)), backend="slurm-array", storage=storage,
                                 output_dir=str(tmp_path / "slurm-array"), verbose=False,
                                 backend_options={**FAST, "job_name": _name("st")})
    on_joblib = run_and_read_back(tiny, list(range(60)), backend="joblib", storage=storage,
                                  output_dir=str(tmp_path / "joblib"), verbose=False)
    assert_same_results(on_slurm, on_joblib, 60)


def test_in_memory_run_leaves_no_state_and_opens_no_port(slurm, tmp_path):
    import psutil

    def listening():
        return {c.laddr for c in psutil.Process().net_connections("inet") if c.status == "LISTEN"}

    # a dask cluster of an earlier test in this process may still be closing: only ports
    # that this run left open count
    before = listening()
    work = tmp_path / "work"
    pmap = ParallelMap(tiny, list(range(30)), write_worker_results=False, backend="slurm-array",
                       backend_options={**FAST, "work_dir": str(work), "job_name": _name("mem")},
                       verbose=False)
    assert pmap.compute() == [3.0 * x + 1.0 for x in range(30)]
    assert os.listdir(work) == []       # the private state folder is gone
    assert listening() - before == set()


def test_bad_options_fail_before_anything_runs():
    with pytest.raises(ValueError, match="on_interrupt"):
        ParallelMap(tiny, [1, 2], backend="slurm-array", write_worker_results=False,
                    backend_options={"on_interrupt": "later"})
    with pytest.raises(ValueError, match="max_jobs"):
        ParallelMap(tiny, [1, 2], backend="slurm-array", write_worker_results=False,
                    backend_options={"max_jobs": 0})
    with pytest.raises(ValueError, match="walltime"):
        ParallelMap(tiny, [1, 2], backend="slurm-array", write_worker_results=False,
                    backend_options={"walltime": "soon"})


# ------------------------------------------------------------------ failure kinds
def test_one_raising_call_shows_once_as_error(slurm, tmp_path):
    counts = tmp_path / "counts"
    counts.mkdir()
    out = str(tmp_path / "run")
    pmap = ParallelMap(raise_on, list(range(20)), 7, str(counts), output_dir=out,
                       backend="slurm-array", backend_options={**FAST, "job_name": _name("err")},
                       verbose=False)
    with pytest.raises(ParallelComputationError) as info:
        pmap.compute()
    failures = info.value.failures
    assert failures.indices == [7]
    assert failures[0].kind == "error" and failures[0].exc_type == "ValueError"
    assert runs_of(counts)[7] == 1                      # not retried by default
    assert sorted(runs_of(counts)) == list(range(20))


def test_memory_kill_is_out_of_memory_and_reruns_with_twice_the_memory(slurm, tmp_path, caplog):
    out = str(tmp_path / "run")
    pmap = ParallelMap(grow, list(range(4)), 2, 300, output_dir=out, backend="slurm-array",
                       mem_per_worker="256MB", verbose=False,
                       backend_options={**FAST, "calls_per_task": 1, "job_name": _name("oom")})
    with caplog.at_level(logging.WARNING, logger="acme_slurm"):
        pmap.compute()
    assert first_values(out) == [0.0, 1.0, 2.0, 3.0]
    lines = [r.getMessage() for r in caplog.records if "call 2:" in r.getMessage()]
    assert len(lines) == 1, lines                      # one log line per escalation
    assert "out-of-memory" in lines[0] and "--mem=512M" in lines[0], lines
    sent = submissions(out)
    assert sum("--mem=512M" in line for line in sent) == 1 and "tasks=1" in sent[-1]


def test_an_unrecoverable_memory_kill_fails_with_kind_out_of_memory(slurm, tmp_path):
    out = str(tmp_path / "run")
    policy = EscalationPolicy(max_attempts=1)           # no second submission allowed
    pmap = ParallelMap(grow, list(range(3)), 1, 300, output_dir=out, backend="slurm-array",
                       mem_per_worker="256MB", verbose=False,
                       backend_options={**FAST, "calls_per_task": 1, "policy": policy,
                                        "job_name": _name("oom1")})
    with pytest.raises(ParallelComputationError) as info:
        pmap.compute()
    assert info.value.failures.indices == [1]
    assert info.value.failures[0].kind == "out-of-memory"
    from acme_core import manifest

    assert manifest.read(out).done == {0, 2}


@pytest.mark.parametrize("requeue", [
    pytest.param(False, id="scancel"),
    # SLURM holds a requeued task about two minutes before it runs again
    pytest.param(True, id="scancel-and-requeue", marks=[pytest.mark.soak, pytest.mark.slow]),
])
def test_scancel_and_requeue_lose_no_call_and_use_no_retries(slurm, tmp_path, caplog, requeue):
    counts = tmp_path / "counts"
    counts.mkdir()
    out = str(tmp_path / "run")
    name = _name("kill")
    pmap = ParallelMap(counted, list(range(16)), str(counts), 4.0, output_dir=out,
                       backend="slurm-array", retries=0, verbose=False,
                       backend_options={**FAST, "calls_per_task": 2, "job_name": name})
    import threading

    box = {}
    thread = threading.Thread(target=lambda: box.update(result=pmap.compute()), daemon=True)
    with caplog.at_level(logging.INFO, logger="acme_slurm"):
        thread.start()

        def two_running():
            tasks = {n.split("_", 2)[2].rsplit("_", 1)[0] for n in os.listdir(counts)}
            return sorted(tasks)[:2] if len(tasks) >= 2 else None

        victim, requeued = wait_until(two_running, "two array tasks running", 240, interval=0.3)
        subprocess.run(["scancel", victim], check=True)
        if requeue:
            subprocess.run(["scontrol", "requeue", requeued], check=True)
        thread.join(400)
    assert not thread.is_alive(), "compute() did not return"
    assert first_values(out, int) == [2 * x for x in range(16)]
    assert set(runs_of(counts)) == set(range(16))
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "CANCELLED" in messages and "go back" in messages, messages


@pytest.mark.slow
@pytest.mark.soak  # SLURM's shortest walltime is a minute: it waits 1 + 2 minutes
def test_a_chunk_over_its_time_limit_is_timeout_and_finishes_with_more_time(slurm, tmp_path,
                                                                             caplog):
    out = str(tmp_path / "run")
    pmap = ParallelMap(slow_one, list(range(6)), 0, 95, output_dir=out, backend="slurm-array",
                       verbose=False,
                       backend_options={**FAST, "calls_per_task": 6, "walltime": 1,
                                        "job_name": _name("time")})
    with caplog.at_level(logging.WARNING, logger="acme_slurm"):
        pmap.compute()
    assert first_values(out, int) == [1, 2, 3, 4, 5, 6]
    lines = [r.getMessage() for r in caplog.records if "call 0:" in r.getMessage()]
    assert len(lines) == 1 and "timeout" in lines[0] and "--time=00:02:00" in lines[0], lines


@pytest.mark.slow
@pytest.mark.soak  # a task of SLURM's shortest walltime (a minute), then its follow-up
def test_a_task_stops_before_its_walltime_and_its_unstarted_calls_go_back(slurm, tmp_path,
                                                                          caplog):
    counts = tmp_path / "counts"
    counts.mkdir()
    out = str(tmp_path / "run")
    # 6 calls of 15 s in one task of 1 minute: it runs 3 (the 4th would pass the limit)
    pmap = ParallelMap(counted, list(range(6)), str(counts), 15.0, output_dir=out,
                       backend="slurm-array", verbose=False,
                       backend_options={**FAST, "calls_per_task": 6, "walltime": 1,
                                        "job_name": _name("wall")})
    with caplog.at_level(logging.INFO, logger="acme_slurm"):
        assert pmap.compute() is not None
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "stopped (walltime)" in messages and "3 unstarted calls go back" in messages, messages
    assert "timeout" not in messages
    assert runs_of(counts) == dict.fromkeys(range(6), 1)     # nothing ran twice or failed
    assert len(submissions(out)) == 2


# ------------------------------------------------------------------ ESI presets, array mode
@pytest.mark.parametrize(("mem", "expected"), [("auto", "8GBS"), ("9GB", "16GBS")])
def test_slurm_esi_in_array_mode_picks_the_partition_as_the_dask_transport(slurm, tmp_path,
                                                                          mem, expected):
    from acme_dask.slurm import get_slurm_partitions
    from acme_slurm_esi import ESI

    if mem != "auto":   # the dask transport's choice for the same memory
        assert ESI.choose_partition(9000, get_slurm_partitions()[0])[0] == expected
    out = str(tmp_path / "run")
    pmap = ParallelMap(tiny, list(range(10)), output_dir=out, backend="slurm-esi",
                       partition="auto", mem_per_worker=mem, verbose=False,
                       backend_options={"transport": "array", **FAST,
                                        "job_name": _name("esi")})
    pmap.compute()
    sent = submissions(out)
    assert sent and all(f"--partition={expected}" in line for line in sent), sent
    assert first_values(out) == [3.0 * x + 1.0 for x in range(10)]


def test_slurm_esi_rejects_an_unknown_transport():
    with pytest.raises(ValueError, match="transport"):
        ParallelMap(tiny, [1, 2], backend="slurm-esi", write_worker_results=False,
                    backend_options={"transport": "carrier-pigeon"})


def test_a_call_over_its_time_limit_fails_alone_with_kind_timeout(slurm, tmp_path):
    """timeout= on backend "slurm-array": the task running call 3 (which never returns)
    ends itself after writing the outcomes it has and the call's "timeout" failure; the
    calls it had not started run in another task, and no task is left."""
    from tests.helpers.fault_funcs import hang_on

    name, markers = _name("limit"), tmp_path / "markers"
    markers.mkdir()
    pmap = ParallelMap(hang_on, list(range(8)), str(markers), output_dir=str(tmp_path / "run"),
                       backend="slurm-array", timeout=5, verbose=False,
                       backend_options={**FAST, "calls_per_task": 4, "job_name": name})
    with pytest.raises(ParallelComputationError) as info:
        pmap.compute()
    rows = list(info.value.failures)
    assert [(r.index, r.kind, r.attempts) for r in rows] == [(3, "timeout", 1)], rows
    assert "timeout=5 s" in rows[0].message
    ran = [int(n.split("_")[0]) for n in os.listdir(markers)]
    assert sorted(set(ran)) == list(range(8)) and ran.count(3) == 1
    wait_until(lambda: not active_jobs(name), "the run's tasks leave squeue", timeout=30)


def test_the_state_folder_of_a_killed_in_memory_run_goes_at_the_next_start(slurm, tmp_path):
    """An in-memory run keeps its program and chunks in a folder under ``work_dir`` named
    for no one: its owner file says which process made it. A process that died without
    cleaning up (here: one that exits at once) leaves it; the next run removes it and keeps
    the folder of a live process."""
    import signal
    import sys

    work = tmp_path / "work"
    make = ("import os, sys; from acme_core.stale import owned_directory; "
            "print(owned_directory(sys.argv[1], 'run_'), flush=True); "
            "os.kill(os.getpid(), 9)")
    killed = subprocess.run([sys.executable, "-c", make, str(work)], capture_output=True,
                            text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    stale = killed.stdout.strip()
    from acme_core.stale import owned_directory

    alive = owned_directory(str(work), "run_")          # owned by this (live) process
    pmap = ParallelMap(tiny, list(range(4)), write_worker_results=False, backend="slurm-array",
                       backend_options={**FAST, "work_dir": str(work), "job_name": _name("old")},
                       verbose=False)
    assert pmap.compute() == [3.0 * x + 1.0 for x in range(4)]
    assert not os.path.exists(stale) and os.path.isdir(alive)
