"""SIGKILL at random moments: the parent first, then its workers, again and again on one run.

Each trial starts (or resumes) the same run in a child process, SIGKILLs the parent at a
random moment, then every worker it had, and checks that every call the manifest records as
finished reads back with plain h5py, with its right value. The next trial resumes the run
that was killed; after the last kill a resume completes and every result is right. The
random moments are drawn from a seeded generator (the seed is in the failure message).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import psutil
import pytest

from acme_core import load, manifest
from tests.helpers.manifests import done_calls
from tests.helpers.soak import default_and_soak

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(out, storage, n_calls, length, seconds):
    return textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from acme_core import ParallelMap
        from tests.helpers.funcs import row_after
        if __name__ == "__main__":
            with ParallelMap(row_after, range({n_calls}), n={length}, seconds={seconds},
                             output_dir={out!r}, storage={storage!r}, backend="joblib",
                             n_workers=2, verbose=False) as pmap:
                pmap.compute()
            print("the run finished")
    """)


def _manifest_done(out):
    """Calls whose last manifest event is ``done`` (a torn last line is ignored)."""
    return done_calls(out)


def _started(out):
    path = manifest.path_in(out)
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as fh:
        return fh.readline().endswith("\n")
    return False


def _kill_at_random(script, out, delay):
    """Run ``script``; SIGKILL it ``delay`` s after its run started, then its workers.
    Returns False when the run finished before the kill."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while not _started(out) and proc.poll() is None:
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.01)
        end = time.monotonic() + delay
        while time.monotonic() < end and proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                children = psutil.Process(proc.pid).children(recursive=True) or children
            time.sleep(0.005)
        if proc.poll() is not None:
            stdout, stderr = proc.communicate()
            assert proc.returncode == 0, stderr
            return False
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(proc.pid).children(recursive=True) or children
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        for child in children:  # then the workers: whatever they were doing
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(children, timeout=30)
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()


def _stored_with_plain_h5py(out, storage, func="row_after"):
    """Call index -> first value of every result file, read with plain h5py (locking on)."""
    found: dict[int, np.ndarray] = {}
    paths = []
    payload = os.path.join(out, f"{func}_payload")
    if os.path.isdir(payload):
        paths += [os.path.join(payload, p) for p in os.listdir(payload)
                  if not p.startswith(".")]
    if storage == "hdf5-single":
        paths.insert(0, os.path.join(out, f"{func}.h5"))
    for path in sorted(paths, key=lambda p: (os.stat(p).st_mtime_ns, p)):
        with h5py.File(path, "r") as h5:  # every finished file opens: no exception here
            if "rows" in h5:  # small results: rows of a table with a call-index column
                column = h5["rows/result_0"][()]
                for row, index in enumerate(h5["rows/call_index"][()].tolist()):
                    found[index] = column[row]
            if storage == "hdf5" and "result_0" in h5:  # one file per call: <func>_<i>.h5
                found[int(os.path.basename(path)[len(func) + 1:-3])] = h5["result_0"][()]
                continue
            for key, group in h5.items():
                if key.startswith("comp_") and "result_0" in group:
                    found[int(key[5:])] = group["result_0"][()]
    return found


def _kill_repeatedly(tmp_path, storage, kills, n_calls, length, seconds, max_delay, seed):
    out = str(tmp_path / "run")
    script = _script(out, storage, n_calls, length, seconds)
    rng = random.Random(seed)
    killed = 0
    for trial in range(kills):
        delay = rng.uniform(0, max_delay)
        if not _kill_at_random(script, out, delay):
            break  # the run finished before this kill
        killed += 1
        done = _manifest_done(out)
        stored = _stored_with_plain_h5py(out, storage)
        lost = sorted(done - set(stored))
        assert not lost, f"seed {seed}, kill {trial} at {delay:.2f} s: calls {lost} lost"
        for i in done:
            assert stored[i].tolist() == [float(i)] * length, f"seed {seed}: call {i} wrong"
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr
    values = load(out)
    assert all(v.tolist() == [float(i)] * length for i, v in enumerate(values)), seed
    print(f"{storage}: {killed} kills (seed {seed}), every recorded call read back, resumed")
    return killed


@pytest.mark.parametrize("storage", ["hdf5", "hdf5-shards", "hdf5-single"])
def test_a_few_random_kills_lose_nothing_and_resume_completes(tmp_path, storage):
    seed = random.randrange(1 << 30)
    killed = _kill_repeatedly(tmp_path, storage, kills=4, n_calls=400, length=64,
                              seconds=0.02, max_delay=1.5, seed=seed)
    assert killed >= 1, f"seed {seed}: the run always finished before the kill"


@pytest.mark.slow
@default_and_soak("kills, n_calls", (4, 300), (20, 3000))
def test_random_kills_of_an_hdf5_shards_run(tmp_path, kills, n_calls):
    seed = random.randrange(1 << 30)
    killed = _kill_repeatedly(tmp_path, "hdf5-shards", kills=kills, n_calls=n_calls,
                              length=64, seconds=0.04, max_delay=2.0, seed=seed)
    assert killed >= kills * 3 // 4, f"seed {seed}: only {killed} kills before the run finished"


@pytest.mark.slow
@default_and_soak("kills, n_calls", (3, 40), (30, 200))
def test_random_kills_of_an_hdf5_single_run_with_1_mb_results(tmp_path, kills, n_calls):
    seed = random.randrange(1 << 30)
    killed = _kill_repeatedly(tmp_path, "hdf5-single", kills=kills, n_calls=n_calls,
                              length=131072, seconds=0.5, max_delay=2.0, seed=seed)
    assert killed >= kills * 2 // 3, f"seed {seed}: only {killed} kills before the run finished"
