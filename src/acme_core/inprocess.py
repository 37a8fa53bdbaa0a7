"""``compute(debug=True)``: an executor that runs the calls one after another, here.

The run loop drives it like any other executor (batches, storage, manifest, retries), so
a debug run is recorded and resumed like a parallel one. What differs is the call: it runs
in this process on its own random streams, and its exception propagates unchanged, out of
``compute()``, so ``pdb`` and ``%debug`` stop where it was raised. Calls run one per
:meth:`InProcessExecutor.collect`, so every call before the failing one is stored.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .calls import CallProgram, split_values_of, worker_name
from .executor import Executor
from .records import BatchOutcome, CallBatch, ExecutorSettings, RunContext
from .replays import replay_call


class InProcessExecutor(Executor):
    """Runs each call in the calling process when the run loop collects.

    Examples
    --------
    >>> from acme_core.calls import CallBatch, CallProgram
    >>> from acme_core.records import RunContext
    >>> from acme_core.inprocess import InProcessExecutor
    >>> class Keep:
    ...     def write(self, index, value):
    ...         return value
    >>> program = CallProgram("r1", pow, (("pos", "x", 0), ("pos", "y", 1)), (), Keep(),
    ...                       split=([2, 3], [2, 2]))
    >>> executor = InProcessExecutor()
    >>> executor.start(RunContext(None, program, None, 2, None))
    >>> executor.submit(CallBatch("r1", (0, 1)))
    >>> [out.values for out in executor.collect(None) + executor.collect(None)]
    [[4], [9]]
    """

    def __init__(self, settings: ExecutorSettings | None = None) -> None:
        super().__init__(settings or ExecutorSettings())
        self._queue: deque[tuple[int, Any, int]] = deque()  # (index, split values, attempt)
        self._program: CallProgram | None = None
        self._where = f"{worker_name()} (debug)"

    def start(self, run: RunContext) -> None:
        self._program = run.program
        self._queue.clear()

    def submit(self, batch: CallBatch) -> None:
        assert self._program is not None, "start() first"
        splits = split_values_of(self._program, batch)
        self._queue.extend((index, split, batch.attempt)
                           for index, split in zip(batch.indices, splits, strict=True))

    def collect(self, timeout: float | None) -> list[BatchOutcome]:
        """Run the next queued call; its exception propagates unchanged."""
        if not self._queue:
            return []
        assert self._program is not None
        index, split, attempt = self._queue.popleft()
        started, began = time.time(), time.perf_counter()
        value = replay_call(self._program, split, index)
        duration = time.perf_counter() - began
        values, failures = [self._program.writer.write(index, value)], {}
        self._program.end_batch((index,), values, failures, self._where, attempt)
        return [BatchOutcome((index,), values, [duration], failures, self._where, attempt,
                             started)]

    def cancel(self) -> None:
        self._queue.clear()

    def close(self) -> None:
        self._queue.clear()
