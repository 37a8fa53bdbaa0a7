"""The SLURM backends against their workers: the partition checked in the constructor,
programs loaded in the workers' main thread, no dashboard for other users, and the jobs of
a run stopped by SIGTERM at any phase. Real SLURM jobs (``shared/slurm/start-slurm.sh``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from acme_dask import slurm as dask_slurm

from acme_core import ParallelMap
from tests.helpers.security_probe import needs_root, run_victim_and_probe
from tests.helpers.slurm_helpers import active_jobs, assert_gone, squeue_jobs

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


@pytest.mark.parametrize("phase", ["while its jobs start", "while its calls run",
                                   "SIGKILL while its calls run"])
def test_sigterm_of_a_slurm_run_cancels_its_jobs_within_ten_seconds(slurm, tmp_path, phase):
    """SIGTERM: the run cancels its jobs; SIGKILL (nothing can run in the parent): the
    workers give up on the vanished scheduler after their death timeout and the jobs end."""
    name = _name("sigterm")
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import signal
        import sys
        sys.path.insert(0, {REPO!r})
        from acme_core import ParallelMap
        from acme_core.testing.funcs import nap

        if __name__ == "__main__":
            # SIGTERM as SIGINT, as the core's run loop makes it (checks the SLURM side)
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            ParallelMap(nap, list(range(8)), 30.0, backend="slurm", n_workers=2,
                        write_worker_results=False, setup_interactive=False,
                        backend_options={{"job_name": {name!r},
                                         "log_directory": {str(tmp_path)!r}}}).compute()
    """))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        starting = phase.endswith("jobs start")
        while len(active_jobs(name) if starting else squeue_jobs(name, "R")) < (1 if starting
                                                                                else 2):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        if phase.endswith("calls run"):
            time.sleep(3)
        proc.send_signal(signal.SIGKILL if phase.startswith("SIGKILL") else signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # SIGKILL: nothing runs in the parent; a worker gives up on the vanished scheduler after
    # its death timeout (10 s), but one inside a call may first finish it (30 s here)
    within = 10 if not phase.startswith("SIGKILL") else 45
    print(f"jobs gone {assert_gone(name, within=within):.1f} s after the process ended")
