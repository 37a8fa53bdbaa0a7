"""How a run on disk stands: what ``python -m acme_core status`` shows.

Read from the run's folder only: the manifest (``.acme_manifest.jsonl``: the calls' states
and the sessions that ran them, each ``compute()`` a start line with its host and pid and an
end line) and the run marker ``.acme_run.json`` (or their names in a folder of the previous
layout, :mod:`acme_core.previous_names`). Manifests written before sessions were
recorded still read: their state then follows from the counts alone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import manifest, previous_names
from .call_runs import index_runs
from .failures import FailureTable
from .manifest_state import MISSING
from .output_dir import MARKER
from .records import Failure

RUNNING, INTERRUPTED, FAILED, COMPLETE = "running", "interrupted", "failed", "complete"
#: How many ranges of missing calls ``describe()`` spells out: enough for the gaps a crash
#: or an interrupt leaves (one range per worker in flight plus the unstarted tail), short
#: enough for one line.
MISSING_RANGES_SHOWN = 8


@dataclass
class RunStatus:
    """The story of one run folder.

    Examples
    --------
    >>> from acme_core.runstatus import RunStatus
    >>> s = RunStatus("ACME_x", "f", 4, "joblib", "hdf5", "complete", done=4)
    >>> s.one_line()  # doctest: +NORMALIZE_WHITESPACE
    'ACME_x  complete    f  4/4 done, 0 failed, 0 missing  joblib/hdf5'
    """

    output_dir: str
    func: str
    n_calls: int
    backend: str
    storage: str
    state: str
    done: int = 0
    failed: int = 0
    missing: int = 0
    started: str | None = None
    elapsed: float | None = None
    pid: int | None = None
    host: str | None = None
    older_code: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: The missing calls as ``[first, last]`` ranges of call indices, in order.
    missing_calls: list[list[int]] = field(default_factory=list)

    def failure_table(self) -> FailureTable:
        """The failed calls as a :class:`~acme_core.failures.FailureTable` (ending with the
        line that replays each one)."""
        table = FailureTable([
            (Failure(int(e["i"]), e.get("kind", "?"), e.get("type", "?"), e.get("msg", ""),
                     e.get("tb", ""), e.get("worker", ""), e.get("attempts", 1)),
             e.get("args", "")) for e in self.failures])
        table.replay_dir = self.output_dir
        return table

    def one_line(self) -> str:
        """One line of a folder listing."""
        when = f"  started {self.started}" if self.started else ""
        return (f"{os.path.basename(os.path.normpath(self.output_dir))}  {self.state:<11} "
                f"{self.func}  {self.done}/{self.n_calls} done, {self.failed} failed, "
                f"{self.missing} missing  {self.backend}/{self.storage}{when}")

    def describe(self) -> str:
        """The full text: header, counts, failures and what to do next."""
        state = self.state
        if state == RUNNING:
            state += f" (pid {self.pid} on {self.host})"
        lines = [f"run of {self.func!r} in {self.output_dir}: {self.n_calls} calls",
                 f"  state     {state}",
                 f"  backend   {self.backend}",
                 f"  storage   {self.storage}",
                 f"  started   {self.started or 'unknown'}",
                 f"  elapsed   {_duration(self.elapsed)}",
                 f"  calls     done {self.done}, failed {self.failed}, missing {self.missing}"]
        if self.missing_calls:
            lines.append(f"  missing   {ranges_text(self.missing_calls)}")
        if self.older_code:
            lines.append(f"  note      {self.older_code} of the {self.done} results come from an "
                         f"earlier version of the function's code than the latest run's "
                         f"(rerun=\"changed\" re-runs them)")
        if self.failures:
            lines += ["", str(self.failure_table())]
        if self.state in (INTERRUPTED, FAILED) and (self.failed or self.missing):
            lines += ["", "To run the failed and missing calls: create the same ParallelMap "
                          f"with output_dir={self.output_dir!r} and call compute()."]
        elif self.state == INTERRUPTED:  # killed after its last call, before it ended
            lines += ["", "Every call has a result, but the run stopped before its end (what "
                          "its storage writes last, such as a results container): create the "
                          f"same ParallelMap with output_dir={self.output_dir!r} and call "
                          "compute() to finish; no call runs again."]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Everything, for ``status --json``."""
        data = asdict(self)
        if self.elapsed is not None:
            data["elapsed"] = round(self.elapsed, 3)
        return data


def read_status(output_dir: str, now: dt.datetime | None = None) -> RunStatus | None:
    """The status of the run in ``output_dir``, or None when it holds no run.

    Examples
    --------
    >>> from acme_core.runstatus import read_status
    >>> read_status(str(tmp_path)) is None
    True
    """
    if not manifest.exists(output_dir):
        return None
    state = manifest.read(output_dir)
    header, marker = state.header, _marker(output_dir)
    first = state.runs[min(state.runs)] if state.runs else {}
    latest = state.latest_run or {}
    status = RunStatus(
        output_dir=output_dir, func=str(header.get("func")), n_calls=state.n_inputs,
        backend=str(latest.get("backend") or marker.get("backend") or "?"),
        storage=str(header.get("storage") or marker.get("storage") or "?"),
        state=COMPLETE, done=state.n_done, failed=state.n_failed,
        missing=state.n_missing, started=first.get("t") or header.get("created"),
        older_code=state.n_older_code,
        failures=[{"i": i, **e} for i, e in sorted(state.failures.items())],
        missing_calls=_ranges(np.flatnonzero(state.codes == MISSING)))
    _session_state(status, state, now or dt.datetime.now())
    return status


def ranges_text(ranges: list[list[int]], shown: int = MISSING_RANGES_SHOWN) -> str:
    """``ranges`` (``[first, last]`` pairs) as text, the first ``shown`` of them in full.

    Examples
    --------
    >>> from acme_core.runstatus import ranges_text
    >>> ranges_text([[3, 3], [7, 12]])
    'calls 3, 7-12'
    >>> ranges_text([[0, 0], [2, 2], [4, 9]], shown=2)
    'calls 0, 2 and 6 more (4-9)'
    """
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in ranges[:shown]]
    text = "calls " + ", ".join(parts)
    rest = ranges[shown:]
    if rest:
        more = sum(b - a + 1 for a, b in rest)
        text += f" and {more} more ({rest[0][0]}-{rest[-1][1]})"
    return text


def _ranges(indices: np.ndarray) -> list[list[int]]:
    runs = index_runs(indices)
    return [[first, first + count - 1] for first, count in zip(runs[::2], runs[1::2], strict=True)]


def find_runs(folder: str) -> list[RunStatus]:
    """The runs in the sub-folders of ``folder`` (one level), by name."""
    if not os.path.isdir(folder):
        return []
    found = []
    for name in sorted(os.listdir(folder)):
        status = read_status(os.path.join(folder, name))
        if status is not None:
            found.append(status)
    return found


def _marker(output_dir: str) -> dict[str, Any]:
    try:
        with open(previous_names.find(output_dir, MARKER), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _session_state(status: RunStatus, state: manifest.RunState, now: dt.datetime) -> None:
    """State and elapsed time from the sessions (or, without any, from the counts)."""
    latest = max(state.runs, default=None)
    # a session that ended says how long it ran; one whose process died ran until the last
    # call it recorded
    elapsed = sum(float(state.ends[n].get("elapsed", 0.0)) if n in state.ends
                  else _ran_until_death(state.runs[n].get("t"), state.last_end.get(n))
                  for n in state.runs if n != latest or n in state.ends)
    if latest is not None and latest not in state.ends:
        start = state.runs[latest]
        status.pid, status.host = start.get("pid"), start.get("host")
        if _alive(status.pid, status.host):
            status.state = RUNNING
            status.elapsed = elapsed + _seconds(start.get("t"),
                                                now.isoformat(timespec="seconds"))
            return
        status.state = INTERRUPTED  # its process died without ending the session
        status.elapsed = elapsed + _ran_until_death(start.get("t"), state.last_end.get(latest))
        return
    elif latest is not None and state.ends[latest].get("interrupted"):
        status.state = INTERRUPTED
    elif status.failed:
        status.state = FAILED
    elif status.missing:
        status.state = INTERRUPTED
    status.elapsed = elapsed if state.runs else None


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return max(0.0, (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start))
               .total_seconds())


def _ran_until_death(start: str | None, last_end: float | None) -> float:
    """How long a session whose process died ran: from its start to the last call it
    recorded (0 when it recorded none)."""
    if not start or last_end is None:
        return 0.0
    return max(0.0, last_end - dt.datetime.fromisoformat(start).timestamp())


def _alive(pid: int | None, host: str | None) -> bool:
    """Whether the process that runs the session still lives (another host: assumed)."""
    if pid is None:
        return False
    if host not in (None, socket.gethostname()):
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has died and only waits for its parent to collect it (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rpartition(")")[2].split()[:1] == ["Z"]
    except OSError:
        return False


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {sec:02d}s" if hours else f"{minutes}m {sec:02d}s"
