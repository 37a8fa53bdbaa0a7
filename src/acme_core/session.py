"""One ``compute()``: what it records in the manifest and says at the end of its log.

A session numbers itself after the manifest's earlier sessions, writes its start line
(code version, backend, broadcast-argument digests, what it re-runs), gives every call
line its provenance (argument key and digests, code version, attempt, worker, times),
and writes its end line; its last log lines give the failure summary (when calls
failed) and the elapsed time, calls/s and workers used.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from .callkeys import ArgumentKeys
from .logs import FILE_ONLY
from .manifest import ManifestWriter, RunState, wall_clock
from .records import BatchOutcome, CallOutcome
from .rerun import Selection

log = logging.getLogger("acme_core")


@dataclass
class Session:
    """The bookkeeping of one ``compute()``.

    Examples
    --------
    >>> from acme_core.session import Session
    >>> session = Session(number=1, code="c0ffee", keys=None)
    >>> session.provenance(3)
    {'run': 1, 'code': 'c0ffee'}
    """

    number: int
    code: str
    keys: ArgumentKeys | None
    writer: ManifestWriter | None = None
    #: Per finished call: attempt, worker, duration, parent's wall clock, worker's start.
    _seen: dict[int, tuple[int, str, float, float, Any]] = field(default_factory=dict)
    _names: list[tuple[str, list[str]]] | None = None
    _encoded: dict[str, str] = field(default_factory=dict)  # worker name -> its JSON

    @classmethod
    def after(cls, state: RunState | None, code: str, keys: ArgumentKeys | None,
              writer: ManifestWriter | None) -> Session:
        """The session that follows those ``state`` records."""
        number = max(state.runs, default=0) + 1 if state is not None else 1
        session = cls(number, code, keys, writer)
        if writer is not None:
            writer.provenance = session.provenance
            writer.done_line = session.done_line
        return session

    def begin(self, backend: str, selection: Selection, rerun: str, debug: bool) -> None:
        """Write the session's start line."""
        if self.writer is None:
            return
        self.writer.begin(self.number, code=self.code, backend=backend,
                          broadcast=self.keys.broadcast if self.keys is not None else {},
                          rerun=rerun, debug=debug, todo=len(selection.todo),
                          kept=len(selection.kept), older_code=len(selection.older_code))

    def seen(self, outcome: CallOutcome) -> None:
        """Note where and how a successful call ran (its manifest line is written later)."""
        self._seen[outcome.index] = (outcome.attempt, outcome.worker, outcome.duration,
                                     wall_clock(), getattr(outcome, "started", None))

    def seen_batch(self, batch: BatchOutcome) -> None:
        """:meth:`seen` for every call of a batch that has no failure (one clock reading)."""
        if self.writer is None:
            return
        attempt, worker, end = batch.attempt, batch.worker, wall_clock()
        starts = batch.starts() if batch.started else [None] * len(batch.indices)
        self._seen.update(
            (index, (attempt, worker, duration, end, started)) for index, duration, started
            in zip(batch.indices, batch.durations, starts, strict=True))

    def provenance(self, index: int) -> dict[str, Any]:
        """The fields of call ``index``'s manifest line besides its state."""
        about: dict[str, Any] = {"run": self.number, "code": self.code}
        if self.keys is not None:
            about["key"] = self.keys.key(index)
            about["a"] = self.keys.split_of(index)
        seen = self._seen.pop(index, None)
        if seen is not None:
            attempt, worker, duration, end, started = seen
            about.update(attempt=attempt, worker=worker, dur=round(duration, 6), end=end)
            if started is not None:
                about["start"] = started
        return about

    def done_line(self, index: int) -> str:
        """Call ``index``'s manifest line as done: the JSON of ``{"i", "s"} | provenance``,
        written without building a dict (the parent writes one per call)."""
        head = f'{{"i":{index},"s":"done","run":{self.number},"code":"{self.code}"'
        if self.keys is not None:
            if self._names is None:
                self._names = [(json.dumps(n), col) for n, col in self.keys.split.items()]
            split = ",".join(f'{name}:"{col[index]}"' for name, col in self._names)
            head += f',"key":"{self.keys.key(index)}","a":{{{split}}}'
        seen = self._seen.pop(index, None)
        if seen is not None:
            attempt, worker, duration, end, started = seen
            encoded = self._encoded.get(worker)
            if encoded is None:
                encoded = self._encoded[worker] = json.dumps(worker)
            head += f',"attempt":{attempt},"worker":{encoded},"dur":{duration:.6f},"end":{end:.3f}'
            if started is not None:  # a float's JSON is its repr
                head += f',"start":{started!r}' if type(started) is float else \
                    f',"start":{json.dumps(started)}'
        return head + "}"

    def end(self, n_ran: int, n_done: int, n_failed: int, elapsed: float, workers: Any,
            interrupted: bool = False, stopped: str = "") -> None:
        """Write the end line and the log's closing line."""
        rate = n_done / elapsed if elapsed > 0 else 0.0
        if self.writer is not None:
            self.writer.end(self.number, ran=n_ran, done=n_done, failed=n_failed,
                            elapsed=round(elapsed, 3), interrupted=interrupted,
                            **({"stopped": stopped} if stopped else {}))
        how = ("interrupted" if interrupted else "stopped" if stopped else "ended")
        where = "in this process (debug)" if workers == "debug" else f"on {workers} worker(s)"
        log.info(f"Run {how} after {elapsed:.1f} s: {n_done} of {n_ran} calls finished"
                 f"{f', {n_failed} failed' if n_failed else ''}; {rate:.2f} calls/s {where}.")


def log_failure_summary(message: str) -> None:
    """The failure summary as the log file's last error (the console sees it in the
    exception that follows)."""
    log.error(message, extra={FILE_ONLY: True})
