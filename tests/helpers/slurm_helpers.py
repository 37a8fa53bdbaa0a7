"""What the SLURM test modules ask the real local SLURM about its jobs (not a test file)."""

from __future__ import annotations

import subprocess
import time

import pytest

#: The issues' bound: jobs and worker processes of a run are gone this many seconds after it.
GONE_WITHIN = 15.0
RUNNING_STATES = "PD,CF,R,CG"


def squeue_jobs(name: str, states: str = "all") -> list[str]:
    """Ids of the jobs called ``name`` in ``states`` (finished ones stay 10 min, MinJobAge)."""
    out = subprocess.run(["squeue", "-h", "-n", name, "-t", states, "-o", "%i"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.split()


def active_jobs(name: str) -> list[str]:
    """Jobs called ``name`` that are pending, configuring, running or completing."""
    return squeue_jobs(name, RUNNING_STATES)


def job_fields(job_id: str) -> dict[str, str]:
    """``scontrol show job`` as a dict (finished jobs stay there for MinJobAge = 10 min)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return dict(tok.split("=", 1) for tok in out.stdout.split() if "=" in tok)


def final_state(job_id: str, within: float = GONE_WITHIN) -> dict[str, str]:
    """The job's fields once it has left the running states (waits ``within`` s at most)."""
    deadline = time.monotonic() + within
    while True:
        fields = job_fields(job_id)
        if fields["JobState"] not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
            return fields
        assert time.monotonic() < deadline, f"job {job_id} still {fields['JobState']}"
        time.sleep(0.5)


def worker_processes(name: str) -> list[int]:
    """Processes of the jobs called ``name`` (dask nannies, workers, batch shells)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("SLURM_JOB_NAME") == name:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def assert_gone(name: str, within: float = GONE_WITHIN) -> float:
    """Within ``within`` s no job of ``name`` is pending/running and no process of it lives;
    returns how long that took."""
    start = time.monotonic()
    while True:
        jobs, procs = active_jobs(name), worker_processes(name)
        if not jobs and not procs:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            pytest.fail(f"{within} s after the run: jobs {jobs}, processes {procs}")
        time.sleep(0.5)
