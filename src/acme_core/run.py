"""The run loop: cut calls into batches, keep the executor busy, route every outcome.

Outcomes stream in as calls finish: each successful one goes to the storage at once (so
the parent never gathers everything at the end), each failure is retried or recorded,
and lifecycle hooks are called only when some plugin listens.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from . import interrupts
from .arguments import size_of
from .calls import disk_hint
from .errors import ResultShapeError
from .executor import Executor
from .manifest import ManifestWriter
from .pending import InFlight, Pending
from .records import (  # noqa: F401 - RunInfo and RunSummary re-exported
    ERROR,
    KILLED_WORKER,
    LOST_NEIGHBOUR,
    LOST_WORKER,
    STORAGE,
    BatchOutcome,
    CallOutcome,
    Failure,
    RunInfo,
    RunSummary,
)

if TYPE_CHECKING:  # pragma: no cover
    from .lifecycle import RunHooks
    from .payloads import Payloads
    from .session import Session
    from .storage.base import Storage

log = logging.getLogger("acme_core")

#: Re-submissions of calls whose worker died, before they count as failed.
MAX_LOST_RETRIES = 3
#: Free re-runs of a call lost only because another call broke the pool it shared.
MAX_NEIGHBOUR_RERUNS = 10
#: Failure kinds that mean the worker died under the call (charged as attempts).
_LOST_KINDS = frozenset({LOST_WORKER, KILLED_WORKER})
#: Seconds of work a batch should hold once call durations are known.
TARGET_BATCH_SECONDS = 0.2
#: Bytes of results a batch should bring back at most (values that travel to the parent).
TARGET_BATCH_BYTES = 16 * 1024**2
#: Seconds of work below which a batch is never split further to keep workers evenly busy:
#: such a batch costs less than one round trip to a worker (about 1 ms on loky, 5 ms on
#: dask, more over TLS to SLURM jobs), so splitting it only adds round trips.
MIN_BATCH_SECONDS = 0.01
#: Calls a batch holds at most: the parent keeps each batch in flight (its calls' indices,
#: arguments and receipts) until it is back, so at 10^6 tiny calls an uncapped batch of
#: 10^5 calls would hold tens of megabytes. 10^4 tiny calls still take ~10 ms, well over
#: a round trip, and the run makes about as many batches as without the cap (the last
#: ones shrink to stay fair anyway).
MAX_BATCH_CALLS = 10_000


class BatchSizer:
    """Sizes batches from measured call durations and result sizes: tiny calls are grouped
    so a batch holds about ``TARGET_BATCH_SECONDS`` of work, long calls go one by one, a
    batch brings back at most about ``TARGET_BATCH_BYTES`` of results (so neither a worker
    nor the parent holds many large results at once), no batch holds more than
    ``MAX_BATCH_CALLS`` calls, and no batch is so large that
    workers would sit idle at the end of the run (a batch of less than
    ``MIN_BATCH_SECONDS`` of work is not split for that: it costs less than a round trip).

    Examples
    --------
    >>> from acme_core.run import BatchSizer
    >>> sizer = BatchSizer(n_workers=2)
    >>> sizer.size(remaining=1000)  # nothing measured yet: one call
    1
    >>> sizer.observe(seconds=0.001, count=10, result_bytes=80)
    >>> sizer.size(remaining=1000)  # 0.1 ms a call: as many as stay fair to both workers
    125
    >>> sizer.size(remaining=40)    # the last 4 ms of work: one batch, not 8 round trips
    40
    >>> sizer.observe(seconds=0.0, count=0, result_bytes=4 * 1024**2)
    >>> sizer.size(remaining=1000)  # 4 MB results: 4 a batch
    4
    """

    def __init__(self, n_workers: int) -> None:
        self.n_workers = max(1, n_workers)
        self._seconds = 0.0
        self._count = 0
        self._result_bytes = 0

    def observe(self, seconds: float, count: int, result_bytes: int = 0) -> None:
        """Record that ``count`` calls took ``seconds`` in all; ``result_bytes`` is the size
        of one of their results (the largest seen is kept)."""
        self._seconds += seconds
        self._count += count
        self._result_bytes = max(self._result_bytes, result_bytes)

    def size(self, remaining: int) -> int:
        """How many of the ``remaining`` calls the next batch takes."""
        if self._count == 0:
            return 1
        mean = max(self._seconds / self._count, 1e-6)
        wanted = max(1, int(TARGET_BATCH_SECONDS / mean))
        by_bytes = max(1, TARGET_BATCH_BYTES // max(1, self._result_bytes))
        fair = max(1, math.ceil(remaining / (4 * self.n_workers)), int(MIN_BATCH_SECONDS / mean))
        return min(wanted, by_bytes, fair, remaining, MAX_BATCH_CALLS)


class RunLoop:
    """Runs calls on ``executor`` and routes every outcome; see the module docstring.

    Parameters
    ----------
    executor : Executor
        Started already.
    storage : Storage
        Collects each successful outcome (may raise: the call then fails with kind
        ``"storage"``); its ``flush()`` makes collected results durable before the calls
        are recorded as done, so a crash never leaves a call recorded but unreadable.
    payloads : Payloads
        Makes each batch (what it carries besides call indices) and describes calls.
    session : Session
        Notes where each call ran; its manifest writer (if any) records every call's
        final state on disk.
    hooks : RunHooks
        The run's lifecycle hooks.
    retries : int
        Re-runs of a call whose function raised.
    """

    def __init__(self, executor: Executor, storage: Storage, payloads: Payloads,
                 session: Session, hooks: RunHooks, retries: int = 0) -> None:
        self.executor, self.storage, self.payloads = executor, storage, payloads
        self.session, self.hooks, self.retries = session, hooks, retries
        self.manifest: ManifestWriter | None = session.writer
        self._unrecorded: list[int] = []  # done, not yet in the manifest
        #: done since iterate() last yielded: whole batches, or single outcomes
        self.finished: list[BatchOutcome | CallOutcome] = []
        self.sizer = BatchSizer(executor.n_workers)
        self.summary = RunSummary(n_calls=payloads.n_calls)
        self._out = InFlight()  # the batches submitted and not yet back
        self._alone: set[int] = set()  # calls lost with a worker: they run in batches of one
        self._free_reruns: dict[int, int] = {}  # call -> re-runs after a neighbour broke it
        self._lost_notes: list[str] = []  # what the lost-call warning of this round says

    def run(self, indices: Sequence[int]) -> RunSummary:
        """Run the calls ``indices``; returns the summary (Ctrl-C or SIGTERM:
        ``interrupted=True``)."""
        for _ in self.iterate(indices):
            pass
        return self.summary

    def iterate(self, indices: Sequence[int]) -> Iterator[Iterable[CallOutcome]]:
        """:meth:`run` as a generator: yields the calls that finished (stored and recorded in
        the manifest) as they come; closing it early counts as Ctrl-C."""
        start = time.perf_counter()
        todo = Pending(indices)
        limit = 2 * max(1, self.executor.n_workers)
        terminate = interrupts.terminate_as_interrupt()
        try:
            while todo or self._out:
                while todo and len(self._out) < limit:
                    self._submit(todo)
                self._receive(todo)
                if self.finished:
                    finished, self.finished = self.finished, []
                    yield _each_call(finished)
        except (KeyboardInterrupt, GeneratorExit) as exc:
            self.summary.interrupted = True
            if isinstance(exc, KeyboardInterrupt):
                # until the caller has reported the interruption (restore_signals), a
                # second Ctrl-C or SIGTERM must not break the cleanup: a terminal signals
                # every process of the group, and users press twice
                interrupts.hold_back(terminate)
                terminate = {}
            self.executor.cancel()
            if isinstance(exc, GeneratorExit):
                raise
        except _DiskFull as full:
            self.executor.cancel()
            self._not_stored(self._out.calls() | set(todo), full.error,
                             "not run: the run stopped")
        finally:
            interrupts.restore(terminate)
            self.summary.elapsed = time.perf_counter() - start
            with contextlib.suppress(_DiskFull):  # its calls are failures already
                self._record()
        return self.summary

    def _submit(self, todo: Pending) -> None:
        chosen, attempt = todo.take(self.sizer.size(len(todo)), self._alone)
        batch = self.payloads.batch(chosen, attempt)
        self._out.add(batch.indices)
        self.executor.submit(batch)

    def _receive(self, todo: Pending) -> None:
        batches = self.executor.collect(timeout=1.0)
        for outcome in batches:
            self._out.back(outcome.indices)
            self._route(outcome, todo)
        if self._lost_notes:
            log.warning("; ".join(self._lost_notes) + ".")
            self._lost_notes = []
        if batches:
            self._record()

    def _record(self) -> None:
        """Make collected results durable, then record them as done.

        When that fails (a full disk, a lost file system), the calls collected since the
        last record are not stored: each becomes a ``"storage"`` failure, and the run
        stops (raises ``_DiskFull``) since every further result would fail alike.
        """
        if self.manifest is None:
            return
        try:
            if self._unrecorded:
                self.storage.flush()
                self.manifest.done(self._unrecorded)
            self.manifest.flush()
        except OSError as exc:
            unstored, self._unrecorded = self._unrecorded, []
            self.summary.n_done -= len(unstored)
            self._not_stored(unstored, exc, "its result could not be made durable")
            log.error(f"Writing results failed ({exc}): the run stops. {disk_hint(exc)}.")
            raise _DiskFull(exc) from exc
        self._unrecorded = []

    def _not_stored(self, indices: Iterable[int], exc: OSError, what: str) -> None:
        for index in sorted(indices):
            failure = Failure(index, STORAGE, type(exc).__qualname__,
                              f"{what} ({exc}).{disk_hint(exc, ' ')}")
            self.summary.n_failed += 1
            self.summary.failures.append(failure)
            if self.manifest is not None:
                self.manifest.failed(failure, self.payloads.describe(index))

    def _route(self, batch: BatchOutcome, todo: Pending) -> None:
        """Hand each successful call to the storage; retry or record each failed one."""
        if not batch.failures and self._route_whole(batch):
            return
        done: list[int] = []
        seconds = 0.0
        for outcome in batch.outcomes():
            if outcome.ok:
                try:
                    self.storage.collect(outcome)
                    if self.manifest is not None:  # where it ran goes into its manifest line
                        self.session.seen(outcome)
                except Exception as exc:
                    outcome.failure = Failure(outcome.index, STORAGE, type(exc).__qualname__,
                                              f"{exc}{disk_hint(exc, ' ')}", "", outcome.worker,
                                              outcome.attempt)
            if outcome.ok:
                done.append(outcome.index)
                self.finished.append(outcome)
                seconds += outcome.duration
                self.hooks.call("finished", outcome)
            else:
                self._failed(outcome, todo)
        self._count_done(done, seconds, batch)

    def _route_whole(self, batch: BatchOutcome) -> bool:
        """A batch without failures in one step, with no object per call, when the storage
        collects whole batches (``collect_batch``) and no plugin listens to each call;
        False when it cannot (the calls are then routed one by one)."""
        collect = getattr(self.storage, "collect_batch", None)
        if collect is None or self.hooks.listens("finished"):
            return False
        try:
            collect(batch)
        except Exception:  # noqa: BLE001 - one call's result does not fit: call by call
            return False
        self.session.seen_batch(batch)
        self.finished.append(batch)
        self._count_done(batch.indices, sum(batch.durations), batch)
        return True

    def _count_done(self, done: Sequence[int], seconds: float, batch: BatchOutcome) -> None:
        self.sizer.observe(seconds, len(done), size_of(batch.values[0]) if batch.values else 0)
        self.summary.n_done += len(done)
        self.hooks.calls_finished(done)
        if self.manifest is not None:
            self._unrecorded += done

    def _failed(self, outcome: CallOutcome, todo: Pending) -> None:
        failure = outcome.failure
        assert failure is not None
        if failure.kind == LOST_NEIGHBOUR:
            if self._rerun_free(outcome, todo):
                return
        elif self._retry(outcome):
            self.summary.n_retried += 1
            todo.append(outcome.index, outcome.attempt + 1)
            self.hooks.call("retried", outcome)
            return
        if failure.kind in _LOST_KINDS:
            failure.message = (f"the call {_lost_phrase(failure.kind)} {outcome.attempt} "
                               f"time{'s' if outcome.attempt > 1 else ''}; the last time: "
                               f"{failure.message}")
        self.summary.n_failed += 1
        self.summary.failures.append(failure)
        if self.manifest is not None:
            self.manifest.failed(failure, self.payloads.describe(outcome.index))
        self.hooks.call("failed", outcome)
        if failure.exc_type == ResultShapeError.__name__:
            raise ResultShapeError(failure.message)  # every further call would fail alike

    def _rerun_free(self, outcome: CallOutcome, todo: Pending) -> bool:
        """Re-run a call lost only beside the one that broke the pool, without charging it
        an attempt (up to ``MAX_NEIGHBOUR_RERUNS`` times, so a run always ends)."""
        reruns = self._free_reruns.get(outcome.index, 0) + 1
        if reruns > MAX_NEIGHBOUR_RERUNS:
            assert outcome.failure is not None
            outcome.failure.kind = LOST_WORKER
            return False
        self._free_reruns[outcome.index] = reruns
        todo.append(outcome.index, outcome.attempt)
        return True

    def _retry(self, outcome: CallOutcome) -> bool:
        failure = outcome.failure
        assert failure is not None
        if failure.kind in _LOST_KINDS:
            self._alone.add(outcome.index)
            again = outcome.attempt <= MAX_LOST_RETRIES
            self._lost_notes.append(
                f"call {outcome.index} {_lost_phrase(failure.kind)} ({failure.message}); "
                f"attempt {outcome.attempt} of {MAX_LOST_RETRIES + 1}"
                + (", it runs again alone" if again else ""))
            return again
        return failure.kind == ERROR and outcome.attempt <= self.retries


class _DiskFull(Exception):
    """Results could not be made durable: the run stops."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _each_call(finished: list[BatchOutcome | CallOutcome]) -> Iterator[CallOutcome]:
    """Every call of ``finished``: a whole batch's outcome is expanded only when read."""
    for item in finished:
        if isinstance(item, BatchOutcome):
            yield from item.outcomes()
        else:
            yield item


def _lost_phrase(kind: str) -> str:
    return "killed its worker" if kind == KILLED_WORKER else "was lost with its worker"
