"""The executor protocol: start workers, run batches of calls, stream outcomes back.

An executor is what ``backend=`` names. Its life in one ``compute()``::

    executor = spec.get_factory()(settings)  # validates, starts nothing (at ParallelMap(...))
    executor.start(run)                 # workers up (or attached to)
    executor.submit(batch)              # many times; never blocks on the call itself
    executor.collect(timeout)           # BatchOutcomes of whatever finished, [] on timeout
    executor.cancel()                   # only on Ctrl-C / errors: drop what has not run
    executor.close()                    # end of run; stop what it started, as stop_client says

A batch whose worker died must come back as ``batch.lost(reason)``: one failure of kind
``"lost-worker"`` per call, never silence. The run loop re-submits those calls; calls a
batch's outcome lacks count as lost too.

:class:`FuturesExecutor` does the bookkeeping for pools that hand out futures with
``add_done_callback`` (``concurrent.futures``, loky, dask): a subclass only implements
``start``, ``_submit_future`` and ``close``.
"""

from __future__ import annotations

import abc
import queue
import threading
from typing import Any

# The records an executor receives; plugins import them from here.
from .records import (  # noqa: F401 - re-exported
    UNPICKLABLE,
    BatchOutcome,
    CallBatch,
    ExecutorSettings,
    RunContext,
)


class Executor(abc.ABC):
    """Base class of every backend: the executor protocol in one class.

    An executor is what ``backend=`` names. Its life in one ``compute()``::

        executor = spec.get_factory()(settings)   # ExecutorSettings; validates, starts nothing
        executor.start(run)                 # RunContext; workers up (or attached to)
        executor.submit(batch)              # CallBatch, many times; never blocks on a call
        executor.collect(timeout)           # BatchOutcomes of what finished, [] on timeout
        executor.cancel()                   # only on Ctrl-C / errors: drop what has not run
        executor.close()                    # end of run; stop what it started (stop_client)

    A batch whose worker died must come back as ``batch.lost(reason)``: one failure of
    kind ``"lost-worker"`` per call, never silence; the run loop re-submits those calls,
    and calls a batch's outcome lacks count as lost too. The records named here are in
    :mod:`acme_core.records`.

    Examples
    --------
    A backend that runs each batch at once in the calling process::

        from acme_core.calls import run_batch
        from acme_core.executor import Executor

        class Inline(Executor):
            def start(self, run):
                self._program, self._done = run.program, []
            def submit(self, batch):
                self._done.append(run_batch(self._program, batch))
            def collect(self, timeout):
                done, self._done = self._done, []
                return done
            def close(self):
                pass
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings

    @property
    def n_workers(self) -> int:
        """How many calls can run at once (used to size batches and in-flight work)."""
        return 1

    @abc.abstractmethod
    def start(self, run: RunContext) -> None:
        """Start or attach to workers for one run."""

    @abc.abstractmethod
    def submit(self, batch: CallBatch) -> None:
        """Queue ``batch``; its outcomes come back through :meth:`collect`."""

    @abc.abstractmethod
    def collect(self, timeout: float | None) -> list[BatchOutcome]:
        """Block up to ``timeout`` seconds for finished batches; return their outcomes."""

    def cancel(self) -> None:  # noqa: B027 - optional
        """Drop batches that have not started (Ctrl-C); the default does nothing."""

    def status(self) -> dict[str, int]:
        """Extra counts for the progress display, e.g. ``{"queued": 3}`` SLURM jobs still
        waiting in the queue. Called at most once a second; must be cheap. Default: none."""
        return {}

    @abc.abstractmethod
    def close(self) -> None:
        """End of the run: release what ``start`` made, as ``settings.stop_client`` says."""

    def shutdown(self) -> None:  # noqa: B027 - optional
        """Stop workers kept alive for reuse across runs (``with`` block exit)."""

    def client(self, run: RunContext) -> Any:
        """The backend's client object for user code before ``compute()`` (ParallelMap's
        ``daemon.client``, e.g. a dask client), attached or started now for the coming
        ``run``; what is started here belongs to that run. Default: None (no client)."""
        return None


class FuturesExecutor(Executor):
    """An :class:`Executor` over any pool whose futures support ``add_done_callback``.

    Subclasses implement :meth:`_submit_future` (return a future whose result is the list
    of outcomes) and may override :meth:`_is_lost_worker` to recognise a dead worker.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from acme_core.calls import run_batch
    >>> from acme_core.executor import FuturesExecutor
    >>> class Threads(FuturesExecutor):
    ...     def start(self, run):
    ...         self._pool, self._program = ThreadPoolExecutor(2), run.program
    ...     def _submit_future(self, batch):
    ...         return self._pool.submit(run_batch, self._program, batch)
    ...     def close(self):
    ...         self._pool.shutdown()
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        super().__init__(settings)
        self._lock = threading.Lock()
        self._new_run()

    def _new_run(self) -> None:
        """Forget the batches of an earlier run on this executor: those a Ctrl-C cancelled
        still report back, and must not reach the next run as lost calls. Subclasses call
        this in :meth:`start`."""
        with self._lock:
            self._done: queue.SimpleQueue[tuple[CallBatch, Any]] = queue.SimpleQueue()
            self._pending: dict[int, Any] = {}

    def _outcome(self, batch: CallBatch, result: Any) -> BatchOutcome:
        """The :class:`BatchOutcome` a future's result holds (the result itself by default;
        a backend whose workers send bytes unpickles them here)."""
        return result

    @abc.abstractmethod
    def _submit_future(self, batch: CallBatch) -> Any:
        """Start ``batch`` and return a future of its :class:`BatchOutcome`."""

    def _is_lost_worker(self, exc: BaseException) -> bool:
        """True when ``exc`` (raised by the future) means the worker died."""
        return False

    def _result(self, future: Any) -> Any:
        """The result of a done ``future``. A backend whose futures can fall back from done
        to waiting (a dask future whose worker died before its result was read) bounds
        this wait and raises an exception :meth:`_is_lost_worker` recognises."""
        return future.result()

    def submit(self, batch: CallBatch) -> None:
        future = self._submit_future(batch)
        with self._lock:
            self._pending[id(future)] = future
            done = self._done
        future.add_done_callback(lambda f, b=batch: done.put((b, f)))

    def collect(self, timeout: float | None) -> list[BatchOutcome]:
        try:
            first = self._done.get(timeout=timeout)
        except queue.Empty:
            return []
        finished = [first]
        while True:
            try:
                finished.append(self._done.get_nowait())
            except queue.Empty:
                break
        outcomes: list[BatchOutcome] = []
        for batch, future in finished:
            with self._lock:
                self._pending.pop(id(future), None)
            outcomes += self._outcomes_of(batch, future)
        return outcomes

    def _outcomes_of(self, batch: CallBatch, future: Any) -> list[BatchOutcome]:
        if future.cancelled():
            return [batch.lost("cancelled before it ran")]
        try:
            # result() alone: on dask, exception() and result() are each a round trip to
            # the client's event loop (about 1 ms a batch for nothing when the batch ran)
            result = self._result(future)
        except Exception as exc:  # noqa: BLE001 - whatever the backend raised, sorted below
            return self._failed_batch(batch, exc)
        except KeyboardInterrupt as exc:
            if exc is not future.exception():
                raise  # Ctrl-C here, in this process
            # a worker's own KeyboardInterrupt (a Ctrl-C it did not ignore): the batch is lost
            return self._failed_batch(batch, exc)
        try:
            outcome = self._outcome(batch, result)
        except Exception as exc:  # noqa: BLE001 - e.g. a result class this process lacks
            return [batch.lost(f"its outcome could not be read here: {type(exc).__name__}: "
                               f"{exc}", kind=UNPICKLABLE)]
        return _complete(batch, outcome)

    def _failed_batch(self, batch: CallBatch, exc: BaseException) -> list[BatchOutcome]:
        if self._is_lost_worker(exc):
            return [batch.lost(f"{type(exc).__name__}: {exc}")]
        # the executor itself failed to run the batch (e.g. a serialisation error)
        return [batch.lost(f"the backend could not run this batch: {type(exc).__name__}: {exc}")]

    def cancel(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
        for future in pending:
            future.cancel()


def _complete(batch: CallBatch, outcome: BatchOutcome) -> list[BatchOutcome]:
    """Every call of ``batch`` gets an outcome: one the backend dropped counts as lost."""
    if outcome.indices == batch.indices:
        return [outcome]
    returned = set(outcome.indices)
    dropped = tuple(i for i in batch.indices if i not in returned)
    kept = outcome.without(returned - set(batch.indices))
    lost = CallBatch(batch.run_id, dropped, None, batch.pickled, batch.attempt)
    return [kept, lost.lost("the backend returned no outcome for this call")]
