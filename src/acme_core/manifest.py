"""The run manifest: the truth on disk about every call of a run and where its result came from.

``<output_dir>/.acme_manifest.jsonl`` is JSON lines, appended and never rewritten. The first
line describes the run (function name, number of calls, storage). Then, for every
``compute()`` (a *session*: the first, a second on the same object, a resumed one, a debug
one alike):

- ``{"run": 2, "code": ..., "backend": ..., "broadcast": {...}, ...}`` when it starts: its
  code version (:func:`acme_core.codeversion.code_version`), backend, host, the digests of
  the broadcast arguments and what it was asked to re-run;
- one line per call as it finishes: ``{"i": 3, "s": "done", "run": 2, "key": ..., "a":
  {...}, "code": ..., "attempt": 1, "worker": "host:pid", "end": ..., "dur": ...}`` (``a``:
  the digests of the call's split arguments, ``key``: its argument key, see
  :mod:`acme_core.callkeys`), or a failure with its kind, type, message, traceback and
  attempts;
- ``{"end": 2, "done": ..., "failed": ..., "elapsed": ...}`` when it ends.

The last line of a call is its state. A crash can cut the last line short; such a line is
ignored (the call then runs again).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import previous_names
from .errors import ManifestError
from .records import Failure

NAME = ".acme_manifest.jsonl"
DONE, FAILED = "done", "failed"
#: Version of the manifest format written here.
FORMAT = 2


def path_in(output_dir: str) -> str:
    """The manifest's path in ``output_dir`` (under its previous name in a folder of the
    previous layout, see :mod:`acme_core.previous_names`)."""
    return previous_names.find(output_dir, NAME)


def exists(output_dir: str) -> bool:
    """True when ``output_dir`` holds an acme-core run's manifest."""
    return os.path.isfile(path_in(output_dir))


def now() -> str:
    """The local time as the manifest writes it."""
    return dt.datetime.now().isoformat(timespec="seconds")


# ---------------------------------------------------------------------------- reading
@dataclass
class RunState:
    """What a manifest says about a run.

    Examples
    --------
    >>> from acme_core.manifest import RunState
    >>> state = RunState({"n_inputs": 3}, calls={0: {"i": 0, "s": "done", "code": "a"}},
    ...                  runs={1: {"run": 1, "code": "b"}})
    >>> sorted(state.missing), sorted(state.older_code)
    ([1, 2], [0])
    """

    header: dict[str, Any]
    #: The last event of each call.
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: The start event of each session, by number.
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: The end event of each session that ended, by number.
    ends: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        """Number of calls of the run."""
        return int(self.header["n_inputs"])

    @property
    def states(self) -> dict[int, str]:
        """Each recorded call's state (``"done"`` or ``"failed"``)."""
        return {i: e["s"] for i, e in self.calls.items()}

    @property
    def done(self) -> set[int]:
        """Calls with a complete result."""
        return {i for i, e in self.calls.items() if e["s"] == DONE}

    @property
    def failed(self) -> set[int]:
        """Calls whose last attempt failed."""
        return {i for i, e in self.calls.items() if e["s"] == FAILED}

    @property
    def failures(self) -> dict[int, dict[str, Any]]:
        """The failure event of each failed call."""
        return {i: e for i, e in self.calls.items() if e["s"] == FAILED}

    @property
    def missing(self) -> set[int]:
        """Calls that never finished (not started, or interrupted)."""
        return set(range(self.n_inputs)) - set(self.calls)

    @property
    def latest_run(self) -> dict[str, Any] | None:
        """The start event of the latest session."""
        return self.runs[max(self.runs)] if self.runs else None

    @property
    def older_code(self) -> set[int]:
        """Done calls whose result came from another code version than the latest
        session's (``status`` and ``load()`` show them)."""
        latest = self.latest_run
        if latest is None:
            return set()
        return {i for i, e in self.calls.items()
                if e["s"] == DONE and e.get("code") != latest.get("code")}

    def broadcast_of(self, index: int) -> dict[str, str] | None:
        """The broadcast-argument digests call ``index`` ran with (None: unknown)."""
        run = self.runs.get(self.calls.get(index, {}).get("run", -1))
        return None if run is None else run.get("broadcast")


def _damaged(path: str, what: str) -> ManifestError:
    folder = os.path.dirname(path)
    return ManifestError(
        f"The run manifest {path} is damaged ({what}), so which results in {folder} are "
        f"complete cannot be told. Pass a new output_dir to start over (or move {folder} "
        f"away); acme-core never guesses which results to trust.")


def read(output_dir: str) -> RunState:
    """Read the manifest of the run in ``output_dir`` (a torn last line is ignored).

    Raises
    ------
    ManifestError
        When the first line is missing or not a run description.
    """
    path = path_in(output_dir)
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    if not lines:
        raise _damaged(path, "it is empty")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        raise _damaged(path, "its first line is not JSON") from None
    if not isinstance(header, dict) or "n_inputs" not in header or "func" not in header:
        raise _damaged(path, "its first line does not describe a run")
    state = RunState(header=header)
    for line in lines[1:]:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if not isinstance(event, dict):
            continue
        if "i" in event and event.get("s") in (DONE, FAILED):
            state.calls[int(event["i"])] = event
        elif "run" in event and "s" not in event:
            state.runs[int(event["run"])] = event
        elif "end" in event:
            state.ends[int(event["end"])] = event
    return state


# ---------------------------------------------------------------------------- writing
#: ``provenance(index) -> dict``: what a call's line records besides its state.
Provenance = Callable[[int], dict[str, Any]]


class ManifestWriter:
    """Appends events to the manifest; lines are flushed after each group of outcomes.

    Parameters
    ----------
    output_dir : str
        The run's directory.
    header : dict, optional
        Written first (a new run).
    provenance : callable, optional
        ``provenance(index)``: the fields a call's line carries besides its state
        (argument key and digests, code version, attempt, worker, times).
    """

    def __init__(self, output_dir: str, header: dict[str, Any] | None,
                 provenance: Provenance | None = None) -> None:
        self._path = path = path_in(output_dir)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._good = os.fstat(self._fh.fileno()).st_size  # bytes known written in full
        #: The first write error (a full disk); None while every line was written.
        self.unwritable: OSError | None = None
        self._unreported: OSError | None = None
        self.provenance = provenance
        #: ``done_line(index) -> str``: a faster writer of a done call's line (the JSON of
        #: ``{"i": index, "s": "done", **provenance(index)}``).
        self.done_line: Callable[[int], str] | None = None
        if header is not None:
            self._write(header)
        self.flush()

    def _write(self, event: dict[str, Any]) -> None:
        try:
            self._fh.write(json.dumps(event, separators=(",", ":")) + "\n")
        except OSError as exc:
            self._lost(exc)

    def _about(self, index: int) -> dict[str, Any]:
        return self.provenance(index) if self.provenance is not None else {}

    def begin(self, number: int, **event: Any) -> None:
        """Record the start of session ``number`` (a ``compute()``)."""
        self._write({"run": number, "t": now(), "host": socket.gethostname(),
                     "pid": os.getpid(), **event})
        self.flush()

    def end(self, number: int, **event: Any) -> None:
        """Record the end of session ``number`` with its counts."""
        self._write({"end": number, "t": now(), **event})
        self.flush()

    def note(self, **event: Any) -> None:
        """Append a free-form event."""
        self._write({"t": now(), **event})
        self.flush()

    def done(self, indices: Iterable[int]) -> None:
        """Record calls whose result the storage holds."""
        if self.done_line is not None:
            self._fh.write("".join(self.done_line(i) + "\n" for i in indices))
            return
        for i in indices:
            self._write({"i": i, "s": DONE, **self._about(i)})

    def failed(self, failure: Failure, arguments: str) -> None:
        """Record a call that failed for good."""
        about = self._about(failure.index)
        about.pop("attempt", None)
        about.pop("worker", None)
        self._write({"i": failure.index, "s": FAILED, **about, "kind": failure.kind,
                     "type": failure.exc_type, "msg": failure.message,
                     "tb": failure.traceback[-4000:], "attempts": failure.attempts,
                     "worker": failure.worker, "args": arguments})

    def flush(self) -> None:
        """Push written lines to the operating system (they survive our process dying).

        Raises the first write error (a full disk) once, here: the run loop then ends the
        run with a failure per call it could not record. Later errors only drop lines.
        """
        try:
            self._fh.flush()
        except OSError as exc:
            self._lost(exc)
        else:
            self._good = os.fstat(self._fh.fileno()).st_size
        unreported, self._unreported = self._unreported, None
        if unreported is not None:
            raise unreported

    def _lost(self, exc: OSError) -> None:
        """Writing failed: drop the lines not written in full, so the file ends with a whole
        line and the calls those lines record count as not done."""
        with contextlib.suppress(OSError):
            self._fh.close()  # closes even when its final flush fails: the buffer is gone
        with contextlib.suppress(OSError):
            os.truncate(self._path, self._good)
        self._fh = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if self.unwritable is None:
            self.unwritable = self._unreported = exc

    def close(self) -> None:
        """Flush and close the file."""
        if not self._fh.closed:
            self.flush()
            self._fh.close()


def wall_clock() -> float:
    """Seconds since the epoch, as call lines record ``end`` (and ``start``)."""
    return round(time.time(), 3)
