"""Backend "slurm-array" outlives its caller: a SIGKILLed parent, Ctrl-C (cancel or
detach), and the re-run that re-attaches. Each run is a real Python process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers.read_back import first_values
from tests.helpers.slurm_array_funcs import runs_of
from tests.helpers.slurm_helpers import active_jobs

ROOT = Path(__file__).resolve().parents[1]
N = 40

SCRIPT = textwrap.dedent("""
    import sys
    from acme_core import ParallelMap
    from tests.helpers.slurm_array_funcs import counted

    out, counts, name, interrupt = sys.argv[1:5]
    pmap = ParallelMap(counted, list(range({n})), counts, 0.5, output_dir=out,
                       backend="slurm-array",
                       backend_options={{"poll_interval": 1.0, "calls_per_task": 4,
                                        "max_jobs": 2, "job_name": name,
                                        "on_interrupt": interrupt}})
    pmap.compute()
    print("RUN COMPLETE", flush=True)
""").format(n=N)


@pytest.fixture
def run_files(slurm, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    counts = tmp_path / "counts"
    counts.mkdir()
    name = f"acme-sa-caller-{uuid.uuid4().hex[:6]}"
    yield script, str(tmp_path / "out"), counts, name
    subprocess.run(["scancel", "-n", name], capture_output=True)


def _start(script, out, counts, name, interrupt="cancel") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(script), out, str(counts), name, interrupt],
                            env=env, cwd=str(ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_calls(counts, at_least: int, proc, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while len(runs_of(counts)) < at_least:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, f"fewer than {at_least} calls ran in {timeout} s"
        time.sleep(0.2)


def _sbatch_count(out) -> int:
    with open(os.path.join(out, ".acme_slurm", "submissions.log")) as fh:
        return len(fh.read().splitlines())


def _rerun(script, out, counts, name) -> str:
    proc = _start(script, out, counts, name)
    text, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0 and "RUN COMPLETE" in text, text
    return text


def _results(out) -> list[int]:
    return first_values(out, int)


@pytest.mark.slow
def test_parent_killed_midway_array_keeps_running_and_rerun_reattaches(run_files):
    """With ``on_interrupt="detach"`` the arrays outlive a SIGKILLed parent (by default its
    reaper cancels them, see tests/test_slurm_workers.py)."""
    script, out, counts, name = run_files
    proc = _start(script, out, counts, name, interrupt="detach")
    _wait_calls(counts, N // 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    before = _sbatch_count(out)
    assert active_jobs(name), "the array died with its parent"
    text = _rerun(script, out, counts, name)
    assert "re-attached" in text, text
    with open(os.path.join(out, ".acme_slurm", "submissions.log")) as fh:
        submissions = fh.read()
    # every missing call was held by a live task
    assert _sbatch_count(out) == before, (submissions, text)
    assert runs_of(counts) == Counter(dict.fromkeys(range(N), 1))   # no call ran twice
    assert _results(out) == [2 * x for x in range(N)]


@pytest.mark.slow
def test_ctrl_c_cancels_every_task_within_10_s(run_files):
    script, out, counts, name = run_files
    proc = _start(script, out, counts, name)
    _wait_calls(counts, 2, proc)
    assert active_jobs(name)
    os.killpg(proc.pid, signal.SIGINT)
    start = time.monotonic()
    while active_jobs(name):
        assert time.monotonic() - start < 10, f"tasks still queued: {active_jobs(name)}"
        time.sleep(0.2)
    print(f"no task of the run in squeue {time.monotonic() - start:.1f} s after Ctrl-C")
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in text, text


@pytest.mark.slow
def test_ctrl_c_with_detach_leaves_tasks_running_and_rerun_collects_them(run_files):
    script, out, counts, name = run_files
    proc = _start(script, out, counts, name, interrupt="detach")
    _wait_calls(counts, 2, proc)
    os.killpg(proc.pid, signal.SIGINT)
    text, _ = proc.communicate(timeout=60)
    assert "leaving arrays" in text, text
    assert active_jobs(name), "detached tasks were cancelled"
    deadline = time.monotonic() + 300
    while active_jobs(name):
        assert time.monotonic() < deadline
        time.sleep(1)
    before = _sbatch_count(out)
    _rerun(script, out, counts, name)
    assert _sbatch_count(out) == before
    assert runs_of(counts) == Counter(dict.fromkeys(range(N), 1))
    assert _results(out) == [2 * x for x in range(N)]
