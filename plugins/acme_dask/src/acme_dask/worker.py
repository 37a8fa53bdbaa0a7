"""What runs inside dask workers: the run's program, loaded in the worker's main thread.

The parent ships a run's program once, as a dask worker plugin (:class:`ProgramPlugin`):
the scheduler hands it to every worker that is online and to every worker that joins later
(a nanny's restarted worker, a replacement SLURM job), and each worker unpickles it in
``setup``, which distributed calls in the worker's main (event-loop) thread. Unpickling
imports the function's module, and a module may do what only a main thread can (install a
signal handler, as dask-jobqueue does at import); plain dask deserialises task arguments
there too. A batch task (:func:`run_dask_batch`) then finds the program loaded.

A program that cannot be loaded (its module raises at import on the worker, a class is
missing there) is an error of every call, with the real exception: the worker is alive
and answered, so this is never reported as a lost worker nor retried as one.

Local workers started by acme-dask also import this module as a preload
(:func:`dask_setup`): they ignore SIGINT, which a terminal's Ctrl-C sends to the whole
process group, so only the parent handles it and the workers are stopped by the parent;
and the warnings distributed logs for tasks the parent cancelled are dropped.
"""

from __future__ import annotations

import concurrent.futures
import logging
import signal
import threading
import time
import traceback
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from acme_core.calls import (
    ERROR,
    BatchOutcome,
    CallBatch,
    CallMarks,
    CallProgram,
    Failure,
    PickledProgram,
    load_program,
    run_batch,
    set_call_record,
    worker_name,
)

#: Programs loaded in this worker process, by run id (dropped when the run's plugin goes).
_ready: dict[str, CallProgram] = {}
#: Programs that failed to load in this worker process: run id -> the failure's parts.
_load_failures: dict[str, tuple[str, str, str]] = {}


#: Name of the worker metric that carries the calls a worker runs to the scheduler.
CALLS_METRIC = "acme-calls"


class CallClock:
    """Which call each thread of this worker runs, of which run, since when: the
    :class:`~acme_core.calls.CallRecord` of dask workers. The worker's heartbeats carry it
    to the scheduler (metric :data:`CALLS_METRIC`), where the parent reads it to stop a call
    over its ``timeout``; no message of its own, no file.

    Examples
    --------
    >>> import time
    >>> from acme_dask.worker import CallClock
    >>> clock = CallClock()
    >>> clock.begin("run1"); marks = clock.marks()
    >>> marks.start[0] = time.monotonic(); marks.index[0] = 4   # what the call loop writes
    >>> [(run, index) for run, index, seconds in clock.running()]
    [('run1', 4)]
    >>> clock.idle(); clock.running()
    []
    """

    def __init__(self) -> None:
        self._runs: dict[int, str] = {}
        self._calls: dict[int, tuple[str, CallMarks]] = {}

    def begin(self, run_id: str) -> None:
        """This thread's next calls belong to run ``run_id``."""
        self._runs[threading.get_ident()] = run_id

    def marks(self) -> CallMarks:
        """New marks for the calling thread's batch (of the run it began last)."""
        thread = threading.get_ident()
        marks = CallMarks.new()
        self._calls[thread] = (self._runs.get(thread, ""), marks)
        return marks

    def idle(self) -> None:
        self._calls.pop(threading.get_ident(), None)

    def running(self) -> list[tuple[str, int, float]]:
        """``(run id, call, seconds it has run)`` of every call running now."""
        now, calls = time.monotonic(), []
        for run, marks in list(self._calls.values()):
            call = marks.running()
            if call is not None:
                calls.append((run, call[0], now - call[1]))
        return calls


_clock = CallClock()


def _calls_metric(worker: Any) -> list[tuple[str, int, float]]:
    return _clock.running()


def plugin_name(run_id: str) -> str:
    """The worker plugin name of run ``run_id`` (one per run, removed at its end).

    Examples
    --------
    >>> from acme_dask.worker import plugin_name
    >>> plugin_name("abc")
    'acme-program-abc'
    """
    return f"acme-program-{run_id}"


def _load(ref: PickledProgram) -> None:
    """Load ``ref``; remember a failure instead of raising (a plugin whose setup raises
    keeps a restarted worker from starting at all)."""
    try:
        _ready[ref.run_id] = load_program(ref)
    except Exception as exc:  # noqa: BLE001 - any load failure is every call's error
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        _load_failures[ref.run_id] = (type(exc).__qualname__, str(exc), text)
    else:
        _load_failures.pop(ref.run_id, None)


class ProgramPlugin(WorkerPlugin):
    """Ships one run's program to every worker, now and later, and loads it there in the
    worker's main thread.

    Examples
    --------
    >>> from acme_core.calls import PickledProgram
    >>> from acme_dask.worker import ProgramPlugin
    >>> ProgramPlugin(PickledProgram(b"", "r1")).name
    'acme-program-r1'
    """

    def __init__(self, ref: PickledProgram) -> None:
        self.ref = ref
        self.name = plugin_name(ref.run_id)

    def setup(self, worker: Any) -> None:
        _load(self.ref)
        set_call_record(_clock)
        worker.metrics[CALLS_METRIC] = _calls_metric

    def teardown(self, worker: Any) -> None:
        _ready.pop(self.ref.run_id, None)
        _load_failures.pop(self.ref.run_id, None)


def _load_on_main_thread(worker: Any, ref: PickledProgram) -> None:
    """Run :func:`_load` on the worker's event loop (its main thread) and wait for it."""
    if threading.current_thread() is threading.main_thread():
        _load(ref)
        return
    done: concurrent.futures.Future[None] = concurrent.futures.Future()

    def load_there() -> None:
        try:
            _load(ref)
        finally:
            done.set_result(None)

    worker.loop.add_callback(load_there)
    done.result()


def _loaded(run_id: str) -> CallProgram | tuple[str, str, str]:
    """The run's program, or the parts of the failure that kept it from loading."""
    program = _ready.get(run_id)
    if program is not None:
        return program
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins.get(plugin_name(run_id))
    if plugin is None:
        return ("RuntimeError", f"this worker has not received the program of run {run_id}", "")
    if run_id not in _load_failures:   # a task overtook the plugin's setup
        _load_on_main_thread(worker, plugin.ref)
    return _ready.get(run_id) or _load_failures[run_id]


def run_dask_batch(run_id: str, batch: CallBatch) -> BatchOutcome:
    """Run ``batch`` of run ``run_id`` on this dask worker (the task every batch is).

    Returns every call's outcome; when the program could not be loaded, every call failed
    with kind ``"error"`` and the exception that stopped the load.

    Examples
    --------
    >>> from acme_dask.worker import run_dask_batch
    >>> client.submit(run_dask_batch, run_id, batch, pure=False)   # doctest: +SKIP
    """
    program = _loaded(run_id)
    if isinstance(program, CallProgram):
        _clock.begin(run_id)
        return run_batch(program, batch)
    exc_type, message, text = program
    where = worker_name()
    note = f"the run's program could not be loaded on worker {where}: {message}"
    failures = {i: Failure(i, ERROR, exc_type, note, text, where, batch.attempt)
                for i in batch.indices}
    n = len(batch.indices)
    return BatchOutcome(batch.indices, [None] * n, [0.0] * n, failures, where, batch.attempt)


async def exit_now() -> None:
    """End this worker process at once (run by the parent through ``client.run`` on a
    worker whose call it stops and that has no nanny to kill it; a coroutine, since
    distributed runs only those without waiting for an answer).

    Examples
    --------
    >>> from acme_dask.worker import exit_now
    >>> client.run(exit_now, workers=[address], wait=False)        # doctest: +SKIP
    """
    import os

    os._exit(1)


async def kill_worker_process(dask_worker: Any = None) -> int | None:
    """Run on a nanny: SIGKILL its worker process (also when that process is stopped or
    hangs, when nothing inside it can run); the nanny starts a new one. Returns its pid.
    A coroutine, so the parent need not wait for the answer.

    Examples
    --------
    >>> from acme_dask.worker import kill_worker_process
    >>> client.run(kill_worker_process, workers=[address], nanny=True)   # doctest: +SKIP
    """
    import os

    pid = getattr(dask_worker, "pid", None)
    if pid:
        os.kill(pid, signal.SIGKILL)
    return pid


def dask_setup(worker: Any) -> None:
    """Preload of the local workers acme-dask starts: ignore SIGINT (see the module doc).

    Examples
    --------
    >>> from acme_dask.worker import dask_setup
    >>> callable(dask_setup)
    True
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tasks the parent cancels (Ctrl-C, a run stopped early) are not news on the terminal,
    # nor are the connections a worker closes when the parent asks it to leave
    logging.getLogger("distributed.worker.state_machine").addFilter(_not_cancelled)
    logging.getLogger("distributed.core").setLevel(logging.WARNING)


def _not_cancelled(record: logging.LogRecord) -> bool:
    return "ended with CancelledError" not in record.getMessage()
