"""What travels to a worker and back: batches of calls, the call program, call outcomes.

An executor never looks inside these. It ships a :class:`CallBatch` and a reference to the
run's :class:`CallProgram` (the program object itself, a :class:`PickledProgram`, or a
:class:`ProgramFile`) to a worker, calls :func:`run_batch` there, and hands the returned
:class:`BatchOutcome` back to the run loop. A batch's outcome is compact (values, durations
and failures as lists), so ten thousand tiny calls cost one small message, while every
call keeps its own value, failure and attempt count.
"""

from __future__ import annotations

import errno
import faulthandler
import os
import pickle
import socket
import sys
import time
import traceback
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, MutableSequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

# The call records live with every other plugin-facing record; plugins import them from here.
from .records import (  # noqa: F401 - re-exported
    ERROR,
    KILLED_WORKER,
    LOST_NEIGHBOUR,
    LOST_WORKER,
    STORAGE,
    TIMEOUT,
    UNPICKLABLE,
    BatchOutcome,
    CallBatch,
    CallOutcome,
    Failure,
)


class ResultWriter(Protocol):
    """The worker-side half of a storage: turns a return value into what travels back."""

    def write(self, index: int, value: Any) -> Any:  # pragma: no cover - protocol
        """Store ``value`` of call ``index``; return a small receipt or the value itself."""

    # Optional: ``end_batch(indices) -> dict[int, BaseException]``, called once after the
    # last call of a batch, before its outcome leaves the worker: make the batch's results
    # durable and return the calls whose results could not be stored (they fail as
    # ``storage``). See ``CallProgram.end_batch``. Optional too: ``begin_batch()``, called
    # by ``run_batch`` before the batch's first call (a writer may then defer work to
    # ``end_batch``; without it every ``write`` stands alone). Optional too:
    # ``batched_types``, a set of immutable result types (plain numbers) that ``run_batch``
    # does not pass to ``write`` one by one: ``end_batch(indices, values)`` then gets the
    # batch's values (those of other types already receipts, failed calls None) and
    # replaces each value of those types with its receipt, in one pass.


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
    #: Every call's split values (one sequence per split argument), when they are small
    #: enough to travel once per worker; None when batches carry them.
    split: tuple[Any, ...] | None = None
    #: Runs each call instead of a plain ``func(*args, **kwargs)`` when set: its own random
    #: streams (``acme_core.seeding``) and the result store (``acme_core.reuse``).
    around: Any = None

    def split_values(self, index: int) -> tuple[Any, ...]:
        """Call ``index``'s split values from the program's own copy."""
        assert self.split is not None
        return tuple(seq[index] for seq in self.split)

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

    def call(self, index: int, split: tuple[Any, ...], attempt: int = 1,
             where: str = "") -> tuple[Any, Failure | None]:
        """Run call ``index`` and store its result: ``(receipt, None)`` or ``(None, failure)``."""
        try:
            value = self.caller()(index, split)
        except (Exception, SystemExit) as exc:  # sys.exit() in a call fails that call only
            return None, _failure(index, ERROR, exc, where, attempt)
        try:
            return self.writer.write(index, value), None
        except Exception as exc:
            failure = _failure(index, STORAGE, exc, where, attempt)
            failure.message += disk_hint(exc, " ")
            return None, failure

    def caller(self) -> Callable[[int, tuple[Any, ...]], Any]:
        """``caller()(index, split)`` runs call ``index`` (without storing its result), in
        the fastest form this program allows: the function called with the split values
        as they are when they are its only, positional, arguments in order.

        Examples
        --------
        >>> from acme_core.calls import CallProgram
        >>> prog = CallProgram("r1", pow, (("pos", "x", 0), ("pos", "y", -1)), (2,), None)
        >>> prog.caller()(0, (3,))
        9
        """
        func, around = self.func, self.around
        if self.takes_split_as_is():
            return lambda index, split: func(*split)
        if around is None:
            def run(index: int, split: tuple[Any, ...]) -> Any:
                args, kwargs = self.arguments(index, split)
                return func(*args, **kwargs)
            return run

        def run_around(index: int, split: tuple[Any, ...]) -> Any:
            args, kwargs = self.arguments(index, split)
            return around.run(func, index, args, kwargs)
        return run_around

    def takes_split_as_is(self) -> bool:
        """True when a call is ``func(*split)``: the split values are the function's only
        arguments, positional and in order, with no ``taskID`` and nothing run around it.

        Examples
        --------
        >>> from acme_core.calls import CallProgram
        >>> CallProgram("r1", pow, (("pos", "x", 0), ("pos", "y", 1)), (), None).takes_split_as_is()
        True
        >>> CallProgram("r1", pow, (("pos", "x", 0), ("pos", "y", -1)), (2,), None).takes_split_as_is()
        False
        """
        in_order = [(kind, source) for kind, _, source in self.slots] == [
            ("pos", k) for k in range(len(self.slots))]
        return self.around is None and in_order and not self.pass_task_id

    def writer_call(self) -> Callable[[int, Any], Any] | None:
        """The writer's ``write``, or None when it sends values back unchanged (nothing
        to call per call)."""
        write = self.writer.write
        return None if getattr(self.writer, "keeps_values", False) else write

    def batched_types(self) -> frozenset[type]:
        """The result types the writer takes for a whole batch in ``end_batch`` instead of
        through ``write`` per call (its optional ``batched_types``; none by default, and
        none for a writer without ``end_batch``, which would never see them)."""
        if getattr(self.writer, "end_batch", None) is None:
            return frozenset()
        return frozenset(getattr(self.writer, "batched_types", ()))

    def begin_batch(self) -> None:
        """Tell the writer a batch starts (writers that publish per batch have
        ``begin_batch``); ``end_batch`` follows."""
        begin = getattr(self.writer, "begin_batch", None)
        if begin is not None:
            begin()

    def end_batch(self, indices: tuple[int, ...], values: list[Any],
                  failures: dict[int, Failure], where: str = "", attempt: int = 1) -> None:
        """Let the writer make the batch's results durable (writers that buffer or seal a
        file per batch have ``end_batch``); calls it could not store fail as ``storage``."""
        end = getattr(self.writer, "end_batch", None)
        if end is None:
            return
        lost = end(indices, values) if self.batched_types() else end(indices)
        for k, index in enumerate(indices):
            if index in lost and index not in failures:
                values[k] = None
                failures[index] = _failure(index, STORAGE, lost[index], where, attempt)
                failures[index].message += disk_hint(lost[index], " ")


def disk_hint(exc: BaseException, prefix: str = "") -> str:
    """What to do when ``exc`` says the disk or the quota is full ("" otherwise).

    Examples
    --------
    >>> import errno
    >>> from acme_core.calls import disk_hint
    >>> disk_hint(OSError(errno.ENOSPC, "No space left on device"))[:18]
    'The disk is full: '
    >>> disk_hint(ValueError("no"))
    ''
    """
    if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return ""
    return (f"{prefix}The disk is full: free space (or raise the quota), then call compute() "
            f"again with the same output_dir: only the calls without a result run")


def _failure(index: int, kind: str, exc: BaseException, where: str, attempt: int) -> Failure:
    """A :class:`Failure` made of plain strings only, whatever ``exc`` does: its ``__str__``
    or its traceback's formatting may raise, and it may not pickle, so nothing of the
    exception object itself travels."""
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    name = _safe(lambda: type(exc).__qualname__, "Exception")
    message = _safe(lambda: str(exc), f"<{name} whose __str__ failed>")
    text = _safe(lambda: "".join(traceback.format_exception(type(exc), exc, tb)),
                 _safe(lambda: "".join(traceback.format_tb(tb)), "") + f"{name}: {message}\n")
    return Failure(index, kind, name, message, text, where, attempt)


def _safe(make: Any, fallback: str) -> str:
    try:
        return str(make())
    except Exception:  # noqa: BLE001 - a user's broken __str__ may raise anything
        return fallback


def worker_name() -> str:
    """``host:pid``, plus ``/slurm-<id>`` inside a SLURM job."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    job = os.environ.get("SLURM_JOB_ID")
    return f"{name}/slurm-{job}" if job else name


ProgramRef = CallProgram | PickledProgram | ProgramFile

#: Programs this worker process has loaded, by run id, with the reference they came from.
_programs: OrderedDict[str, tuple[CallProgram, ProgramRef]] = OrderedDict()
_KEEP_PROGRAMS = 4


def load_program(ref: ProgramRef) -> CallProgram:
    """Return the run's program, unpickling it at most once per process and run.

    A program holds the run's broadcast and (small) split arguments, so a worker keeps few:
    when it loads a new one it drops those whose :class:`ProgramFile` is gone (the run
    ended and removed it), and at most ``_KEEP_PROGRAMS`` in all (oldest first).
    """
    if isinstance(ref, CallProgram):
        return ref
    cached = _programs.get(ref.run_id)
    if cached is not None:
        return cached[0]
    for run_id, (_, old) in list(_programs.items()):   # before loading: lower peak RSS
        if isinstance(old, ProgramFile) and not os.path.exists(old.path):
            del _programs[run_id]
    for entry in ref.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    if isinstance(ref, ProgramFile):
        with open(ref.path, "rb") as fh:
            program = pickle.load(fh)
    else:
        program = pickle.loads(ref.data)
    _programs[ref.run_id] = (program, ref)
    while len(_programs) > _KEEP_PROGRAMS:
        _programs.popitem(last=False)
    return program


def run_batch(ref: ProgramRef, batch: CallBatch) -> BatchOutcome:
    """Run every call of ``batch``; what an executor calls on its worker.

    Parameters
    ----------
    ref : CallProgram, PickledProgram or ProgramFile
        The run's program, as the executor chose to ship it.
    batch : CallBatch
        The calls to run.

    Returns
    -------
    BatchOutcome
        Values, durations and failures of the batch's calls, in the batch's order.

    Examples
    --------
    >>> from acme_core.calls import CallBatch, CallProgram, run_batch
    >>> class Keep:
    ...     def write(self, index, value):
    ...         return value
    >>> prog = CallProgram("r1", lambda x: x * 2, (("pos", "x", 0),), (), Keep(),
    ...                    split=([5, 6],))
    >>> run_batch(prog, CallBatch("r1", (0, 1))).values
    [10, 12]
    """
    program = load_program(ref)
    where, attempt = worker_name(), batch.attempt
    # a re-run (its worker died under it before) prints no second crash dump: the first
    # one said where the call crashed
    quiet = attempt > 1 and faulthandler.is_enabled()
    if quiet:
        faulthandler.disable()
    try:
        program.begin_batch()
        values, durations, failures, started = _run_calls(program, batch, where)
        program.end_batch(batch.indices, values, failures, where, attempt)
    finally:
        if _record is not None:
            _record.idle()
        if quiet:
            faulthandler.enable()
    return BatchOutcome(batch.indices, values, durations, failures, where, attempt, started)


def split_values_of(program: CallProgram, batch: CallBatch) -> Iterable[tuple[Any, ...]]:
    """Each call's split values, in batch order: from the program's own copy, or unpickled
    from (or as carried by) the batch.

    Examples
    --------
    >>> from acme_core.calls import CallBatch, CallProgram, split_values_of
    >>> prog = CallProgram("r1", pow, (("pos", "x", 0),), (), None, split=([5, 6, 7],))
    >>> list(split_values_of(prog, CallBatch("r1", (1,))))
    [(6,)]
    >>> list(split_values_of(prog, CallBatch("r1", (0, 2))))
    [(5,), (7,)]
    >>> list(split_values_of(CallProgram("r1", abs, (), (), None, split=()),
    ...                      CallBatch("r1", (0, 1))))
    [(), ()]
    """
    if batch.split is not None:
        return (pickle.loads(blob) for blob in batch.split) if batch.pickled else batch.split
    assert program.split is not None
    indices = batch.indices
    if len(indices) == 1:
        return [program.split_values(indices[0])]
    if not program.split:        # no split argument (n_inputs): each call gets ()
        return [()] * len(indices)
    pick = itemgetter(*indices)  # one C-level pass per split argument
    return zip(*(pick(seq) for seq in program.split), strict=True)


def _run_calls(program: CallProgram, batch: CallBatch,
               where: str) -> tuple[list[Any], list[float], dict[int, Failure], float]:
    """The per-call loop: a value (or receipt) per call, its duration, the failures.

    Per call it does only what the call needs: its arguments (none to assemble when the
    function takes the split values as they are), the function, the writer (skipped when it
    keeps the value as it is, or takes values of its type at the end of the batch), one
    clock reading and two stores into the call marks; durations are the differences of
    consecutive clock readings."""
    call, write = program.caller(), program.writer_call()
    direct = program.func if program.takes_split_as_is() else None  # no frame of caller()'s
    # values of these types are the writer's at end_batch, all at once (no call per call)
    batched = program.batched_types() if write is not None else frozenset()
    attempt, clock = batch.attempt, time.perf_counter
    marks = _record.marks() if _record is not None else CallMarks.new()
    running, since = marks.index, marks.start
    values: list[Any] = []
    stamps: list[float] = []
    failures: dict[int, Failure] = {}
    append, stamp = values.append, stamps.append
    started, first = time.time(), clock()
    to_marks = time.monotonic() - first  # the marks' clock (CallMarks), read once a batch
    since[0] = first + to_marks
    for index, split in zip(batch.indices, split_values_of(program, batch), strict=True):
        running[0] = index  # its start, the previous call's end, is in since[0] already
        try:
            value = direct(*split) if direct is not None else call(index, split)
        except (Exception, SystemExit) as exc:  # sys.exit() in a call fails that call only
            value = None
            failures[index] = _failure(index, ERROR, exc, where, attempt)
        else:
            if write is not None and type(value) not in batched:
                try:
                    value = write(index, value)
                except Exception as exc:
                    value = None
                    failures[index] = failure = _failure(index, STORAGE, exc, where, attempt)
                    failure.message += disk_hint(exc, " ")
        append(value)
        now = clock()
        stamp(now)
        since[0] = now + to_marks
    durations = [b - a for a, b in zip([first, *stamps[:-1]], stamps, strict=True)]
    return values, durations, failures, started


@dataclass(frozen=True)
class CallMarks:
    """Where one thread's call loop notes the call it runs: ``index[0]``, the call (-1:
    none), and ``start[0]``, when it started on ``time.monotonic()``'s clock. That clock is
    the host's (a parent process on the same host reads it as its own), and neither steps
    with the wall clock nor counts a suspend, so neither makes a call look older than it is.

    Each is a one-item typed buffer (an ``array``, or a memory view of a mapped file a
    parent process reads), so noting a call is two stores and no function call: a method
    called per call cost 0.1 µs, a third of a tiny call's whole time on its worker. After
    a call the loop writes the next call's start, then that call's index when it begins:
    a reader may see the finished call with the next one's start for a moment, which only
    makes it look younger.

    Examples
    --------
    >>> from acme_core.calls import CallMarks
    >>> marks = CallMarks.new()
    >>> marks.running() is None
    True
    >>> marks.start[0] = 100.0; marks.index[0] = 7
    >>> marks.running()
    (7, 100.0)
    """

    index: MutableSequence[int]
    start: MutableSequence[float]

    @classmethod
    def new(cls) -> CallMarks:
        """Marks of this process's memory (no call running)."""
        return cls(array("q", [-1]), array("d", [0.0]))

    def running(self) -> tuple[int, float] | None:
        """``(call, start)`` of the call running, or None."""
        index = self.index[0]
        return None if index < 0 else (index, self.start[0])


class CallRecord(Protocol):
    """Where a worker notes which call it is running (see :func:`set_call_record`)."""

    def marks(self) -> CallMarks:  # pragma: no cover - protocol
        """The marks the calling thread's next batch writes, once per call."""

    def idle(self) -> None:  # pragma: no cover - protocol
        """No call runs in the calling thread (its batch ended)."""


_record: CallRecord | None = None


def set_call_record(record: CallRecord | None) -> None:
    """Make :func:`run_batch` note each call's start in ``record`` (in this process), so
    the parent can tell which call a dead or stuck worker was running, and for how long.

    Examples
    --------
    >>> from acme_core.calls import set_call_record
    >>> set_call_record(None)  # the default: nothing is noted

    Raises
    ------
    TypeError
        When ``record`` has no ``marks()`` and ``idle()`` (a record of the earlier protocol,
        whose ``started(index)`` the loop no longer calls).
    """
    global _record
    if record is not None and not (callable(getattr(record, "marks", None))
                                   and callable(getattr(record, "idle", None))):
        raise TypeError(
            f"set_call_record: {type(record).__qualname__} is not a CallRecord: it needs "
            f"marks() (the CallMarks its thread's calls are noted in, see "
            f"acme_core.calls.CallMarks) and idle(); started(index) is no longer called.")
    _record = record


def run_batch_pickled(ref: ProgramRef, batch: CallBatch) -> bytes:
    """:func:`run_batch`, returning the outcome pickled here, in the worker, so that a
    return value that cannot be pickled fails its own call (kind ``"unpicklable"``), not
    the whole batch. Load the bytes with :func:`pickle.loads`.

    Examples
    --------
    >>> import pickle, threading
    >>> from acme_core.calls import CallBatch, CallProgram, run_batch_pickled
    >>> class Keep:
    ...     def write(self, index, value):
    ...         return value
    >>> prog = CallProgram("r1", lambda x: threading.Lock() if x else x, (("pos", "x", 0),),
    ...                    (), Keep(), split=([0, 1],))
    >>> out = pickle.loads(run_batch_pickled(prog, CallBatch("r1", (0, 1))))
    >>> out.values[0], out.failures[1].kind
    (0, 'unpicklable')
    """
    return pickle_outcome(run_batch(ref, batch))


def pickle_outcome(outcome: BatchOutcome) -> bytes:
    """Pickle ``outcome``; a value that cannot be pickled becomes its call's failure."""
    try:
        return _dumps(outcome)
    except Exception:  # noqa: BLE001 - some value does not pickle: find it below
        pass
    for k, (index, value) in enumerate(zip(outcome.indices, outcome.values, strict=True)):
        try:
            _dumps(value)
        except Exception as exc:  # noqa: BLE001 - whatever the value's pickling raised
            outcome.values[k] = None
            kind = f"{type(value).__module__}.{type(value).__qualname__}"
            outcome.failures[index] = Failure(
                index, UNPICKLABLE, type(exc).__qualname__,
                f"the return value cannot be pickled to travel back to the parent: it is a "
                f"{kind.removeprefix('builtins.')} ({_safe(lambda e=exc: e, '?')}); return "
                f"plain data (numbers, arrays, strings) instead.", "", outcome.worker,
                outcome.attempt)
    return _dumps(outcome)


def _dumps(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj, protocol=5)
    except Exception:  # noqa: BLE001 - lambdas, classes of __main__: try cloudpickle
        import cloudpickle

        return cloudpickle.dumps(obj, protocol=5)
