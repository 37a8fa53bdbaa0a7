"""Backend "slurm-array" on the real local SLURM: conformance, storages, failure kinds and
their escalation (tests/helpers/slurm_array_funcs.py holds the mapped functions)."""

from __future__ import annotations

import logging
import os
import subprocess
import uuid

import numpy as np
import pytest
from acme_slurm import EscalationPolicy

from acme_core import ParallelComputationError, ParallelMap, plugins
from acme_core.testing import BackendConformance
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
    def run(backend):
        on_disk = storage != "memory"
        out = str(tmp_path / backend)
        pmap = ParallelMap(tiny, list(range(60)), backend=backend, storage=storage,
                           write_worker_results=on_disk, output_dir=out if on_disk else None,
                           backend_options={**FAST, "job_name": _name("st")}
                           if backend == "slurm-array" else None, verbose=False)
        returned = pmap.compute()
        if not on_disk:
            return returned
        from acme_core import load

        return load(out)

    on_slurm, on_joblib = run("slurm-array"), run("joblib")
    assert len(on_slurm) == len(on_joblib) == 60
    for a, b in zip(on_slurm, on_joblib, strict=True):
        np.testing.assert_array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def test_in_memory_run_leaves_no_state_and_opens_no_port(slurm, tmp_path):
    import psutil

    work = tmp_path / "work"
    pmap = ParallelMap(tiny, list(range(30)), write_worker_results=False, backend="slurm-array",
                       backend_options={**FAST, "work_dir": str(work), "job_name": _name("mem")},
                       verbose=False)
    assert pmap.compute() == [3.0 * x + 1.0 for x in range(30)]
    assert os.listdir(work) == []       # the private state folder is gone
    listening = [c for c in psutil.Process().net_connections("inet") if c.status == "LISTEN"]
    assert listening == []


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
    from acme_core import load

    assert [float(np.ravel(r)[0]) for r in load(out)] == [0.0, 1.0, 2.0, 3.0]
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
    from acme_core import load

    assert [int(np.ravel(r)[0]) for r in load(out)] == [2 * x for x in range(16)]
    assert set(runs_of(counts)) == set(range(16))
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "CANCELLED" in messages and "go back" in messages, messages


@pytest.mark.slow
def test_a_chunk_over_its_time_limit_is_timeout_and_finishes_with_more_time(slurm, tmp_path,
                                                                             caplog):
    out = str(tmp_path / "run")
    pmap = ParallelMap(slow_one, list(range(6)), 0, 95, output_dir=out, backend="slurm-array",
                       verbose=False,
                       backend_options={**FAST, "calls_per_task": 6, "walltime": 1,
                                        "job_name": _name("time")})
    with caplog.at_level(logging.WARNING, logger="acme_slurm"):
        pmap.compute()
    from acme_core import load

    assert [int(np.ravel(r)[0]) for r in load(out)] == [1, 2, 3, 4, 5, 6]
    lines = [r.getMessage() for r in caplog.records if "call 0:" in r.getMessage()]
    assert len(lines) == 1 and "timeout" in lines[0] and "--time=00:02:00" in lines[0], lines


@pytest.mark.slow
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
    from acme_core import load

    assert [float(np.ravel(r)[0]) for r in load(out)] == [3.0 * x + 1.0 for x in range(10)]


def test_slurm_esi_rejects_an_unknown_transport():
    with pytest.raises(ValueError, match="transport"):
        ParallelMap(tiny, [1, 2], backend="slurm-esi", write_worker_results=False,
                    backend_options={"transport": "carrier-pigeon"})
