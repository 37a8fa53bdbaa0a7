"""What a manifest says about a run, held in arrays: a few bytes per call, not a dict.

:func:`acme_core.manifest.read` fills a :class:`RunState` line by line. A done record
(format 3) sets the state, session, code version and split-argument digests of all its calls
in NumPy arrays; a per-call line (a failure, or a done line of format 2) is also kept as its
dict, since it carries what arrays do not (a traceback, a format-2 key).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .call_runs import expand_runs
from .callkeys import ARG_BYTES

DONE, FAILED = "done", "failed"
#: A call's state in :attr:`RunState.codes`.
MISSING, DONE_CODE, FAILED_CODE = 0, 1, 2
_CODE_OF = {DONE: DONE_CODE, FAILED: FAILED_CODE}


class RunState:
    """What a manifest says about a run.

    Parameters
    ----------
    header : dict
        The manifest's first line.
    calls : dict, optional
        Per-call events (``{"i": ..., "s": "done" | "failed", ...}``) by index, as format-2
        lines record them.
    runs, ends : dict, optional
        The start and end event of each session, by number.

    Examples
    --------
    >>> from acme_core.manifest import RunState
    >>> state = RunState({"n_inputs": 3}, calls={0: {"i": 0, "s": "done", "code": "a"}},
    ...                  runs={1: {"run": 1, "code": "b"}})
    >>> sorted(state.missing), sorted(state.older_code), state.n_done
    ([1, 2], [0], 1)
    """

    def __init__(self, header: dict[str, Any], calls: dict[int, dict[str, Any]] | None = None,
                 runs: dict[int, dict[str, Any]] | None = None,
                 ends: dict[int, dict[str, Any]] | None = None) -> None:
        self.header = header
        #: The start event of each session, by number.
        self.runs: dict[int, dict[str, Any]] = dict(runs or {})
        #: The end event of each session that ended, by number.
        self.ends: dict[int, dict[str, Any]] = dict(ends or {})
        n = self.n_inputs
        #: Each call's state: MISSING, DONE_CODE or FAILED_CODE.
        self.codes = np.zeros(n, dtype=np.uint8)
        #: Each call's session (-1: not recorded) and code version (an index of ``_versions``).
        self.session_of = np.full(n, -1, dtype=np.int32)
        self._version_of = np.full(n, -1, dtype=np.int32)
        self._versions: dict[Any, int] = {}
        #: Per split argument: every call's digest and whether its last record has one.
        self._digests: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: The line of each call's last event, and the per-call lines: (line, event).
        self._line = np.full(n, -1, dtype=np.int64)
        self._events: dict[int, tuple[int, dict[str, Any]]] = {}
        #: The latest time (seconds since the epoch) a call of each session was recorded
        #: as finished: how long a session that died without its end line ran.
        self.last_end: dict[int, float] = {}
        for line, (i, event) in enumerate((calls or {}).items()):
            self.add_event(int(i), event, line)

    # ------------------------------------------------------------------ filling
    def _version(self, code: Any) -> int:
        return self._versions.setdefault(code, len(self._versions))

    def add_event(self, index: int, event: dict[str, Any], line: int) -> None:
        """Record a per-call line (a failure, or a format-2 done line) read at ``line``."""
        if not 0 <= index < len(self.codes):
            return
        self.codes[index] = _CODE_OF[event["s"]]
        self.session_of[index] = int(event.get("run", -1))
        self._version_of[index] = self._version(event.get("code"))
        self._line[index] = line
        self._events[index] = (line, event)
        self._note_end(int(event.get("run", -1)), event.get("end"))

    def add_record(self, record: dict[str, Any], line: int) -> None:
        """Record a done record (format 3) read at ``line``."""
        calls = expand_runs(record["i"])
        keep = (calls >= 0) & (calls < len(self.codes))
        picked = calls[keep]
        self.codes[picked] = DONE_CODE
        self.session_of[picked] = int(record.get("run", -1))
        self._version_of[picked] = self._version(record.get("code"))
        self._line[picked] = line
        self._note_end(int(record.get("run", -1)), record.get("end"))
        given = record.get("a") or {}
        for name in given.keys() | self._digests.keys():
            digests, has = self._digest_arrays(name)
            if name in given:
                values = np.frombuffer(bytes.fromhex(given[name]), dtype=np.uint8)
                digests[picked] = values.reshape(-1, ARG_BYTES)[keep]
            has[picked] = name in given

    def _note_end(self, session: int, end: Any) -> None:
        """Keep the latest of ``end`` (a time, or a done record's list of them) for
        ``session``."""
        times = [t for t in (end if isinstance(end, list) else [end])
                 if isinstance(t, (int, float))]
        if times:
            self.last_end[session] = max(self.last_end.get(session, 0.0), *times)

    def _digest_arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._digests:
            n = len(self.codes)
            self._digests[name] = (np.zeros((n, ARG_BYTES), dtype=np.uint8),
                                   np.zeros(n, dtype=bool))
        return self._digests[name]

    # ------------------------------------------------------------------ reading
    @property
    def n_inputs(self) -> int:
        """Number of calls of the run."""
        return int(self.header["n_inputs"])

    def event_of(self, index: int) -> dict[str, Any] | None:
        """Call ``index``'s last event when it is a per-call line (None: a done record, or
        nothing recorded)."""
        line, event = self._events.get(index, (-2, None))
        return event if line == self._line[index] else None

    def split_digests(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Split argument ``name``'s digests recorded by done records, ``(digests, has)``
        (``has``: the call's last done record holds one); None when no record has any."""
        return self._digests.get(name)

    @property
    def split_names(self) -> set[str]:
        """The split arguments done records hold digests of."""
        return set(self._digests)

    def version_ids(self, code: Any) -> tuple[np.ndarray, int]:
        """Each call's code version as an id, and the id of ``code`` (-2: never recorded)."""
        return self._version_of, self._versions.get(code, -2)

    @property
    def per_call_lines(self) -> np.ndarray:
        """Whether each call's last event is a per-call line (failure, format-2 done line)."""
        flags = np.zeros(len(self.codes), dtype=bool)
        current = [i for i, (line, _) in self._events.items() if line == self._line[i]]
        flags[current] = True
        return flags

    def _where(self, code: int) -> set[int]:
        return set(np.flatnonzero(self.codes == code).tolist())

    @property
    def calls(self) -> dict[int, dict[str, Any]]:
        """The last event of each call (a done record's calls as ``{"i", "s", "run",
        "code", "a"}``; built on request)."""
        names = {v: k for k, v in self._versions.items()}
        out = {}
        for i in np.flatnonzero(self.codes).tolist():
            event = self.event_of(i)
            if event is None:
                a = {name: d[i].tobytes().hex() for name, (d, has) in self._digests.items()
                     if has[i]}
                event = {"i": i, "s": DONE, "run": int(self.session_of[i]),
                         "code": names[int(self._version_of[i])], "a": a}
            out[i] = event
        return out

    @property
    def states(self) -> dict[int, str]:
        """Each recorded call's state (``"done"`` or ``"failed"``)."""
        return {i: DONE if c == DONE_CODE else FAILED
                for i, c in zip(np.flatnonzero(self.codes).tolist(),
                                self.codes[self.codes != 0].tolist(), strict=True)}

    @property
    def done(self) -> set[int]:
        """Calls with a complete result."""
        return self._where(DONE_CODE)

    @property
    def failed(self) -> set[int]:
        """Calls whose last attempt failed."""
        return self._where(FAILED_CODE)

    @property
    def missing(self) -> set[int]:
        """Calls that never finished (not started, or interrupted)."""
        return self._where(MISSING)

    @property
    def n_done(self) -> int:
        """Number of calls with a complete result."""
        return int(np.count_nonzero(self.codes == DONE_CODE))

    @property
    def n_failed(self) -> int:
        """Number of calls whose last attempt failed."""
        return int(np.count_nonzero(self.codes == FAILED_CODE))

    @property
    def n_missing(self) -> int:
        """Number of calls that never finished."""
        return int(np.count_nonzero(self.codes == MISSING))

    @property
    def failures(self) -> dict[int, dict[str, Any]]:
        """The failure event of each failed call."""
        return {i: event for i, (line, event) in self._events.items()
                if line == self._line[i] and event["s"] == FAILED}

    @property
    def latest_run(self) -> dict[str, Any] | None:
        """The start event of the latest session."""
        return self.runs[max(self.runs)] if self.runs else None

    def _older_mask(self) -> np.ndarray:
        latest = self.latest_run
        if latest is None:
            return np.zeros(len(self.codes), dtype=bool)
        ids, current = self.version_ids(latest.get("code"))
        return (self.codes == DONE_CODE) & (ids != current)

    @property
    def older_code(self) -> set[int]:
        """Done calls whose result came from another code version than the latest
        session's (``status`` and ``load()`` show them)."""
        return set(np.flatnonzero(self._older_mask()).tolist())

    @property
    def n_older_code(self) -> int:
        """Number of :attr:`older_code` calls."""
        return int(np.count_nonzero(self._older_mask()))

    def broadcast_of(self, index: int) -> dict[str, str] | None:
        """The broadcast-argument digests call ``index`` ran with (None: unknown)."""
        run = self.runs.get(int(self.session_of[index]))
        return None if run is None else run.get("broadcast")
