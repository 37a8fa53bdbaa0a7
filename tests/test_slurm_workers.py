"""The SLURM backends against their workers: the partition checked in the constructor,
programs loaded in the workers' main thread, no dashboard for other users, and the jobs of
a run stopped by SIGTERM at any phase. Real SLURM jobs (``shared/slurm/start-slurm.sh``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from acme_dask import slurm as dask_slurm

from acme_core import ParallelMap
from tests.helpers.security_probe import needs_root, run_victim_and_probe
from tests.helpers.slurm_helpers import RUNNING_STATES, assert_gone, squeue_jobs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.usefixtures("no_dask_client_left")


def _name(what: str) -> str:
    return f"acmetest_{what}_{uuid.uuid4().hex[:6]}"


@pytest.fixture
def counted_sinfo(tmp_path, monkeypatch):
    """The real ``sinfo``, behind a wrapper that counts its calls; a fresh partition cache."""
    real = subprocess.run(["which", "sinfo"], capture_output=True, text=True).stdout.strip()
    folder = tmp_path / "bin"
    folder.mkdir()
    calls = tmp_path / "sinfo-calls"
    wrapper = folder / "sinfo"
    wrapper.write_text(f"#!/bin/sh\necho x >> {calls}\nexec {real} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(dask_slurm, "_partitions_seen", {})
    return lambda: len(calls.read_text().split()) if calls.exists() else 0


@pytest.mark.parametrize("backend", ["slurm", "slurm-esi"])
def test_an_unknown_partition_fails_in_the_constructor_with_one_sinfo(slurm, backend,
                                                                       counted_sinfo, tmp_path):
    out = tmp_path / "run"
    for _ in range(3):
        with pytest.raises(ValueError, match=r"Invalid partition selection NOPE, available "
                                             r"SLURM partitions are '8GBXS', '8GBS'.*'64GBS'"):
            ParallelMap(abs, [1, 2], backend=backend, partition="NOPE", output_dir=str(out))
    assert counted_sinfo() == 1
    assert not out.exists()                      # refused before anything was made
    ParallelMap(abs, [1, 2], backend=backend, partition="8GBS", write_worker_results=False)
    assert counted_sinfo() == 1                  # a valid one: the same cached answer


def test_a_module_installing_a_signal_handler_at_import_runs_on_slurm(slurm, sigmod, tmp_path):
    name = _name("sigmod")
    pmap = ParallelMap(sigmod.double, [1, 2], write_worker_results=False, backend="slurm",
                       n_workers=1, setup_interactive=False,
                       backend_options={"job_name": name, "log_directory": str(tmp_path)})
    assert pmap.compute() == [2, 4]
    assert_gone(name)


@needs_root
def test_another_user_cannot_reach_a_slurm_run_or_read_its_dashboard(slurm, tmp_path):
    name = _name("probe")
    text = run_victim_and_probe(tmp_path, "slurm", extra=f", setup_interactive=False, "
                                f"backend_options={{'job_name': {name!r}}}")
    print(text)
    assert text.count("REFUSED scheduler") == 3, text
    assert text.count("REFUSED worker") == 4, text
    assert "CONNECTED" not in text and "RAN-CODE" not in text and "WORKER-ANSWERED" not in text
    assert "HTTP-READABLE" not in text, text
    assert_gone(name)


#: (backend, signal, phase) of the runs stopped below: every phase for "slurm", and the
#: other SLURM backends in the phases where their own code decides what happens.
STOPS = ([("slurm", sig, phase) for sig in ("SIGTERM", "SIGKILL")
          for phase in ("pending", "starting", "running")]
         + [("slurm-esi", "SIGKILL", "running"), ("slurm-esi", "SIGTERM", "pending"),
            ("slurm-array", "SIGKILL", "pending"), ("slurm-array", "SIGKILL", "running"),
            ("slurm-array", "SIGTERM", "running")])

_STOPPED_RUN = """
import signal
import sys
sys.path.insert(0, {repo!r})
from acme_core import ParallelMap
from acme_core.testing.funcs import nap

if __name__ == "__main__":
    # SIGTERM as SIGINT, as the core's run loop makes it (checks the SLURM side)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ParallelMap(nap, list(range(8)), 30.0, backend={backend!r}, n_workers=2,
                write_worker_results=False, setup_interactive=False, setup_timeout=300,
                **{extra}).compute()
"""


def _stopped_run_options(backend: str, name: str, folder: str, pending: bool) -> dict:
    extra = ["--begin=now+3600"] if pending else []     # pending for an hour
    if backend == "slurm-array":
        return {"backend_options": {"job_name": name, "calls_per_task": 1, "poll_interval": 1.0,
                                    "job_extra": extra, "work_dir": folder}}
    options = {"backend_options": {"job_name": name, "log_directory": folder,
                                   "job_extra": extra}}
    if backend == "slurm-esi":
        options["partition"] = "8GBXS"
    return options


def _wait_for_phase(proc, name: str, phase: str) -> None:
    deadline = time.monotonic() + 180
    states, count = {"pending": ("PD", 1), "starting": (RUNNING_STATES, 1),
                     "running": ("R", 2)}[phase]
    while len(squeue_jobs(name, states)) < count:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"no job of {name} {phase} after 180 s"
        time.sleep(0.2)
    if phase == "running":
        time.sleep(3)                     # inside their 30 s calls


@pytest.mark.parametrize("backend, sig, phase", STOPS)
def test_a_stopped_slurm_run_leaves_no_job_and_no_worker_within_ten_seconds(slurm, tmp_path,
                                                                              backend, sig,
                                                                              phase):
    """SIGTERM: the run cancels its jobs as on Ctrl-C; SIGKILL (nothing runs in the parent
    any more): its reaper process cancels them. Either way, whether the jobs wait in the
    queue, start or run long calls, none is left in squeue and no process of them lives
    (psutil) 10 s after the parent ended."""
    name = _name(f"stop{backend.replace('-', '')}")
    script = tmp_path / "script.py"
    options = _stopped_run_options(backend, name, str(tmp_path), phase == "pending")
    script.write_text(_STOPPED_RUN.format(repo=REPO, backend=backend, extra=repr(options)))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for_phase(proc, name, phase)
        proc.send_signal(getattr(signal, sig))
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        ended = time.monotonic()
    try:
        took = assert_gone(name, within=10)
        print(f"{backend} {sig} while {phase}: jobs and workers gone {took:.1f} s after the "
              f"process ended")
    finally:
        subprocess.run(["scancel", "-n", name], capture_output=True)
    assert time.monotonic() - ended < 60
