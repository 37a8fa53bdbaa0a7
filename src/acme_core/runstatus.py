"""How a run on disk stands: what ``python -m acme_core status`` shows.

Read from the run's folder only: the manifest (``acme_manifest.jsonl``: the calls' states
and the sessions that ran them, each ``compute()`` one ``session`` event when it starts and
one when it ends) and the run marker ``acme_run.json`` (backend). Manifests written before
sessions were recorded still read: their state then follows from the counts alone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from . import manifest
from .calls import Failure
from .failures import FailureTable

RUNNING, INTERRUPTED, FAILED, COMPLETE = "running", "interrupted", "failed", "complete"
#: Keys under which a call's code version may be recorded (older and newer manifests).
CODE_KEYS = ("code_version", "code", "cv")


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

    def failure_table(self) -> FailureTable:
        """The failed calls as a :class:`~acme_core.failures.FailureTable`."""
        return FailureTable([
            (Failure(int(e["i"]), e.get("kind", "?"), e.get("type", "?"), e.get("msg", ""),
                     e.get("tb", ""), e.get("worker", ""), e.get("attempts", 1)),
             e.get("args", "")) for e in self.failures])

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
        if self.older_code:
            lines.append(f"  note      {self.older_code} of the done calls' results come from "
                         f"an earlier version of the function's code")
        if self.failures:
            lines += ["", str(self.failure_table())]
        if self.state in (INTERRUPTED, FAILED):
            lines += ["", "To run the failed and missing calls: create the same ParallelMap "
                          f"with output_dir={self.output_dir!r} and call compute()."]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Everything, for ``status --json``."""
        return asdict(self)


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
    header, sessions, code_of = _events(output_dir)
    marker = _marker(output_dir)
    status = RunStatus(
        output_dir=output_dir, func=str(header.get("func")), n_calls=state.n_inputs,
        backend=str(_last(sessions, "backend") or marker.get("backend") or "?"),
        storage=str(header.get("storage") or marker.get("storage") or "?"),
        state=COMPLETE, done=len(state.done), failed=len(state.failed),
        missing=len(state.missing),
        started=(sessions[0].get("t") if sessions else None) or header.get("created"),
        failures=[{"i": i, **e} for i, e in sorted(state.failures.items())])
    _session_state(status, sessions, now or dt.datetime.now())
    current = _last(sessions, "code_version") or header.get("code_version")
    if current is not None:
        status.older_code = sum(1 for i in state.done if code_of.get(i, current) != current)
    return status


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


def _events(output_dir: str) -> tuple[dict, list[dict], dict[int, str]]:
    """The header, the session events and each done call's code version."""
    sessions, code_of = [], {}
    with open(manifest.path_in(output_dir), encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        for line in fh:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if "session" in event:
                sessions.append(event)
            elif "i" in event and event.get("s") == manifest.DONE:
                code = next((event[k] for k in CODE_KEYS if k in event), None)
                if code is not None:
                    code_of[int(event["i"])] = str(code)
    return header, sessions, code_of


def _marker(output_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(output_dir, "acme_run.json"), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _last(sessions: list[dict], key: str) -> Any:
    return next((s[key] for s in reversed(sessions) if key in s), None)


def _session_state(status: RunStatus, sessions: list[dict], now: dt.datetime) -> None:
    """State and elapsed time from the sessions (or, without any, from the counts)."""
    elapsed, open_session = 0.0, None
    for event in sessions:
        if event["session"] == "started":
            open_session = event
        elif open_session is not None:
            elapsed += _seconds(open_session.get("t"), event.get("t"))
            open_session = None
    ended = sessions[-1] if sessions and sessions[-1]["session"] == "ended" else None
    if open_session is not None:
        status.pid, status.host = open_session.get("pid"), open_session.get("host")
        if _alive(status.pid, status.host):
            status.state = RUNNING
            elapsed += _seconds(open_session.get("t"), now.isoformat(timespec="seconds"))
            status.elapsed = elapsed
            return
        status.state = INTERRUPTED  # its process died without ending the session
    elif ended is not None and ended.get("state") == INTERRUPTED:
        status.state = INTERRUPTED
    elif status.failed:
        status.state = FAILED
    elif status.missing:
        status.state = INTERRUPTED
    status.elapsed = elapsed if sessions else None


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return max(0.0, (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start))
               .total_seconds())


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
    return True


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {sec:02d}s" if hours else f"{minutes}m {sec:02d}s"


def session_started(backend: str, code_version: str | None = None) -> dict[str, Any]:
    """The manifest event a ``compute()`` writes when it starts."""
    event: dict[str, Any] = {"session": "started", "pid": os.getpid(),
                             "host": socket.gethostname(), "backend": backend}
    if code_version is not None:
        event["code_version"] = code_version
    return event


def session_ended(state: str, elapsed: float) -> dict[str, Any]:
    """The manifest event a ``compute()`` writes when it ends (finished, failed or
    interrupted)."""
    return {"session": "ended", "state": state, "elapsed": round(elapsed, 3)}
