"""``ParallelMap.as_completed()``: results while the run goes on, every index once, failures
raised as compute() raises them, an early exit keeps what finished."""

from __future__ import annotations

import os

import h5py
import pytest

from acme_core import ParallelComputationError, ParallelMap, load
from acme_core.cli import run_status
from tests.helpers.manifests import done_calls
from tests.helpers.streaming_funcs import gated

N = 12


def finished(flags) -> int:
    return sum(name.startswith("finished_") for name in os.listdir(flags))


def consume(pmap, flags):
    """Iterate; at the first result, check most calls are still pending, then release
    them. Returns what was yielded and the error raised at the end."""
    seen, pending_at_first = [], None
    with pytest.raises(ParallelComputationError) as info:
        for index, result in pmap.as_completed():
            if not seen:
                pending_at_first = N - finished(flags)
                open(os.path.join(flags, "release"), "w").close()
            seen.append((index, result))
    return seen, pending_at_first, info.value


def check_run(pmap, flags, storage):
    seen, pending_at_first, err = consume(pmap, flags)
    assert seen[0][0] == 0 and pending_at_first >= N // 2
    assert sorted(i for i, _ in seen) == [i for i in range(N) if i != 5]  # each exactly once
    assert err.failures.indices == [5] and "call 5 fails on purpose" in str(err)
    assert pmap.failures.indices == [5]
    if storage == "memory":
        assert all(value == 10 * i for i, value in seen)
    else:
        for i, path in seen:
            assert path.endswith(f"gated_{i}.h5")
            with h5py.File(path, "r") as h5:
                assert h5["result_0"][()].tolist() == [10 * i]
        with pytest.warns(UserWarning, match="1 of 12 calls have no result.*call 5"):
            values = load(pmap.output_dir)
        assert [None if r is None else int(r[0]) for r in values] == [
            None if i == 5 else 10 * i for i in range(N)]
        text, complete = run_status(pmap.output_dir)
        assert not complete and "state     failed" in text and f"done {N - 1}, failed 1" in text


def make(backend, storage, tmp_path, **extra):
    flags = tmp_path / "flags"
    flags.mkdir()
    disk = {"output_dir": str(tmp_path / "run")} if storage == "hdf5" else {
        "write_worker_results": False}
    return ParallelMap(gated, list(range(N)), str(flags), backend=backend, n_workers=2,
                       verbose=False, **disk, **extra), str(flags)


@pytest.mark.parametrize("storage", ["memory", "hdf5"])
def test_joblib(storage, tmp_path):
    pmap, flags = make("joblib", storage, tmp_path)
    check_run(pmap, flags, storage)


@pytest.mark.parametrize("storage", ["memory", "hdf5"])
def test_dask(storage, tmp_path, no_dask_client_left):
    pmap, flags = make("dask", storage, tmp_path)
    check_run(pmap, flags, storage)


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["memory", "hdf5"])
def test_slurm(storage, tmp_path, slurm, no_dask_client_left):
    pmap, flags = make("slurm", storage, tmp_path, partition=slurm["default_partition"],
                       mem_per_worker="1GB", backend_options={"job_name": "acme_ux_stream"})
    check_run(pmap, flags, storage)


def test_leaving_early_keeps_what_finished_and_resume_runs_the_rest(tmp_path):
    pmap, flags = make("joblib", "hdf5", tmp_path)
    for index, _ in pmap.as_completed():
        assert index == 0
        break  # the other calls wait for the release that never comes: they are cancelled
    text, complete = run_status(pmap.output_dir)
    assert not complete and "state     interrupted" in text and "done 1, failed 0" in text
    open(os.path.join(flags, "release"), "w").close()
    again = ParallelMap(gated, list(range(N)), flags, output_dir=pmap.output_dir,
                        n_workers=2, verbose=False)
    with pytest.raises(ParallelComputationError):
        again.compute()
    assert sorted(int(n.split("_")[1]) for n in os.listdir(flags) if n.startswith("fin")) == list(
        range(N))
    assert "done 11, failed 1, missing 0" in run_status(pmap.output_dir)[0]


CTRL_C_SCRIPT = """
import sys, time
from acme_core import ParallelMap
from tests.helpers.manifests import done_calls
from tests.helpers.streaming_funcs import gated

if __name__ == "__main__":
    pmap = ParallelMap(gated, list(range(12)), sys.argv[2], output_dir=sys.argv[1],
                       n_workers=2, verbose=False)
    for index, path in pmap.as_completed():
        print("got", index, flush=True)
        if sys.argv[3] == "in-the-loop-body":
            while True:       # Ctrl-C arrives here, in the caller's own code
                time.sleep(0.05)
"""


@pytest.mark.parametrize("where", ["waiting-for-results", "in-the-loop-body"])
def test_ctrl_c_keeps_what_finished_as_compute_does(tmp_path, where):
    import signal
    import subprocess
    import sys

    from tests.helpers.waiting import wait_until

    flags = tmp_path / "flags"
    flags.mkdir()
    script = tmp_path / "script.py"
    script.write_text(CTRL_C_SCRIPT)
    out = tmp_path / "run"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(flags), where],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, cwd=root,
                            env={**os.environ, "PYTHONPATH": root})
    assert proc.stdout.readline().strip() == "got 0"  # the first result arrived
    wait_until(lambda: done_calls(out), "call 0 recorded as done")
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "KeyboardInterrupt" in stderr
    text, complete = run_status(str(out))
    assert not complete and "state     interrupted" in text and "done 1, failed 0" in text
    (flags / "release").touch()
    with pytest.raises(ParallelComputationError):  # call 5 fails on purpose
        ParallelMap(gated, list(range(N)), str(flags), output_dir=str(out), n_workers=2,
                    verbose=False).compute()
    assert "done 11, failed 1, missing 0" in run_status(str(out))[0]
