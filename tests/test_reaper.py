"""The reaper process (acme_core.reaper): it runs its commands when the process that
started it dies, whatever killed it, and only then. Real processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

_OWNER = textwrap.dedent("""
    import os, sys, time
    from acme_core.reaper import Reaper

    reaper = Reaper()
    reaper.add(["touch"], sys.argv[1])
    reaper.add(["touch"], sys.argv[2])          # joined into one `touch a b`
    if sys.argv[3] == "done":
        reaper.close()
    if sys.argv[3] == "fork":
        if os.fork() == 0:                      # a child that holds the reaper's pipe
            time.sleep(60)
            os._exit(0)
    print(reaper._proc.pid, flush=True)
    time.sleep(60)
""")


def _appear(paths, within: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < within:
        if all(os.path.exists(p) for p in paths):
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def _exits(pid: int, within: float) -> bool:
    import psutil

    try:
        psutil.Process(pid).wait(timeout=within)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "fork"])
def test_the_reapers_commands_run_when_its_parent_dies(tmp_path, how):
    marks = [str(tmp_path / "a"), str(tmp_path / "b")]
    proc = subprocess.Popen([sys.executable, "-c", _OWNER, *marks, how], text=True,
                            stdout=subprocess.PIPE, start_new_session=True)
    reaper_pid = int(proc.stdout.readline())
    assert not any(os.path.exists(p) for p in marks)
    proc.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGKILL)
    proc.wait(timeout=30)
    took = _appear(marks, within=10)
    assert took is not None, f"the reaper ran nothing within 10 s ({how})"
    print(f"{how}: commands ran {took:.2f} s after the parent died")
    if how == "fork":
        os.killpg(proc.pid, signal.SIGKILL)     # the forked child
    assert _exits(reaper_pid, within=10), "the reaper did not exit"


def test_a_closed_reaper_runs_nothing(tmp_path):
    marks = [str(tmp_path / "a"), str(tmp_path / "b")]
    proc = subprocess.Popen([sys.executable, "-c", _OWNER, *marks, "done"], text=True,
                            stdout=subprocess.PIPE, start_new_session=True)
    reaper_pid = int(proc.stdout.readline())
    assert _exits(reaper_pid, within=10)        # told it is done, it exits at once
    proc.kill()
    proc.wait(timeout=30)
    assert not any(os.path.exists(p) for p in marks)
