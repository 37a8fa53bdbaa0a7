"""A run whose PARENT process is SIGKILLed mid-run: what finished reads back with plain h5py.

The script's calls 0..5 return at once, the others wait for a release file, so the parent is
killed while calls are outstanding, at a moment the test observed (no timing assumptions).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import h5py
import numpy as np
import psutil
import pytest

from acme_core import MissingResultsWarning, load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DONE = 6


def _script(out, release, storage):
    return textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from acme_core import ParallelMap
        from tests.helpers.funcs import finish_below
        if __name__ == "__main__":
            pmap = ParallelMap(finish_below, range(12), k={DONE}, release={release!r},
                               output_dir={out!r}, storage={storage!r}, backend="joblib",
                               n_workers=2, verbose=False)
            pmap.compute()
            print("the run finished: the test did not kill it")
    """)


def _wait_for(condition, proc, what):
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if condition():
                return
        except (OSError, KeyError, ValueError):  # the run directory is being made, written
            pass
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _kill_parent(tmp_path, storage, ready):
    out, release = str(tmp_path / "run"), str(tmp_path / "release")
    script = tmp_path / "crash.py"
    script.write_text(_script(out, release, storage))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children: list[psutil.Process] = []
    try:
        _wait_for(lambda: ready(out), proc, f"{DONE} finished calls")
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        open(release, "w").close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
        for child in children:  # the orphaned workers (and loky's helper) we started
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(children, timeout=30)
    return out


def _payload_done(out):
    payload = os.path.join(out, "finish_below_payload")
    return sum(os.path.isfile(os.path.join(payload, f"finish_below_{i}.h5"))
               for i in range(DONE)) == DONE


def test_parent_killed_per_call_files_container_opens_and_finished_calls_read(tmp_path):
    out = _kill_parent(tmp_path, "hdf5", _payload_done)
    finished = 0
    with h5py.File(os.path.join(out, "finish_below.h5"), "r") as h5:
        assert len(h5) == 12
        for i in range(12):
            exists = os.path.isfile(os.path.join(out, "finish_below_payload",
                                                 f"finish_below_{i}.h5"))
            if i < DONE or exists:
                assert h5[f"comp_{i}/result_0"][()].tolist() == [float(i)] * 4
                finished += 1
            else:
                with pytest.raises(KeyError):
                    h5[f"comp_{i}/result_0"]
    assert finished >= DONE
    values = _loaded(out)
    assert all(np.array_equal(values[i], np.full(4, float(i))) for i in range(DONE))


def _loaded(out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingResultsWarning)
        return load(out)


def _resume(tmp_path, storage):
    """Run the same script again (its release file exists: every call returns at once)."""
    out, release = str(tmp_path / "run"), str(tmp_path / "release")
    assert os.path.exists(release)
    done = subprocess.run([sys.executable, "-c", _script(out, release, storage)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "the run finished" in done.stdout


def test_parent_killed_single_file_opens_and_finished_calls_read(tmp_path):
    """hdf5-single: no process holds the results file open for writing while calls run
    (workers write segments, the file is rebuilt when the run finishes), so a kill never
    damages it; the finished calls are in segments that plain h5py opens, and a resume
    puts every call into the one file."""
    out = _kill_parent(tmp_path, "hdf5-single", _shards_done)
    with h5py.File(os.path.join(out, "finish_below.h5"), "r") as h5:  # plain h5py
        assert sorted(h5, key=lambda k: int(k[5:])) == [f"comp_{i}" for i in range(12)]
    payload = os.path.join(out, "finish_below_payload")
    seen = set()
    for name in os.listdir(payload):
        if name.startswith("."):  # a killed worker's temporary file: not a result file
            continue
        with h5py.File(os.path.join(payload, name), "r") as h5:  # plain h5py, with locking
            seen |= {int(k[5:]) for k in h5 if k.startswith("comp_")}
            seen |= set(h5["rows/call_index"][()].tolist() if "rows" in h5 else ())
    assert set(range(DONE)) <= seen
    assert all(np.array_equal(_loaded(out)[i], np.full(4, float(i))) for i in range(DONE))
    _resume(tmp_path, "hdf5-single")
    assert not os.path.exists(payload)
    with h5py.File(os.path.join(out, "finish_below.h5"), "r") as h5:
        assert [h5[f"comp_{i}/result_0"][()].tolist() for i in range(12)] == [
            [float(i)] * 4 for i in range(12)]


def _shards_done(out):
    return all(v is not None for v in _loaded(out)[:DONE])


def test_parent_killed_shards_read_back_without_a_container(tmp_path):
    out = _kill_parent(tmp_path, "hdf5-shards", _shards_done)
    values = _loaded(out)
    assert all(np.array_equal(values[i], np.full(4, float(i))) for i in range(DONE))
    for path in os.listdir(os.path.join(out, "finish_below_payload")):
        if path.startswith("."):  # a killed worker's temporary file: not a result file
            continue
        with h5py.File(os.path.join(out, "finish_below_payload", path), "r") as h5:  # plain
            assert all(k.startswith("comp_") or k == "rows" for k in h5)
    _resume(tmp_path, "hdf5-shards")
    assert [int(v[0]) for v in load(out)] == list(range(12))
