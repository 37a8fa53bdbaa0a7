"""The joblib (loky) executor.

The run's program (function, broadcast arguments, storage writer) is written once to a
temporary file that every worker loads once per run, so broadcast arguments cost one
transfer per worker, not one per call. Batches are submitted to a loky process pool that
stays alive between runs (idle workers exit after ``idle_timeout`` seconds).

The pool is our own, not loky's process-wide reusable executor: that singleton is shared
with ``joblib.Parallel``, and resizing or re-configuring it from here would break a user's
joblib code running in the same interpreter.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
import warnings
from typing import Any

from acme_core.calls import (
    KILLED_WORKER,
    LOST_NEIGHBOUR,
    LOST_WORKER,
    TIMEOUT,
    BatchOutcome,
    CallBatch,
    ProgramFile,
    run_batch_pickled,
)
from acme_core.executor import ExecutorSettings, FuturesExecutor, RunContext
from acme_core.resources import stops_workers, usable_cores
from acme_core.worker_watch import read_state

from .folders import run_folder
from .worker import init_worker

log = logging.getLogger("acme_joblib")



#: Thread pools of numerical libraries, limited in workers so n workers do not each start
#: one thread per core (joblib does the same).
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

_pool_lock = threading.Lock()
_shared: dict[str, Any] = {"pool": None, "key": None, "records": None, "made": 0,
                           "in_flight": 0, "exit_hook": False, "owner": None}

#: Seconds between two looks at the workers' records while calls run.
WATCH_SECONDS = 0.25

# loky warns (four lines each) when a worker stopped while jobs were queued: after a worker
# died that is expected, and the run loop reports each loss once itself.
warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given",
                        category=UserWarning)


def _thread_limits(n_workers: int) -> dict[str, str]:
    per_worker = str(max(1, usable_cores() // n_workers))
    return {var: per_worker for var in _THREAD_VARIABLES if var not in os.environ}


def shared_pool(n_workers: int, idle_timeout: float) -> Any:
    """The process pool of this interpreter, started anew when it broke or its size changed.

    Its workers ignore Ctrl-C (this process handles it), note each call's start in a record
    file of the pool's own folder (:func:`pool_records`), and exit when this process dies.
    """
    from joblib.externals.loky.process_executor import ProcessPoolExecutor

    with _pool_lock:
        pool, key = _shared["pool"], (n_workers, idle_timeout)
        usable = pool is not None and not (pool._flags.broken or pool._flags.shutdown)
        if usable and _shared["key"] == key:
            return pool
        if usable:
            pool.shutdown(wait=False, kill_workers=True)
        _shared["made"] += 1
        folder = run_folder()
        records = os.path.join(folder, f"pool-{_shared['made']}")
        os.makedirs(records, exist_ok=True)
        # the previous pool's records may still be read for its break; older ones not
        shutil.rmtree(os.path.join(folder, f"pool-{_shared['made'] - 2}"), ignore_errors=True)
        pool = ProcessPoolExecutor(max_workers=n_workers, timeout=idle_timeout,
                                   env=_thread_limits(n_workers), initializer=init_worker,
                                   initargs=(records, os.getpid()))
        _shared.update(pool=pool, key=key, records=records, owner=os.getpid())
        return pool


def _stop_idle_pool_at_exit() -> None:
    """At the interpreter's exit, kill the pool's workers when no batch is in flight.

    loky's own exit handler stops workers by sending each a sentinel and joining it, so it
    waits for a worker that is still starting (importing) to finish starting: a short run
    whose calls all went to the first worker spent 20-70 ms of its exit, and up to 0.17 s
    on a loaded machine, waiting so for the second. Idle workers hold nothing of a run's
    (every result left them before ``compute()`` returned), so they are killed instead.
    A batch still in flight (a thread of the user's computing while the main thread ends)
    leaves loky's handler to wait for it as before.
    """
    with _pool_lock:
        pool = _shared["pool"]
        # a child forked from this process (os.fork) runs the hook too when it ends: the
        # workers are its parent's
        if pool is None or _shared["in_flight"] or _shared["owner"] != os.getpid():
            return
        _shared["pool"] = None
    with contextlib.suppress(Exception):
        pool.shutdown(wait=False, kill_workers=True)


def _register_exit_hook() -> None:
    """Register :func:`_stop_idle_pool_at_exit` to run before loky's exit handler.

    Both go through ``threading._register_atexit`` (the hook ``concurrent.futures`` and
    loky use: it runs before the interpreter joins its threads, and in reverse order of
    registration), and loky registers its handler at a pool's first submit: registered
    after that, ours runs first. Without that hook (another Python) workers stop as loky
    stops them."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None and not _shared["exit_hook"]:
        _shared["exit_hook"] = True
        with contextlib.suppress(RuntimeError):  # the interpreter is already exiting
            register(_stop_idle_pool_at_exit)


def _batch_done(_future: Any) -> None:
    with _pool_lock:
        _shared["in_flight"] -= 1


def pool_records() -> str | None:
    """The folder of the current pool's worker records."""
    return _shared["records"]


def shutdown_pool() -> None:
    """Kill this interpreter's worker processes (``stop_client=True``, Ctrl-C)."""
    with _pool_lock:
        pool, _shared["pool"] = _shared["pool"], None
    if pool is None:
        return
    workers = list(pool._processes.values())
    try:
        pool.shutdown(wait=True, kill_workers=True)
    finally:
        # should loky's manager thread have died first, no worker may outlive the pool
        # (the interpreter would wait for it at exit)
        for process in workers:
            if process.exitcode is None:
                with contextlib.suppress(OSError, ValueError):
                    process.kill()
                    process.join(timeout=5)


@contextlib.contextmanager
def _sigint_blocked() -> Any:
    """Block SIGINT in this thread while loky may start workers: a forked worker inherits
    the mask, so a Ctrl-C cannot kill it (with a traceback) before it ignores SIGINT; this
    process gets the signal when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _signal_name(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class JoblibExecutor(FuturesExecutor):
    """Runs batches in loky worker processes.

    A worker that dies takes loky's whole pool with it, and every batch in flight fails.
    The workers' records tell which call each dead worker was running: only that call is
    charged (kind ``"killed-worker"``); the calls beside it run again free of charge. A call
    running longer than ``timeout`` seconds has its worker killed (kind ``"timeout"``), and
    a worker that stops beating for ``heartbeat_timeout`` seconds is killed and its calls
    run elsewhere.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> ParallelMap(abs, [-1, -2], write_worker_results=False, backend="joblib",
    ...             n_workers=2, verbose=False).compute()
    [1, 2]
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        super().__init__(settings)
        self._timeout = _seconds(settings.options, "idle_timeout", 300)
        self._heartbeat = _seconds(settings.options, "heartbeat_timeout", 120)
        n = settings.n_workers
        self._n = usable_cores() if n == "auto" else int(n)
        self._call_limit = settings.timeout
        self._pool: Any = None
        self._ref: ProgramFile | None = None
        self._batches: dict[int, CallBatch] = {}  # id(future) -> its batch
        self._killed: dict[int, tuple[int, str, str]] = {}  # pid -> (call, kind, reason)
        self._breaks: dict[int, dict[int, tuple[str, str]]] = {}  # id(error) -> culprits
        self._seen: dict[int, Any] = {}  # pid -> ((beat, seen at), ((call, start), since))
        self._watched = 0.0

    @property
    def n_workers(self) -> int:
        return self._n

    def _get_pool(self) -> Any:
        return shared_pool(self._n, self._timeout)

    def start(self, run: RunContext) -> None:
        assert run.program_bytes is not None
        self._new_run()
        fd, path = tempfile.mkstemp(prefix=f"program_{run.info.run_id}_", suffix=".pickle",
                                    dir=run_folder())
        with os.fdopen(fd, "wb") as fh:
            fh.write(run.program_bytes)
        self._ref = ProgramFile(path, run.info.run_id, run.sys_path)
        self._pool = self._get_pool()
        self._batches, self._killed, self._breaks, self._seen = {}, {}, {}, {}

    def _submit_future(self, batch: CallBatch) -> Any:
        if self._pool._flags.broken or self._pool._flags.shutdown:
            self._pool = self._get_pool()
        pool = self._pool
        with _pool_lock:
            _shared["in_flight"] += 1
        try:
            with _sigint_blocked():
                future = pool.submit(run_batch_pickled, self._ref, batch)
        except BaseException:
            _batch_done(None)
            raise
        future.add_done_callback(_batch_done)
        _register_exit_hook()
        self._batches[id(future)] = batch
        # runs in loky's thread before the pool kills the surviving workers: only now do
        # the exit codes tell the worker that died from those killed after it
        future.add_done_callback(lambda f, p=pool: self._note_break(f, p))
        return future

    def _note_break(self, future: Any, pool: Any) -> None:
        from joblib.externals.loky.process_executor import BrokenProcessPool

        self._batches.pop(id(future), None)
        if future.cancelled():
            return
        exc = future.exception()
        if not isinstance(exc, BrokenProcessPool) or id(exc) in self._breaks:
            return
        records, culprits = pool_records(), {}
        for pid, process in list(pool._processes.items()):
            code = process.exitcode
            if code is None and pid not in self._killed:
                continue
            state = read_state(records, pid) if records else None
            if pid in self._killed:
                index, kind, reason = self._killed[pid]
                culprits[index] = (kind, reason)
            elif state is not None and state.running:
                culprits[state.index] = (KILLED_WORKER, f"pid {pid}, {_signal_name(code)}")
        self._breaks[id(exc)] = culprits

    def collect(self, timeout: float | None) -> list[BatchOutcome]:
        if self._watch_due():
            self._watch()
        step = timeout if timeout is None else min(timeout, WATCH_SECONDS)
        return super().collect(step)

    def _outcome(self, batch: CallBatch, result: Any) -> BatchOutcome:
        return pickle.loads(result)  # the worker pickled it (see run_batch_pickled)

    def _watch_due(self) -> bool:
        now = time.monotonic()
        if now - self._watched < WATCH_SECONDS or not self._batches:
            return False
        self._watched = now
        return True

    def _watch(self) -> None:
        """Kill the worker of a call over its time limit, and a worker that stopped beating.

        Ages are measured on the host's monotonic clock: a call's from its start (the
        worker notes it on that clock), a beat's from when this process first saw it, so a
        suspended laptop or a clock change kills nothing."""
        records, pool = pool_records(), self._pool
        if records is None or pool is None:
            return
        now = time.monotonic()
        for pid in list(pool._processes):
            state = read_state(records, pid)
            if state is None or pid in self._killed:
                continue
            beat_seen, run_seen = self._seen.get(pid, ((None, now), (None, now)))
            if state.beat != beat_seen[0]:
                beat_seen = (state.beat, now)
            if (state.index, state.started) != run_seen[0]:
                run_seen = ((state.index, state.started), min(now, state.started))
            self._seen[pid] = (beat_seen, run_seen)
            limit = self._call_limit
            if limit is not None and state.running and now - run_seen[1] > limit \
                    and self._in_flight(state.index):
                self._kill(pid, state.index, TIMEOUT,
                           f"the call ran longer than timeout={limit:g} s and its "
                           f"worker (pid {pid}) was killed")
            elif now - beat_seen[1] > self._heartbeat:
                self._kill(pid, state.index, LOST_WORKER,
                           f"its worker (pid {pid}) sent no heartbeat for "
                           f"{now - beat_seen[1]:.0f} s (stopped or hung) and was killed")

    def _in_flight(self, index: int) -> bool:
        return any(index in b.indices for b in list(self._batches.values()))

    def _kill(self, pid: int, index: int, kind: str, reason: str) -> None:
        self._killed[pid] = (index, kind, reason)
        log.warning(f"Call {index}: {reason}." if index >= 0 else f"A worker: {reason}.")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _is_lost_worker(self, exc: BaseException) -> bool:
        from joblib.externals.loky.process_executor import BrokenProcessPool

        return isinstance(exc, BrokenProcessPool)

    def _failed_batch(self, batch: CallBatch, exc: BaseException) -> list[BatchOutcome]:
        culprits = self._breaks.get(id(exc))
        if not culprits:  # not a pool break, or none of its calls is known to have caused it
            return super()._failed_batch(batch, exc)
        mine = {i: culprits[i] for i in batch.indices if i in culprits}
        return [batch.lost("another call broke the worker pool", kind=LOST_NEIGHBOUR,
                           culprits=mine)]

    def cancel(self) -> None:
        """Ctrl-C: kill the workers, so nothing keeps running; loky fails the pending
        batches itself (cancelling their futures first would race with it: loky's thread
        dies on a cancelled future and leaves the workers alive)."""
        self.shutdown()

    def close(self) -> None:
        if self._ref is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._ref.path)
            self._ref = None
        # the pool is kept for the next run (started by an earlier one, or reused by later
        # ones): "auto" keeps it, as a client the user started
        if stops_workers(self.settings.stop_client, started_by_run=False):
            self.shutdown()

    def shutdown(self) -> None:
        self._pool = None
        shutdown_pool()


def _seconds(options: dict[str, Any], name: str, default: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(
            f"backend_options[{name!r}] has to be a number of seconds > 0, not {value!r}.")
    return value
