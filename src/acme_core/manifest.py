"""The run manifest: the truth on disk about every call of a run and where its result came from.

``<output_dir>/.acme_manifest.jsonl`` (:data:`NAME`) is JSON lines, appended and never
rewritten. The first line describes the run (function name, number of calls, storage, the
format it was created with). Then, for every ``compute()`` (a *session*: the first, a second
on the same object, a resumed one, a debug one alike):

- ``{"run": 2, "code": ..., "backend": ..., "broadcast": {...}, ...}`` when it starts: its
  code version (:func:`acme_core.codeversion.code_version`), backend, host, the digests of
  the broadcast arguments and what it was asked to re-run;
- one *done record* per group of calls made durable together (format 3)::

      {"s": "done", "run": 2, "code": ..., "i": [0, 100, 250, 3],
       "n": [60, 40, 3], "attempt": [1, 1, 2], "worker": ["host:12", "host:13", "host:12"],
       "end": [...], "t0": [...], "dur": [...], "a": {"x": "<hex>", "y": "<hex>"}}

  ``i``: the calls as runs of consecutive indices, ``[first, count, first, count, ...]``
  (here 0-99 and 250-252), in the order of the columns; ``n``, ``attempt``, ``worker``,
  ``end`` (the parent's wall clock when the part came back) and ``t0`` (when its first call
  started on its worker, or null) are per *part* (a batch that ran back to back: ``n``
  calls each); ``dur`` is each call's duration in microseconds; ``a`` holds, per split
  argument, every call's :data:`~acme_core.callkeys.ARG_BYTES`-byte digest as one hex
  string (see :mod:`acme_core.callkeys`);
- one line per failed call with its kind, type, message, traceback and attempts:
  ``{"i": 3, "s": "failed", "run": 2, "key": ..., "a": {...}, "code": ..., "kind": ...}``;
- ``{"end": 2, "done": ..., "failed": ..., "elapsed": ..., "calls_elapsed": ...}`` when it
  ends: the session's seconds from its start line to its end (workers started, results
  written) and the seconds its calls ran.

The last event of a call is its state. A crash can cut the last line short; such a line
is ignored (its calls then run again). Format 2 (before) wrote one line per done call,
``{"i": 3, "s": "done", "run": 2, "key": ..., "a": {...}, "code": ..., "attempt": 1,
"worker": "host:pid", "end": ..., "dur": ..., "start": ...}``; :func:`read` reads both, also
mixed in one file (a format-2 run resumed by this version).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import previous_names
from .call_runs import index_runs
from .errors import ManifestError
from .manifest_state import DONE, FAILED, RunState
from .records import Failure

__all__ = ["DONE", "FAILED", "FORMAT", "NAME", "ManifestWriter", "RunState", "read"]

NAME = ".acme_manifest.jsonl"
#: Version of the manifest format written here (2: a line per done call).
FORMAT = 3



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
    # line by line: the manifest of 10^6 calls is 34 MB, and the file read whole (with
    # its lines) doubled the peak memory of a resume
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
        if not first:
            raise _damaged(path, "it is empty")
        try:
            header = json.loads(first)
        except json.JSONDecodeError:
            raise _damaged(path, "its first line is not JSON") from None
        if not isinstance(header, dict) or "n_inputs" not in header or "func" not in header:
            raise _damaged(path, "its first line does not describe a run")
        state = RunState(header=header)
        for line, text in enumerate(fh, start=1):
            try:
                event = json.loads(text)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if isinstance(event, dict):
                _add(state, event, line)
    return state


def _add(state: RunState, event: dict[str, Any], line: int) -> None:
    status = event.get("s")
    if status == DONE and isinstance(event.get("i"), list):
        state.add_record(event, line)
    elif "i" in event and status in (DONE, FAILED):
        state.add_event(int(event["i"]), event, line)
    elif "run" in event and "s" not in event:
        state.runs[int(event["run"])] = event
    elif "end" in event:
        state.ends[int(event["end"])] = event


def read_header(output_dir: str) -> dict[str, Any]:
    """The manifest's first line (the run's description), without reading the calls."""
    path = path_in(output_dir)
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        raise _damaged(path, "its first line is not JSON") from None
    if not isinstance(header, dict):
        raise _damaged(path, "its first line does not describe a run")
    return header


# ---------------------------------------------------------------------------- writing
#: ``provenance(index) -> dict``: what a call's line records besides its state.
Provenance = Callable[[int], dict[str, Any]]
#: ``record_of(indices) -> dict``: what a done record of those calls holds besides ``s``
#: and ``i`` (its columns, in the order of ``indices``); its ``"a"``, when present, maps
#: argument names to hex strings (written into the line as they are).
RecordOf = Callable[[Sequence[int]], dict[str, Any]]


class ManifestWriter:
    """Appends events to the manifest; lines are flushed after each group of outcomes.

    Parameters
    ----------
    output_dir : str
        The run's directory.
    header : dict, optional
        Written first (a new run).
    provenance : callable, optional
        ``provenance(index)``: the fields a failed call's line carries besides its state
        (argument key and digests, code version).

    Examples
    --------
    >>> from acme_core import manifest
    >>> writer = manifest.ManifestWriter(str(tmp_path), {"func": "f", "n_inputs": 4})
    >>> writer.done([0, 1, 3]); writer.close()
    >>> sorted(manifest.read(str(tmp_path)).done)
    [0, 1, 3]
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
        #: ``record_of(indices)``: the columns of a done record (None: only ``s`` and ``i``).
        self.record_of: RecordOf | None = None
        if header is not None:
            self._write(header)
        self.flush()

    def _write(self, event: dict[str, Any]) -> None:
        self._write_line(json.dumps(event, separators=(",", ":")))

    def _write_line(self, line: str) -> None:
        try:
            self._fh.write(line + "\n")
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

    def done(self, indices: Sequence[int]) -> None:
        """Record calls whose result the storage holds: one done record for all of them."""
        if not len(indices):
            return
        about = self.record_of(indices) if self.record_of is not None else {}
        digests = about.pop("a", None)
        if digests is None:
            self._write({"s": DONE, "i": index_runs(indices), **about})
            return
        # the digests' hex strings (16 characters a call and argument) go into the line as
        # they are: hex needs no escaping, and json.dumps would scan and copy each one (2 ms
        # for 10,000 calls of two arguments)
        line = json.dumps({"s": DONE, "i": index_runs(indices), **about},
                          separators=(",", ":"))
        spliced = ",".join(f"{json.dumps(name)}:\"{text}\"" for name, text in digests.items())
        self._write_line(f'{line[:-1]},"a":{{{spliced}}}}}')

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
