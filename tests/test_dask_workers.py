"""Backend "dask" against its workers: how programs load there, who can reach them, what a
dying worker costs, and what Ctrl-C and a killed parent leave behind. Real clusters, real
processes, a real second Unix user."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from acme_core import ParallelComputationError, ParallelMap
from tests.helpers.dask_funcs import crash_on, dashboard_status
from tests.helpers.modules import import_fresh
from tests.helpers.security_probe import needs_root, run_victim_and_probe
from tests.helpers.soak import default_and_soak

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.usefixtures("no_dask_client_left")


# ------------------------------------------------------------------ helpers
# ------------------------------------------------------------------ programs load in the main thread
def test_signal_handler_module_on_the_runs_own_cluster(sigmod):
    pmap = ParallelMap(sigmod.double, [1, 2], write_worker_results=False, backend="dask",
                       n_workers=2)
    assert pmap.compute() == [2, 4]


def test_signal_handler_module_on_a_users_restarted_cluster(sigmod, user_client):
    user_client.restart()                 # fresh workers: none has imported sigmod yet
    pmap = ParallelMap(sigmod.double, [1, 2], write_worker_results=False)
    assert pmap.backend == "dask"
    assert pmap.compute() == [2, 4]
    assert user_client.status == "running"


def test_a_program_that_cannot_load_on_workers_fails_each_call_once(tmp_path, caplog):
    mod = import_fresh(tmp_path, f"parentonly_{uuid.uuid4().hex[:6]}", f"""
        import os

        if os.getpid() != {os.getpid()}:
            raise ImportError("this module imports only in the parent process")


        def double(x):
            return 2 * x
    """)
    pmap = ParallelMap(mod.double, [1, 2, 3], write_worker_results=False, backend="dask",
                       n_workers=2)
    with caplog.at_level(logging.WARNING), pytest.raises(ParallelComputationError) as info:
        pmap.compute()
    rows = list(info.value.failures)
    assert [r.index for r in rows] == [0, 1, 2]
    assert {(r.kind, r.exc_type, r.attempts) for r in rows} == {("error", "ImportError", 1)}
    assert all("imports only in the parent process" in r.message for r in rows)
    assert "lost" not in caplog.text.lower(), caplog.text     # no worker was lost, no retry
    sys.path.remove(str(tmp_path))


# ------------------------------------------------------------------ only the owner reaches the run
@needs_root
def test_another_user_cannot_reach_a_dask_run(tmp_path):
    text = run_victim_and_probe(tmp_path, "dask")
    print(text)
    assert "no direct access to the secret" in text, text
    assert text.count("REFUSED scheduler") == 3, text
    assert text.count("REFUSED worker") == 4, text
    assert "CONNECTED" not in text and "RAN-CODE" not in text and "WORKER-ANSWERED" not in text
    assert "HTTP-READABLE" not in text, text


# ------------------------------------------------------------------ a dying worker costs one call
def _crash_run(n_runs: int) -> list[tuple[list[int], str]]:
    """``n_runs`` runs of 40 calls where call 17 segfaults: (failed indices, message)."""
    seen = []
    for _ in range(n_runs):
        start = time.monotonic()
        pmap = ParallelMap(crash_on, list(range(40)), 17, write_worker_results=False,
                           backend="dask", n_workers=2, verbose=False)
        with pytest.raises(ParallelComputationError) as info:
            pmap.compute()
        seen.append((info.value.failures.indices, str(info.value)))
        print(f"failed {seen[-1][0]} in {time.monotonic() - start:.1f} s")
    return seen


@default_and_soak("runs", 2, 100, soak_timeout=3600)  # 100 runs took 25 min under load
def test_a_segfaulting_call_costs_only_itself(runs):
    outcomes = _crash_run(runs)
    assert [failed for failed, _ in outcomes] == [[17]] * runs
    for _, message in outcomes:
        assert "1/40 tasks failed" in message     # the other 39 have their results


# ------------------------------------------------------------------ Ctrl-C, SIGTERM, SIGKILL
def _start_script(tmp_path, n_calls: int = 12, seconds: float = 3.0) -> subprocess.Popen:
    """A user's script running ``backend="dask"`` in its own process group (as a terminal
    starts it); returns once three calls have started."""
    for old in tmp_path.glob("started-*"):
        old.unlink()
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import signal
        import sys
        sys.path.insert(0, {REPO!r})
        from acme_core import ParallelMap
        from tests.helpers.dask_funcs import nap_counted

        if __name__ == "__main__":
            # SIGTERM as SIGINT, as the core's run loop makes it (this checks the dask side:
            # its cleanup under that handler)
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            pmap = ParallelMap(nap_counted, list(range({n_calls})), {seconds}, {str(tmp_path)!r},
                               backend="dask", n_workers=2,
                               output_dir={str(tmp_path / "out")!r})
            pmap.compute()
            print("AFTER COMPUTE", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 180
    while len(list(tmp_path.glob("started-*"))) < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.1)
    return proc


def _descendants(pid: int) -> list:
    import psutil

    return psutil.Process(pid).children(recursive=True)


def _assert_all_gone(procs: list, within: float = 10.0) -> float:
    """Every process of ``procs`` has exited within ``within`` s; returns how long it took."""
    import psutil

    start = time.monotonic()
    while True:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p.pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return time.monotonic() - start
        assert time.monotonic() - start < within, f"still alive after {within} s: {alive}"
        time.sleep(0.2)


def _interrupt(tmp_path, how: str) -> tuple[int, str, str, list]:
    proc = _start_script(tmp_path)
    procs = [*_descendants(proc.pid)]
    import psutil

    procs.append(psutil.Process(proc.pid))
    if how == "SIGINT to the process group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err, procs


@pytest.mark.parametrize("how", ["SIGINT to the process group", "SIGTERM to the parent"])
def test_interrupting_a_dask_run_ends_cleanly_five_times_of_five(tmp_path, how):
    for attempt in range(5):
        code, out, err, procs = _interrupt(tmp_path, how)
        print(f"try {attempt}: exit code {code}, {len(err.splitlines())} stderr lines")
        assert "AFTER COMPUTE" not in out
        assert "Interrupted:" in err and "compute() again" in err, err
        # what the run prints, up to the resume message: a few lines, no worker traceback;
        # after it at most Python's own traceback of the KeyboardInterrupt the core re-raises
        before, after = err.split("Interrupted:")
        assert len(before.splitlines()) < 15 and "Traceback" not in before, err
        assert after.count("Traceback") <= 1 and after.rstrip().endswith(
            ("KeyboardInterrupt", "compute() again: only the missing calls run.")), err
        print(f"  every process gone {_assert_all_gone(procs):.1f} s after the parent ended")


def test_killing_the_parent_leaves_no_worker(tmp_path):
    proc = _start_script(tmp_path)
    workers = _descendants(proc.pid)
    assert len(workers) >= 2
    proc.kill()
    proc.communicate(timeout=60)
    print(f"workers gone {_assert_all_gone(workers):.1f} s after SIGKILL of the parent")


# ------------------------------------------------------------------ a script without a main guard
def test_a_script_without_main_guard_gets_one_clear_error_before_any_worker(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from acme_core import ParallelMap
        from tests.helpers.funcs import f

        print(ParallelMap(f, [1, 2], 4, backend="dask", n_workers=2,
                          write_worker_results=False).compute())
    """))
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert text.count("MainGuardError:") == 1 and 'if __name__ == "__main__":' in text, text
    assert re.search(r"unguarded.py again, and its line [78]", text), text
    assert "Nanny" not in text and "Traceback" in text and text.count("Traceback") == 1, text
    assert len(text.splitlines()) < 20, text


def test_local_cluster_setup_in_an_unguarded_script_is_refused_before_any_worker(tmp_path):
    script = tmp_path / "unguarded_setup.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from acme_dask import local_cluster_setup

        client = local_cluster_setup(n_workers=2, interactive=False)
    """))
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 1 and text.count("MainGuardError:") == 1, text
    assert "local_cluster_setup starts worker processes" in text and "Nanny" not in text


@pytest.mark.parametrize("dashboard", [False, True])
def test_the_dashboard_is_served_only_when_asked(dashboard, caplog):
    import socket
    import warnings

    busy = socket.socket()          # dask's default dashboard port taken, as by another run
    with contextlib.suppress(OSError):
        busy.bind(("127.0.0.1", 8787))
        busy.listen()
    try:
        with caplog.at_level(logging.INFO, logger="acme_dask"), \
                warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            status = ParallelMap(dashboard_status, [0], write_worker_results=False,
                                 backend="dask", n_workers=1,
                                 backend_options={"dashboard": dashboard}).compute()
    finally:
        busy.close()
    assert status == [200 if dashboard else 404]
    assert ("dashboard accessible at http://127.0.0.1:" in caplog.text) is dashboard
    assert not [w for w in seen if "already in use" in str(w.message)]


def test_the_slurm_setup_bar_counts_down_seconds(monkeypatch):
    import io

    from acme_dask.prompts import SetupBar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    bar = SetupBar(4)
    bar.show(1, 42.4)
    bar.show(3, 17.0)
    bar.close()
    text = screen.getvalue()
    assert "SLURM workers ready: 1/4" in text and "time-out in 42 s" in text, text
    assert "3/4" in text and "time-out in 17 s" in text and "timeout at" not in text, text


# ------------------------------------------------------------------ time limits, stopped workers
def test_a_call_over_its_time_limit_fails_alone_on_dask(tmp_path):
    """timeout=: the worker running call 3 (which never returns) is killed by its nanny and
    the call fails with kind "timeout"; its neighbours, in its batch too, finish."""
    from acme_dask import cluster_cleanup

    from tests.helpers.fault_runs import process_gone, run_with_a_hung_call
    from tests.helpers.waiting import wait_for

    markers = tmp_path / "m"
    markers.mkdir()
    try:   # the cluster stays after the run: its worker was killed, not the cluster stopped
        run_with_a_hung_call(markers, within=90, backend="dask", stop_client=False)
        hung = [int(n.split("_")[1]) for n in os.listdir(markers) if n.startswith("3_")]
        assert len(hung) == 1 and wait_for(lambda: process_gone(hung[0]), 30)
    finally:
        cluster_cleanup()


def test_a_stopped_dask_worker_is_killed_and_its_calls_run_elsewhere(tmp_path):
    """SIGSTOP the worker running call 4: its heartbeats to the scheduler stop, after 3 s
    its nanny kills it, and call 4 runs again on another worker."""
    from tests.helpers.fault_funcs import pid_then_sleep
    from tests.helpers.fault_runs import process_gone, runs
    from tests.helpers.waiting import wait_for

    markers = tmp_path / "m"
    markers.mkdir()
    stopped: list[int] = []

    def stop_the_worker_of_call_4():
        assert wait_for(lambda: any(n.startswith("4_") for n in os.listdir(markers)), 120)
        pid = next(int(n.split("_")[1]) for n in os.listdir(markers) if n.startswith("4_"))
        stopped.append(pid)
        os.kill(pid, signal.SIGSTOP)

    import threading

    thread = threading.Thread(target=stop_the_worker_of_call_4, daemon=True)
    thread.start()
    pmap = ParallelMap(pid_then_sleep, list(range(10)), str(markers), 1.0,
                       write_worker_results=False, backend="dask", n_workers=2,
                       backend_options={"heartbeat_timeout": 3}, verbose=False)
    assert pmap.compute() == list(range(10))
    thread.join(timeout=10)
    assert len(stopped) == 1 and wait_for(lambda: process_gone(stopped[0]), 30)
    assert runs(markers)[4] == 2       # it ran again elsewhere
