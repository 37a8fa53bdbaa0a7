"""One ``compute()``: what it records in the manifest and says at the end of its log.

A session numbers itself after the manifest's earlier sessions, writes its start line
(code version, backend, broadcast-argument digests, what it re-runs), gives every done
record its columns (split-argument digests, code version, attempt, worker, times) and every
failure line its provenance, and writes its end line; its last log lines give the failure summary (when calls
failed) and the elapsed time, calls/s and workers used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from .callkeys import ArgumentKeys
from .logs import FILE_ONLY
from .manifest import ManifestWriter, RunState, wall_clock
from .records import BatchOutcome, CallOutcome
from .rerun import Selection

#: Seconds of a session outside its calls (worker start, the results' final writing) from
#: which the closing line names the calls' own time: below it the two agree to the shown
#: tenth of a second.
SHOWN_OVERHEAD = 0.1

log = logging.getLogger("acme_core")

#: One part of a done record: (indices, attempt, worker, end, t0, durations).
_Part = tuple[Sequence[int], int, str, float, Any, Sequence[float]]


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
    #: Parts seen since the last done record, in order: (indices, attempt, worker, the
    #: parent's wall clock, the worker's start of the first call or None, durations).
    _parts: list[_Part] = field(default_factory=list)
    #: When the session began (perf_counter): its elapsed time is the whole session's,
    #: worker start and the results' final writing included, not only the calls'.
    _began: float | None = None

    @classmethod
    def after(cls, state: RunState | None, code: str, keys: ArgumentKeys | None,
              writer: ManifestWriter | None) -> Session:
        """The session that follows those ``state`` records."""
        number = max(state.runs, default=0) + 1 if state is not None else 1
        session = cls(number, code, keys, writer)
        if writer is not None:
            writer.provenance = session.provenance
            writer.record_of = session.record_of
        return session

    def begin(self, backend: str, selection: Selection, rerun: str, debug: bool) -> None:
        """Write the session's start line."""
        self._began = time.perf_counter()
        if self.writer is None:
            return
        self.writer.begin(self.number, code=self.code, backend=backend,
                          broadcast=self.keys.broadcast if self.keys is not None else {},
                          rerun=rerun, debug=debug, todo=len(selection.todo),
                          kept=len(selection.kept), older_code=len(selection.older_code))

    def seen(self, outcome: CallOutcome) -> None:
        """Note where and how a successful call ran (its done record is written later)."""
        self._parts.append(((outcome.index,), outcome.attempt, outcome.worker, wall_clock(),
                            getattr(outcome, "started", None), (outcome.duration,)))

    def seen_batch(self, batch: BatchOutcome) -> None:
        """:meth:`seen` for every call of a batch that has no failure (one clock reading)."""
        if self.writer is None:
            return
        self._parts.append((batch.indices, batch.attempt, batch.worker, wall_clock(),
                            batch.started or None, batch.durations))

    def provenance(self, index: int) -> dict[str, Any]:
        """The fields of call ``index``'s failure line besides its state."""
        about: dict[str, Any] = {"run": self.number, "code": self.code}
        if self.keys is not None:
            about["key"] = self.keys.key(index)
            about["a"] = self.keys.split_of(index)
        return about

    def record_of(self, indices: Sequence[int]) -> dict[str, Any]:
        """The columns of the done record of ``indices`` (see :mod:`acme_core.manifest`),
        from the parts seen since the last record."""
        parts, self._parts = self._parts, []
        # compared as Python lists: 3x faster than as arrays (the parts hold tuples)
        calls = list(indices)
        if list(chain.from_iterable(part[0] for part in parts)) != calls:
            parts = _parts_of(parts, calls)  # calls seen but not recorded: a failed flush
        durations = _joined(parts, 5, np.float64)
        record: dict[str, Any] = {
            "run": self.number, "code": self.code, "n": [len(part[0]) for part in parts],
            "attempt": [part[1] for part in parts], "worker": [part[2] for part in parts],
            "end": [part[3] for part in parts], "t0": [part[4] for part in parts],
            "dur": np.rint(durations * 1e6).astype(np.int64).tolist()}
        if self.keys is not None:
            at = np.asarray(calls, dtype=np.int64)
            record["a"] = {name: self.keys.digests(name, at).tobytes().hex()
                           for name in self.keys.split_names}
        return record

    def end(self, n_ran: int, n_done: int, n_failed: int, elapsed: float, workers: Any,
            interrupted: bool = False, stopped: str = "") -> None:
        """Write the end line and the log's closing line; ``elapsed`` is how long the
        calls ran (the rate's time), the session's whole time is measured here."""
        total = max(elapsed, time.perf_counter() - self._began) if self._began else elapsed
        rate = n_done / elapsed if elapsed > 0 else 0.0
        if self.writer is not None:
            self.writer.end(self.number, ran=n_ran, done=n_done, failed=n_failed,
                            elapsed=round(total, 3), calls_elapsed=round(elapsed, 3),
                            interrupted=interrupted, **({"stopped": stopped} if stopped else {}))
        how = ("interrupted" if interrupted else "stopped" if stopped else "ended")
        where = "in this process (debug)" if workers == "debug" else f"on {workers} worker(s)"
        rest = (f" in the {elapsed:.1f} s the calls ran (the rest: starting the workers, "
                f"writing the results)" if total - elapsed >= SHOWN_OVERHEAD else "")
        log.info(f"Run {how} after {total:.1f} s: {n_done} of {n_ran} calls finished"
                 f"{f', {n_failed} failed' if n_failed else ''}; {rate:.2f} calls/s {where}"
                 f"{rest}.")


def _joined(parts: list[_Part], column: int, dtype: Any) -> np.ndarray:
    """One per-call column of every part, concatenated (each part's column converted in C)."""
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.concatenate([np.asarray(part[column], dtype=dtype) for part in parts])


def _parts_of(parts: list[_Part], calls: list[int]) -> list[_Part]:
    """The parts of ``calls`` alone, one call each (calls not seen get unknown columns)."""
    about = {}
    for indices, attempt, worker, end, started, durations in parts:
        start = started
        for index, duration in zip(indices, durations, strict=True):
            about[index] = ((index,), attempt, worker, end, start, (duration,))
            start = None if start is None else start + duration
    return [about.get(i, ((i,), None, None, None, None, (0.0,))) for i in calls]


def log_failure_summary(message: str) -> None:
    """The failure summary as the log file's last error (the console sees it in the
    exception that follows)."""
    log.error(message, extra={FILE_ONLY: True})
