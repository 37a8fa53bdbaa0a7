"""What travels to a worker and back: batches of calls, the call program, call outcomes.

An executor never looks inside these. It ships a :class:`CallBatch` and a reference to the
run's :class:`CallProgram` (the program object itself, its pickled bytes, or a
:class:`ProgramFile`) to a worker, calls :func:`run_batch` there, and hands the returned
list of :class:`CallOutcome` back to the run loop.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

#: Failure kinds: raised by the user's function, the worker process died, writing failed.
ERROR, LOST_WORKER, STORAGE = "error", "lost-worker", "storage"


class ResultWriter(Protocol):
    """The worker-side half of a storage: turns a return value into what travels back."""

    def write(self, index: int, value: Any) -> Any:  # pragma: no cover - protocol
        """Store ``value`` of call ``index``; return a small receipt or the value itself."""


@dataclass(slots=True)
class Failure:
    """Why one call has no result.

    Examples
    --------
    >>> from acme_core.calls import Failure
    >>> Failure(index=3, kind="error", exc_type="ValueError", message="boom").exc_type
    'ValueError'
    """

    index: int
    kind: str
    exc_type: str
    message: str
    traceback: str = ""
    worker: str = ""
    attempts: int = 1


@dataclass(slots=True)
class CallOutcome:
    """The outcome of one call: a value (or storage receipt), or a failure.

    Examples
    --------
    >>> from acme_core.calls import CallOutcome
    >>> CallOutcome(index=0, value=18).ok
    True
    """

    index: int
    value: Any = None
    failure: Failure | None = None
    duration: float = 0.0
    worker: str = ""
    attempt: int = 1

    @property
    def ok(self) -> bool:
        """True when the call returned and its result was stored."""
        return self.failure is None


@dataclass(frozen=True, slots=True)
class CallBatch:
    """Call indices to run together, with each call's own (split) argument values.

    ``split`` holds, per call, either the pickled bytes of its split-argument tuple
    (``pickled=True``, for executors that run elsewhere) or the tuple itself.
    """

    run_id: str
    indices: tuple[int, ...]
    split: tuple[Any, ...]
    pickled: bool
    attempt: int = 1

    def lost(self, reason: str, worker: str = "") -> list[CallOutcome]:
        """Outcomes for every call of this batch when the worker running it was lost.

        Executors call this when a worker process, job or node died under the batch.

        Examples
        --------
        >>> from acme_core.calls import CallBatch
        >>> b = CallBatch("run", (4, 5), ((), ()), pickled=False)
        >>> [o.failure.kind for o in b.lost("killed")]
        ['lost-worker', 'lost-worker']
        """
        return [
            CallOutcome(
                index=i,
                failure=Failure(i, LOST_WORKER, "WorkerLost", reason, "", worker, self.attempt),
                worker=worker,
                attempt=self.attempt,
            )
            for i in self.indices
        ]


@dataclass(frozen=True)
class ProgramFile:
    """A pickled :class:`CallProgram` in a file every worker can read (loaded once per
    process). ``sys_path`` entries are added to the worker's ``sys.path`` first, so
    functions from the user's own modules import there (ACME forwards ``sys.path`` too)."""

    path: str
    run_id: str
    sys_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class PickledProgram:
    """A pickled :class:`CallProgram` shipped as bytes (e.g. scattered once per worker)."""

    data: bytes
    run_id: str
    sys_path: tuple[str, ...] = ()


@dataclass
class CallProgram:
    """Everything a worker needs besides the per-call values: the function, the
    broadcast arguments (sent once per worker, not once per call), how to assemble a call's
    arguments, and the storage's writer."""

    run_id: str
    func: Any
    slots: tuple[tuple[str, str, int], ...]  # (kind "pos"/"kw", keyword name, source index)
    constants: tuple[Any, ...]
    writer: ResultWriter
    pass_task_id: bool = False

    def arguments(self, index: int, split: tuple[Any, ...]) -> tuple[list[Any], dict[str, Any]]:
        """Assemble the positional and keyword arguments of call ``index``."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for kind, name, source in self.slots:
            value = split[source] if source >= 0 else self.constants[-source - 1]
            if kind == "pos":
                args.append(value)
            else:
                kwargs[name] = value
        if self.pass_task_id:
            kwargs["taskID"] = index
        return args, kwargs

    def call(self, index: int, split: tuple[Any, ...], attempt: int = 1) -> CallOutcome:
        """Run call ``index`` and store its result; exceptions become a :class:`Failure`."""
        start = time.perf_counter()
        where = worker_name()
        try:
            args, kwargs = self.arguments(index, split)
            value = self.func(*args, **kwargs)
        except Exception as exc:
            return _failed(index, ERROR, exc, where, attempt, time.perf_counter() - start)
        try:
            receipt = self.writer.write(index, value)
        except Exception as exc:
            return _failed(index, STORAGE, exc, where, attempt, time.perf_counter() - start)
        return CallOutcome(index, receipt, None, time.perf_counter() - start, where, attempt)


def _failed(index: int, kind: str, exc: BaseException, where: str, attempt: int,
            duration: float) -> CallOutcome:
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    failure = Failure(index, kind, type(exc).__qualname__, str(exc), text, where, attempt)
    return CallOutcome(index, None, failure, duration, where, attempt)


def worker_name() -> str:
    """``host:pid``, plus ``/slurm-<id>`` inside a SLURM job."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    job = os.environ.get("SLURM_JOB_ID")
    return f"{name}/slurm-{job}" if job else name


_programs: OrderedDict[str, CallProgram] = OrderedDict()
_KEEP_PROGRAMS = 4


ProgramRef = CallProgram | PickledProgram | ProgramFile


def load_program(ref: ProgramRef) -> CallProgram:
    """Return the run's program, unpickling it at most once per process and run."""
    if isinstance(ref, CallProgram):
        return ref
    program = _programs.get(ref.run_id)
    if program is None:
        for entry in ref.sys_path:
            if entry not in sys.path:
                sys.path.append(entry)
        if isinstance(ref, ProgramFile):
            with open(ref.path, "rb") as fh:
                program = pickle.load(fh)
        else:
            program = pickle.loads(ref.data)
        _programs[ref.run_id] = program
        while len(_programs) > _KEEP_PROGRAMS:
            _programs.popitem(last=False)
    return program


def run_batch(ref: ProgramRef, batch: CallBatch) -> list[CallOutcome]:
    """Run every call of ``batch``; what an executor calls on its worker.

    Parameters
    ----------
    ref : CallProgram, PickledProgram or ProgramFile
        The run's program, as the executor chose to ship it.
    batch : CallBatch
        The calls to run.

    Returns
    -------
    list of CallOutcome
        One per call, in the batch's order.

    Examples
    --------
    >>> from acme_core.calls import CallBatch, CallProgram, run_batch
    >>> class Keep:
    ...     def write(self, index, value):
    ...         return value
    >>> prog = CallProgram("r1", lambda x: x * 2, (("pos", "x", 0),), (), Keep())
    >>> [o.value for o in run_batch(prog, CallBatch("r1", (0, 1), ((5,), (6,)), pickled=False))]
    [10, 12]
    """
    program = load_program(ref)
    loads = pickle.loads
    return [
        program.call(index, loads(split) if batch.pickled else split, batch.attempt)
        for index, split in zip(batch.indices, batch.split, strict=False)
    ]
