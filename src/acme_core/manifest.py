"""The run manifest: the truth on disk about which calls have a complete result.

``<output_dir>/acme_manifest.jsonl`` is JSON lines. The first line describes the run
(function, fingerprint, number of calls, storage); every later line is one event, appended
as calls finish and never rewritten: ``{"i": 3, "s": "done"}`` or a failure with its type,
message, traceback, attempts and worker. The last event of a call is its state.

A ParallelMap with the same function, arguments and ``output_dir`` as an earlier run reads
the manifest and runs only the calls without a complete result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from .arguments import CallPlan
from .calls import Failure

NAME = "acme_manifest.jsonl"
DONE, FAILED = "done", "failed"


def path_in(output_dir: str) -> str:
    """The manifest's path in ``output_dir``."""
    return os.path.join(output_dir, NAME)


def exists(output_dir: str) -> bool:
    """True when ``output_dir`` holds an acme-core run's manifest."""
    return os.path.isfile(path_in(output_dir))


# ---------------------------------------------------------------------------- fingerprints
def _code_digest(code: Any, h: Any) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _code_digest(const, h)
        else:
            h.update(repr(const).encode())


def function_fingerprint(func: Any) -> str:
    """Qualified name plus a hash of the code object: stable across interpreters.

    Examples
    --------
    >>> from acme_core.manifest import function_fingerprint
    >>> def f(x):
    ...     return x + 1
    >>> function_fingerprint(f).startswith("f:")
    True
    """
    name = getattr(func, "__qualname__", type(func).__qualname__)
    h = hashlib.sha256()
    code = getattr(func, "__code__", None)
    if code is not None:
        _code_digest(code, h)
        h.update(repr(getattr(func, "__defaults__", None)).encode())
    else:
        h.update(f"{getattr(func, '__module__', '')}.{name}".encode())
    return f"{name}:{h.hexdigest()[:16]}"


def _stable_bytes(value: Any) -> bytes:
    try:
        return pickle.dumps(value, protocol=4)
    except Exception:
        return cloudpickle.dumps(value, protocol=4)


def arguments_fingerprint(plan: CallPlan, call_blobs: list[bytes] | None) -> str:
    """A hash of every call's arguments (split values per call, broadcast values once)."""
    h = hashlib.sha256()
    h.update(str(plan.n_inputs).encode())
    for arg in plan.arguments:
        h.update(f"{arg.kind}:{arg.name}:{arg.split}".encode())
        if not arg.split:
            h.update(_stable_bytes(arg.value))
    if call_blobs is not None:
        for blob in call_blobs:
            h.update(blob)
    else:
        for arg in plan.split_arguments:
            h.update(_stable_bytes(arg.value))
    return h.hexdigest()[:32]


# ---------------------------------------------------------------------------- reading
@dataclass
class RunState:
    """What a manifest says about a run."""

    header: dict[str, Any]
    states: dict[int, str] = field(default_factory=dict)
    failures: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        """Number of calls of the run."""
        return int(self.header["n_inputs"])

    @property
    def done(self) -> set[int]:
        """Calls with a complete result."""
        return {i for i, s in self.states.items() if s == DONE}

    @property
    def failed(self) -> set[int]:
        """Calls whose last attempt failed."""
        return {i for i, s in self.states.items() if s == FAILED}

    @property
    def missing(self) -> set[int]:
        """Calls that never finished (not started, or interrupted)."""
        return set(range(self.n_inputs)) - set(self.states)


def read(output_dir: str) -> RunState:
    """Read the manifest of the run in ``output_dir`` (a torn last line is ignored)."""
    with open(path_in(output_dir), encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    state = RunState(header=json.loads(lines[0]))
    for line in lines[1:]:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if "i" not in event:
            continue
        index, status = int(event["i"]), event["s"]
        state.states[index] = status
        if status == FAILED:
            state.failures[index] = event
        else:
            state.failures.pop(index, None)
    return state


# ---------------------------------------------------------------------------- writing
class ManifestWriter:
    """Appends events to the manifest; lines are flushed after each group of outcomes."""

    def __init__(self, output_dir: str, header: dict[str, Any] | None) -> None:
        path = path_in(output_dir)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if header is not None:
            self._write(header)
        self.flush()

    def _write(self, event: dict[str, Any]) -> None:
        self._fh.write(json.dumps(event, separators=(",", ":")) + "\n")

    def note(self, **event: Any) -> None:
        """Append a free-form event (e.g. a resumed session)."""
        self._write({"t": dt.datetime.now().isoformat(timespec="seconds"), **event})
        self.flush()

    def done(self, indices: Iterable[int]) -> None:
        """Record calls whose result the storage holds."""
        for i in indices:
            self._write({"i": i, "s": DONE})

    def failed(self, failure: Failure, arguments: str) -> None:
        """Record a call that failed for good."""
        self._write({"i": failure.index, "s": FAILED, "kind": failure.kind,
                     "type": failure.exc_type, "msg": failure.message,
                     "tb": failure.traceback[-4000:], "attempts": failure.attempts,
                     "worker": failure.worker, "args": arguments})

    def flush(self) -> None:
        """Push written lines to the operating system (they survive our process dying)."""
        self._fh.flush()

    def close(self) -> None:
        """Flush and close the file."""
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()
