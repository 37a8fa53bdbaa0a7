"""Every way a call can die costs only that call; Ctrl-C, SIGTERM and a killed parent leave
nothing running (joblib backend, real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import psutil
import pytest

from acme_core import ParallelComputationError, ParallelMap
from acme_core.calls import CallBatch, CallProgram, run_batch, set_call_record
from acme_core.worker_watch import RecordFile, read_state
from tests.helpers.fault_funcs import (
    generator_for,
    lock_for,
    pid_then_sleep,
    poison,
    raise_bad,
)
from tests.helpers.fault_runs import process_gone, run_with_a_hung_call, runs
from tests.helpers.scripts import communicate_or_fail, run_script, start_script
from tests.helpers.soak import default_and_soak
from tests.helpers.waiting import wait_for


def _poison_run(tmp_path, how):
    markers = tmp_path / f"markers-{how}"
    markers.mkdir()
    pmap = ParallelMap(poison, list(range(40)), str(markers), how, write_worker_results=False,
                       n_workers=2, verbose=False)
    with pytest.raises(ParallelComputationError) as err:
        pmap.compute()
    return err.value.failures, markers


# ------------------------------------------------------------------ calls that kill their worker
@pytest.mark.parametrize("how", ["sigkill", "segfault", "exit"])
def test_a_call_that_kills_its_worker_every_time_fails_alone(tmp_path, how):
    failures, markers = _poison_run(tmp_path, how)
    rows = list(failures)
    assert [r.index for r in rows] == [7]
    assert rows[0].kind == "killed-worker" and rows[0].attempts == 4
    assert "killed its worker 4 times" in rows[0].message
    executed = runs(markers)
    assert executed[7] == 4  # charged four attempts, each alone in its batch
    assert set(executed) == set(range(40))


def test_sigkill_poison_among_forty_keeps_thirty_nine_results_on_disk(tmp_path):
    from acme_core import load

    markers, out = tmp_path / "m", str(tmp_path / "run")
    markers.mkdir()
    pmap = ParallelMap(poison, list(range(40)), str(markers), "sigkill", output_dir=out,
                       n_workers=2, verbose=False)
    with pytest.raises(ParallelComputationError) as err:
        pmap.compute()
    assert [(r.index, r.kind) for r in err.value.failures] == [(7, "killed-worker")]
    results = load(out)
    assert [i for i, r in enumerate(results) if r is None] == [7]
    assert [int(r[0]) for i, r in enumerate(results) if i != 7] == [10 * i for i in range(40)
                                                                    if i != 7]


@pytest.mark.slow
@default_and_soak("runs", 1, 10)
@pytest.mark.parametrize("how", ["segfault", "exit"])
def test_poison_in_every_run_of_forty_costs_exactly_one_call(tmp_path, how, runs):
    for attempt in range(runs):
        (tmp_path / str(attempt)).mkdir()
        failures, _ = _poison_run(tmp_path / str(attempt), how)
        assert [(r.index, r.kind) for r in failures] == [(7, "killed-worker")], attempt


# ------------------------------------------------------------------ what cannot travel back
def test_an_unpicklable_return_value_fails_only_its_call():
    pmap = ParallelMap(lock_for, list(range(300)), write_worker_results=False, n_workers=2,
                       verbose=False)
    with pytest.raises(ParallelComputationError) as err:
        pmap.compute()
    rows = list(err.value.failures)
    assert [(r.index, r.kind, r.attempts) for r in rows] == [(150, "unpicklable", 1)]
    assert "lock" in rows[0].message and "cannot be pickled" in rows[0].message


def test_a_generator_return_value_fails_only_its_call():
    with pytest.raises(ParallelComputationError) as err:
        ParallelMap(generator_for, list(range(10)), write_worker_results=False, n_workers=2,
                    verbose=False).compute()
    rows = list(err.value.failures)
    assert [(r.index, r.kind) for r in rows] == [(3, "unpicklable")]
    assert "generator" in rows[0].message


def test_exceptions_that_cannot_be_printed_or_pickled_fail_only_their_call():
    with pytest.raises(ParallelComputationError) as err:
        ParallelMap(raise_bad, list(range(8)), write_worker_results=False, n_workers=2,
                    verbose=False).compute()
    rows = {r.index: r for r in err.value.failures}
    assert sorted(rows) == [2, 3]
    assert all(r.kind == "error" and r.attempts == 1 for r in rows.values())
    assert rows[2].exc_type == "BadStr" and "__str__ failed" in rows[2].message
    assert "raise BadStr()" in rows[2].traceback
    assert rows[3].exc_type == "Unpicklable" and rows[3].message == "bad 3"


# ------------------------------------------------------------------ Ctrl-C, SIGTERM, SIGKILL
SCRIPT = """
import faulthandler, signal, sys
faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test's view into a hang
sys.path.insert(0, {root!r})
from acme_core import ParallelMap
from tests.helpers.fault_funcs import generator_for, hang_on, lock_for, pid_then_sleep, poison, raise_bad

if __name__ == "__main__":
    pmap = ParallelMap(pid_then_sleep, list(range({n})), {markers!r}, {seconds},
                       output_dir={out!r}, n_workers=2, verbose=False)
    pmap.compute()
    print("ALL DONE")
"""


def _start_script(tmp_path, name="run", n=40, seconds=1.0, env=None):
    markers, out = tmp_path / f"markers-{name}", str(tmp_path / name)
    markers.mkdir()
    proc = start_script(tmp_path, name, SCRIPT, own_group=True, markers=str(markers), out=out,
                        n=n, seconds=seconds, env=env)
    assert wait_for(lambda: len(os.listdir(markers)) >= 2, 120), proc.communicate()
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers
    return proc, workers


def _no_process_left(workers, timeout=10.0):
    gone, alive = psutil.wait_procs(workers, timeout=timeout)
    return [p.pid for p in alive]


@pytest.mark.parametrize("attempt", range(5))
def test_terminal_ctrl_c_ends_with_the_resume_message(tmp_path, attempt):
    """Five tries: long calls, short calls (the signal lands anywhere in the run loop),
    and Ctrl-C pressed twice (the second lands in the cleanup)."""
    seconds, pause, twice = [(1.0, 0, False), (0.02, 0.3, False), (0.02, 0.7, False),
                             (0.02, 0.3, True), (1.0, 0, True)][attempt]
    proc, workers = _start_script(tmp_path, n=2000 if seconds < 1 else 40, seconds=seconds)
    time.sleep(pause)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole process group
    if twice:
        time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = communicate_or_fail(proc)
    lines = stderr.strip().splitlines()
    assert "ALL DONE" not in stdout
    assert any(line.startswith("acme_core ERROR: Interrupted:") and "compute() again" in line
               for line in lines), stderr
    assert len(lines) < 15, stderr
    assert lines[-1] == "KeyboardInterrupt", stderr
    assert _no_process_left(workers) == []


def test_sigterm_of_the_parent_ends_the_run_as_ctrl_c_does(tmp_path):
    proc, workers = _start_script(tmp_path)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = communicate_or_fail(proc)
    assert "ALL DONE" not in stdout
    assert "Interrupted:" in stderr and "compute() again" in stderr, stderr
    assert len(stderr.strip().splitlines()) < 15, stderr
    assert _no_process_left(workers) == []


def test_sigkill_of_the_parent_leaves_no_worker(tmp_path):
    # a temporary folder of its own: any run starting on this machine meanwhile (beside
    # CI) would remove the killed run's folder before this test looks at it
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    proc, workers = _start_script(tmp_path, env=env)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert _no_process_left(workers) == []
    # the workers held the parent's stdout: with them gone, a reader sees its end at once
    start = time.monotonic()
    proc.communicate(timeout=30)
    assert time.monotonic() - start < 10
    # the killed run's program file is in a folder named after its pid; the next run that
    # starts on this machine removes it
    left = [n for n in os.listdir(temp) if n.startswith(f"acme_joblib_{proc.pid}_")]
    assert len(left) == 1
    assert any(n.startswith("program_") for n in os.listdir(temp / left[0]))
    subprocess.run([sys.executable, "-c", "from acme_core import ParallelMap; ParallelMap("
                    "abs, [-1, -2], write_worker_results=False, n_workers=1).compute()"],
                   check=True, capture_output=True, timeout=120, cwd=tmp_path, env=env)
    assert not os.path.exists(temp / left[0])


ENDS = """
import os, sys, threading, time
sys.path.insert(0, {root!r})
import psutil
from acme_core import ParallelMap
from tests.helpers.fault_funcs import pid_then_sleep

def compute():
    results = ParallelMap(pid_then_sleep, list(range({n})), {markers!r}, {seconds},
                          write_worker_results=False, n_workers=2, verbose=False).compute()
    print("RESULTS", results, flush=True)

if __name__ == "__main__":
    thread = threading.Thread(target=compute)  # not a daemon: the interpreter waits for it
    thread.start()
    while len(os.listdir({markers!r})) < {started}:
        time.sleep(0.02)
    print("WORKERS", [p.pid for p in psutil.Process().children(recursive=True)], flush=True)
    if {join}:
        thread.join()
    # the main thread ends here
"""


@pytest.mark.parametrize("in_flight", [False, True], ids=["idle", "in-flight"])
def test_the_interpreter_exit_stops_idle_workers_and_waits_for_calls_in_flight(tmp_path,
                                                                               in_flight):
    """A script's end kills the idle workers (a worker still starting included) without a
    warning, while the calls a thread's run has in its workers when the main thread ends
    return their results first (two calls, both running: like concurrent.futures, loky
    takes no new batch once the interpreter is exiting)."""
    markers = tmp_path / "markers"
    markers.mkdir()
    n = 2 if in_flight else 200
    proc = start_script(tmp_path, "ends", ENDS, markers=str(markers), n=n,
                        seconds=0.5 if in_flight else 0.0, join=not in_flight,
                        started=2 if in_flight else 1)
    stdout, stderr = communicate_or_fail(proc)
    assert proc.returncode == 0, stderr
    assert stderr == ""
    lines = dict(line.split(" ", 1) for line in stdout.splitlines())
    assert eval(lines["RESULTS"]) == list(range(n))
    workers = [psutil.Process(pid) for pid in eval(lines["WORKERS"]) if psutil.pid_exists(pid)]
    assert _no_process_left(workers) == []


AGAIN = """
import os, signal, sys, threading, time, warnings
sys.path.insert(0, {root!r})
from acme_core import ParallelMap
from tests.helpers.fault_funcs import generator_for, hang_on, lock_for, pid_then_sleep, poison, raise_bad

def interrupt_when_started(folder):
    while len(os.listdir(folder)) < 2:
        time.sleep(0.02)
    os.killpg(os.getpgid(0), signal.SIGINT)  # as a terminal: this process and its workers

if __name__ == "__main__":
    threading.Thread(target=interrupt_when_started, args=({markers!r},), daemon=True).start()
    try:
        ParallelMap(pid_then_sleep, list(range(20)), {markers!r}, 1.0,
                    write_worker_results=False, n_workers=2).compute()
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
    print("SECOND RUN", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = ParallelMap(pid_then_sleep, list(range(20)), {markers!r}, 0.01,
                              write_worker_results=False, n_workers=2).compute()
    print("RESULTS", results == list(range(20)))
"""


def test_interrupt_then_compute_again_in_one_interpreter(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    done = run_script(tmp_path, "again", AGAIN, own_group=True, markers=str(markers))
    assert "INTERRUPTED" in done.stdout and "RESULTS True" in done.stdout, done.stderr
    second = done.stderr.split("Interrupted:", 1)[1].split("\n", 1)[1]
    assert "WARNING" not in second and "ERROR" not in second and "Traceback" not in second, \
        done.stderr


# ------------------------------------------------------------------ time limits, stopped workers
def test_a_call_over_its_time_limit_fails_alone_and_its_worker_is_killed(tmp_path):
    markers = tmp_path / "m"
    markers.mkdir()
    rows = run_with_a_hung_call(markers)
    hung_pid = int(rows[0].message.split("(pid ")[1].split(")")[0])
    assert process_gone(hung_pid)


class _KeepValues:
    keeps_values = True

    def write(self, index, value):
        return value


def test_a_workers_record_names_each_call_while_it_runs_and_when_it_started(tmp_path,
                                                                           monkeypatch):
    """What the parent reads of a worker (the call a dead worker ran, a call over its time
    limit): during each call, its own index and a start on the host's monotonic clock
    between the previous call's end and its own first line, also after the wall clock
    stepped an hour ahead during the first call; after the batch, no call."""
    folder = str(tmp_path)
    wall = time.time

    def look(x):
        state, now = read_state(folder, os.getpid()), time.monotonic()
        monkeypatch.setattr(time, "time", lambda: wall() + 3600)  # an NTP step, a suspend
        time.sleep(0.005)  # so a start noted once a batch (not once a call) shows
        return state.index, state.started, now

    program = CallProgram("r1", look, (("pos", "x", 0),), (), _KeepValues(), split=([0] * 5,))
    set_call_record(RecordFile(folder))
    try:
        before = time.monotonic()
        outcome = run_batch(program, CallBatch("r1", (3, 1, 4, 0, 2)))
    finally:
        set_call_record(None)
        monkeypatch.undo()
    assert [index for index, _, _ in outcome.values] == [3, 1, 4, 0, 2]
    previous_end = before
    for _, started, now in outcome.values:
        assert previous_end - 1e-3 <= started <= now + 1e-3, (previous_end, started, now)
        previous_end = now + 0.005
    assert not read_state(folder, os.getpid()).running


def test_a_call_record_of_the_earlier_protocol_is_refused_when_it_is_set():
    class StartedOnly:
        def started(self, index):
            pass

        def idle(self):
            pass

    with pytest.raises(TypeError, match=r"StartedOnly is not a CallRecord: it needs marks\(\)"):
        set_call_record(StartedOnly())


def test_timeout_is_checked_before_anything_starts():
    with pytest.raises(ValueError, match="`timeout` has to be None or a number of seconds > 0"):
        ParallelMap(abs, [1, 2], timeout=0, write_worker_results=False)
    with pytest.raises(TypeError, match="`timeout`"):
        ParallelMap(abs, [1, 2], timeout="10", write_worker_results=False)


def test_a_stopped_worker_is_killed_and_its_calls_run_elsewhere(tmp_path):
    """SIGSTOP the worker running call 4: without a heartbeat for 3 s it counts as hung,
    is killed, and call 4 runs again on another worker."""
    import threading

    markers = tmp_path / "m"
    markers.mkdir()
    stopped: list[int] = []

    def stop_the_worker_of_call_4():
        assert wait_for(lambda: any(n.startswith("4_") for n in os.listdir(markers)), 120)
        name = next(n for n in os.listdir(markers) if n.startswith("4_"))
        stopped.append(int(name.split("_")[1]))
        os.kill(stopped[0], signal.SIGSTOP)

    thread = threading.Thread(target=stop_the_worker_of_call_4, daemon=True)
    thread.start()
    results = ParallelMap(pid_then_sleep, list(range(10)), str(markers), 1.0,
                          write_worker_results=False, n_workers=2,
                          backend_options={"heartbeat_timeout": 3}, verbose=False).compute()
    thread.join(timeout=10)
    assert results == list(range(10))
    assert len(stopped) == 1 and process_gone(stopped[0])
    assert runs(markers)[4] == 2  # it ran again elsewhere


# ------------------------------------------------------------------ a disk that fills up
@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (mounting needs root, as in CI)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("storage", ["hdf5", "hdf5-single", "hdf5-shards"])
def test_a_full_disk_fails_the_unstored_calls_and_resume_completes(small_disk, storage):
    from acme_core import load
    from tests.helpers.fault_funcs import big_result

    out = str(small_disk / "run")
    pmap = ParallelMap(big_result, list(range(40)), output_dir=out, n_workers=2,
                       storage=storage, verbose=False)
    with pytest.raises(ParallelComputationError) as err:
        pmap.compute()
    rows = list(err.value.failures)
    assert rows and all(r.kind == "storage" for r in rows)
    assert "free space" in str(err.value) and "compute() again" in str(err.value)
    failed = {r.index for r in rows}
    stored = load(out)
    ok = set(range(40)) - failed
    assert ok  # some results were stored before the disk filled
    # every call reported as not failed reads back (one not made durable is a failure)
    assert all(stored[i] is not None and float(stored[i][0]) == i for i in ok)

    subprocess.run(["mount", "-o", "remount,size=40m", str(small_disk)], check=True)
    ParallelMap(big_result, list(range(40)), output_dir=out, n_workers=2, storage=storage,
                verbose=False).compute()
    assert [float(r[0]) for r in load(out)] == [float(i) for i in range(40)]


SEGFAULT = """
import sys
sys.path.insert(0, {root!r})
from acme_core import ParallelComputationError, ParallelMap
from tests.helpers.fault_funcs import poison

if __name__ == "__main__":
    try:
        ParallelMap(poison, list(range(40)), {markers!r}, "segfault",
                    write_worker_results=False, n_workers=2).compute()
    except ParallelComputationError as err:
        print([(row.index, row.kind) for row in err.failures])
"""


def test_a_segfaulting_call_reports_one_crash_dump_and_one_line_per_loss(tmp_path):
    markers = tmp_path / "m"
    markers.mkdir()
    done = run_script(tmp_path, "segv", SEGFAULT, timeout=300, markers=str(markers))
    assert done.stdout.strip() == "[(7, 'killed-worker')]", done.stderr
    assert done.stderr.count("Fatal Python error: Segmentation fault") == 1  # where it crashed
    lost = [line for line in done.stderr.splitlines() if "killed its worker" in line]
    assert [line.split("attempt ")[1][:6] for line in lost] == [f"{k} of 4" for k in (1, 2, 3, 4)]
    assert "UserWarning" not in done.stderr and "lost with its worker" not in done.stderr


def test_program_files_of_the_old_layout_go_at_the_next_start(tmp_path):
    """Program files that runs of the old layout wrote straight into the temp folder, with
    no owner pid in their name, are removed at the next start once unchanged for an hour;
    a fresh one is kept (a run of the old layout could still be loading it)."""
    folder = tempfile.gettempdir()
    old, fresh = (os.path.join(folder, f"acme_core_{uuid.uuid4().hex}_{tag}.pickle")
                  for tag in ("old12345", "new12345"))
    for path in (old, fresh):
        with open(path, "wb") as fh:
            fh.write(b"program")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    try:
        subprocess.run([sys.executable, "-c", "from acme_core import ParallelMap; ParallelMap("
                        "abs, [-1, -2], write_worker_results=False, n_workers=1).compute()"],
                       check=True, capture_output=True, timeout=120, cwd=tmp_path)
        assert not os.path.exists(old) and os.path.exists(fresh)
    finally:
        for path in (old, fresh):
            if os.path.exists(path):
                os.remove(path)
