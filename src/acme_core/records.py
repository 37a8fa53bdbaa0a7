"""Every record a plugin receives or returns; the hooks that pass them are in ``hookspecs``.

A plugin author reads two files: :mod:`acme_core.hookspecs` (the hooks, with an example
each) and this one (what the hooks and the protocols hand over). The records are plain
dataclasses with no behaviour beyond small helpers, so this module imports nothing of
acme-core but :mod:`acme_core.interrupts`; every other module may import it.

- Registration: :class:`ExecutorSpec`, :class:`StorageSpec`, :class:`AutoClaim` (returned by
  the registration hooks) and the ``CAPABILITIES`` an executor may declare.
- Settings: :class:`ExecutorSettings` (given to an executor's factory) and
  :class:`StorageSettings` (given to a storage's factory and to ``Storage.load``), and
  :class:`StoredResults` (what ``Storage.load`` reads back).
- A run: :class:`RunContext` (given to ``Executor.start``), :class:`RunInfo` and
  :class:`RunSummary` (given to the lifecycle hooks).
- Calls: :class:`CallBatch` (what an executor ships, its split values maybe as
  :class:`SplitColumns`), :class:`BatchOutcome` (what comes back), :class:`CallOutcome`
  and :class:`Failure` (one call each), and the failure kinds.

The protocols these records serve are :class:`acme_core.executor.Executor` and
:class:`acme_core.storage.base.Storage`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from typing import Any

from . import interrupts

# ---------------------------------------------------------------------- registration

#: Capability names an executor may declare (a conformance suite skips what is missing).
CAPABILITIES = {
    "processes": "calls run in processes other than the caller's",
    "kill-worker": "a worker process can be killed and the run recovers the lost calls",
    "cancel": "pending calls can be cancelled",
    "slurm": "workers run as SLURM jobs",
    "timeout": "a call over ParallelMap's timeout= has its worker stopped and fails alone",
    "imports-main": "worker processes import the caller's __main__ script again (spawn): "
                    "a script must start its run under if __name__ == '__main__'",
}


@dataclass(frozen=True)
class ExecutorSpec:
    """A named backend contributed by a plugin.

    Parameters
    ----------
    name : str
        What users pass as ``backend=``; unique among installed plugins.
    factory : callable or str
        ``factory(settings: ExecutorSettings) -> Executor``. Must validate its settings and
        start nothing (no process, no job) until :meth:`Executor.start`. A string
        ``"module:attribute"`` names it without importing it: the module is imported only
        when the backend is used (:meth:`get_factory`), so loading the plugins costs no
        backend's imports.
    description : str
        One line for ``python -m acme_core plugins``.
    needs_pickle : bool
        True when calls run in another process, so the core must prove the function and
        its arguments picklable before anything starts.
    parameters : tuple of str
        Which of ACME's backend parameters (``acme_core.parameters.BACKEND_PARAMETERS``)
        this backend uses.
    options : mapping of str to str
        Accepted ``backend_options`` keys with a one-line description each.
    capabilities : frozenset of str
        Names from ``CAPABILITIES``.
    check : callable, optional
        ``check(settings: ExecutorSettings) -> None``, called when the ParallelMap is made:
        validates what needs the backend's environment (e.g. ``partition`` against the
        cluster's partitions, from one cached query) and raises ``ValueError`` naming the
        parameter and the valid values. Starts nothing.

    Examples
    --------
    >>> from acme_core.records import ExecutorSpec
    >>> spec = ExecutorSpec(name="mine", factory=object, description="demo")
    >>> spec.name
    'mine'
    """

    name: str
    factory: Callable[..., Any] | str
    description: str = ""
    needs_pickle: bool = True
    parameters: tuple[str, ...] = ("n_workers",)
    options: Mapping[str, str] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()
    check: Callable[[Any], None] | None = None

    def get_factory(self) -> Callable[..., Any]:
        """The factory, imported now when it was given as ``"module:attribute"``.

        Examples
        --------
        >>> from acme_core.records import ExecutorSpec
        >>> ExecutorSpec(name="mine", factory="collections:OrderedDict").get_factory()
        <class 'collections.OrderedDict'>
        """
        from .entry_points import load_reference

        return load_reference(self.factory)


@dataclass(frozen=True)
class StorageSpec:
    """A named result storage contributed by a plugin.

    Parameters
    ----------
    name : str
        What users pass as ``storage=``; unique among installed plugins.
    factory : callable or str
        ``factory(settings: StorageSettings) -> Storage``. Validates and creates nothing on
        disk until :meth:`Storage.prepare`. Or ``"module:attribute"``, imported when the
        storage is used (:meth:`get_factory`).
    description : str
        One line for ``python -m acme_core plugins``.
    on_disk : bool
        True when results go to ``output_dir`` (an output directory and a log file are made).

    Examples
    --------
    >>> from acme_core.records import StorageSpec
    >>> StorageSpec(name="zarr", factory=object, on_disk=True).on_disk
    True
    """

    name: str
    factory: Callable[..., Any] | str
    description: str = ""
    on_disk: bool = True

    def get_factory(self) -> Callable[..., Any]:
        """The factory, imported now when it was given as ``"module:attribute"``.

        Examples
        --------
        >>> from acme_core.records import StorageSpec
        >>> StorageSpec(name="x", factory="collections:OrderedDict").get_factory()
        <class 'collections.OrderedDict'>
        """
        from .entry_points import load_reference

        return load_reference(self.factory)


@dataclass(frozen=True)
class AutoClaim:
    """A plugin's claim on ``backend="auto"``; the highest ``priority`` wins.

    Priorities in use: 200 a running dask client the user made, 100 a site's cluster node
    (an ESI node), 0 the default local backend.

    Examples
    --------
    >>> from acme_core.records import AutoClaim
    >>> AutoClaim(backend="joblib", priority=0, reason="default").backend
    'joblib'
    """

    backend: str
    priority: int
    reason: str = ""


# ---------------------------------------------------------------------- settings

@dataclass
class ExecutorSettings:
    """What a backend is configured with: ACME's backend parameters and its own options.

    The fields before ``options`` are ParallelMap's backend parameters, with their
    defaults, as ``acme_core.parameters.PARAMETERS`` declares them (a test holds the two
    together); the core validated every value before the factory gets it.

    Examples
    --------
    >>> from acme_core.records import ExecutorSettings
    >>> ExecutorSettings().n_workers
    'auto'
    """

    partition: str = "auto"
    n_workers: int | str = "auto"
    mem_per_worker: str = "auto"
    setup_timeout: float = 60
    setup_interactive: bool = True
    stop_client: bool | str = "auto"
    options: dict[str, Any] = field(default_factory=dict)
    #: Seconds one call may run (``ParallelMap(timeout=...)``); None: no limit. Backends
    #: that enforce it declare the capability ``"timeout"``.
    timeout: float | None = None


@dataclass
class StorageSettings:
    """What a storage is configured with.

    Examples
    --------
    >>> from acme_core.records import StorageSettings
    >>> StorageSettings(func_name="f", n_calls=4).output_dir is None
    True
    """

    func_name: str
    n_calls: int
    output_dir: str | None = None
    result_shape: tuple[Any, ...] | None = None
    result_dtype: str = "float"
    pass_task_id: bool = False
    #: True when ``output_dir`` holds an earlier, unfinished run of the same calls: keep
    #: its results, (re)build only what is missing; ``collect`` gets only the new calls.
    resume: bool = False


@dataclass(frozen=True)
class StoredResults:
    """What :meth:`Storage.load <acme_core.storage.base.Storage.load>` reads back.

    Examples
    --------
    >>> from acme_core.records import StoredResults
    >>> StoredResults([1, None], [1]).per_call
    True
    """

    #: One entry per call in call order (None for a call without a result), or, with
    #: ``per_call=False``, ACME's stacked form (an array, or ``[array, extras...]``).
    values: Any
    #: The sorted indices of the calls without a result.
    missing: list[int]
    per_call: bool = True


# ---------------------------------------------------------------------- a run

@dataclass
class RunContext:
    """What an executor gets at :meth:`Executor.start`.

    ``program`` is the run's call program; ``program_bytes`` its cloudpickle bytes (set
    when the backend's spec says ``needs_pickle``), proven picklable before anything
    started; ship them as :class:`~acme_core.calls.PickledProgram` or
    :class:`~acme_core.calls.ProgramFile` with ``sys_path``. ``output_dir`` is the run's
    directory, or None for in-memory runs.
    """

    info: RunInfo
    program: Any  # acme_core.calls.CallProgram (behaviour, not a record)
    program_bytes: bytes | None
    n_calls: int
    output_dir: str | None
    sys_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunInfo:
    """One run, as lifecycle hooks see it.

    Examples
    --------
    >>> from acme_core.records import RunInfo
    >>> RunInfo("r1", "f", 4, "joblib", "memory", None).n_calls
    4
    """

    run_id: str
    func_name: str
    n_calls: int
    backend: str
    storage: str
    output_dir: str | None


@dataclass
class RunSummary:
    """Counts at the end of a run.

    Examples
    --------
    >>> from acme_core.records import RunSummary
    >>> RunSummary(n_calls=4, n_done=4).complete
    True
    """

    n_calls: int
    n_done: int = 0
    n_failed: int = 0
    n_retried: int = 0
    interrupted: bool = False
    elapsed: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    def restore_signals(self) -> None:
        """After an interrupted run: let Ctrl-C and SIGTERM act again (they were held back
        while the run cleaned up). Does nothing otherwise."""
        interrupts.release()

    @property
    def complete(self) -> bool:
        """True when every call has a result."""
        return self.n_done == self.n_calls


# ---------------------------------------------------------------------- calls

#: Failure kinds: raised by the user's function, the worker process died, writing failed.
ERROR, LOST_WORKER, STORAGE = "error", "lost-worker", "storage"
#: The call itself killed its worker process (segfault, ``os._exit``, SIGKILL, out of memory).
KILLED_WORKER = "killed-worker"
#: Lost only because another call broke the worker pool it shared: re-run, not charged.
LOST_NEIGHBOUR = "lost-neighbour"
#: The call ran longer than ``timeout`` seconds and its worker was killed.
TIMEOUT = "timeout"
#: The call's return value cannot be pickled, so it cannot travel back to the parent.
UNPICKLABLE = "unpicklable"


@dataclass(slots=True)
class Failure:
    """Why one call has no result.

    Examples
    --------
    >>> from acme_core.records import Failure
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
    >>> from acme_core.records import CallOutcome
    >>> CallOutcome(index=0, value=18).ok
    True
    """

    index: int
    value: Any = None
    failure: Failure | None = None
    duration: float = 0.0
    worker: str = ""
    attempt: int = 1
    #: When the call started (``time.time()`` on its worker); None when unknown.
    started: float | None = None

    @property
    def ok(self) -> bool:
        """True when the call returned and its result was stored."""
        return self.failure is None


class SplitColumns:
    """The split argument values of a batch's calls, held as one tuple per split argument:
    a batch of plain numbers pickles as a few flat tuples instead of one small tuple per
    call (a third of the bytes' pickling time, and of the unpickling where calls run).

    It reads as the per-call tuples it holds: ``len()``, iteration and ``[k]`` give call
    ``k``'s tuple of split values, in batch order.

    Examples
    --------
    >>> from acme_core.records import SplitColumns
    >>> split = SplitColumns(((1, 2, 3), ("a", "b", "c")))
    >>> len(split), split[1], list(split)
    (3, (2, 'b'), [(1, 'a'), (2, 'b'), (3, 'c')])
    """

    __slots__ = ("columns",)

    def __init__(self, columns: tuple[tuple[Any, ...], ...]) -> None:
        if not columns or len({len(column) for column in columns}) != 1:
            raise ValueError("SplitColumns needs at least one column, all of one length.")
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns[0])

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return zip(*self.columns, strict=True)

    def __getitem__(self, k: int) -> tuple[Any, ...]:
        return tuple(column[k] for column in self.columns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SplitColumns) and self.columns == other.columns

    __hash__ = None  # type: ignore[assignment]  # it compares by value, like the tuples

    def __reduce__(self) -> tuple[Any, ...]:
        return SplitColumns, (self.columns,)

    def __repr__(self) -> str:
        return f"SplitColumns({self.columns!r})"


@dataclass(frozen=True, slots=True)
class CallBatch:
    """Call indices to run together.

    ``split`` holds each call's own (split) argument values: per call either the pickled
    bytes of its split-argument tuple (``pickled=True``) or the tuple itself (a tuple of
    them, or a :class:`SplitColumns`: either reads as the per-call tuples); or None when
    the program carries every call's split values (small arguments travel once per worker).
    """

    run_id: str
    indices: tuple[int, ...]
    split: tuple[Any, ...] | None = None
    pickled: bool = False
    attempt: int = 1

    def lost(self, reason: str, worker: str = "", kind: str = LOST_WORKER,
             culprits: dict[int, tuple[str, str]] | None = None) -> BatchOutcome:
        """The outcome of this batch when the worker running it was lost.

        Executors return this when a worker process, job or node died under the batch.
        ``kind`` is the failure kind of every call (``"lost-neighbour"`` when the calls
        were only beside the one that broke a shared pool); ``culprits`` maps the calls
        known to have caused the loss to ``(kind, reason)`` of their own.

        Examples
        --------
        >>> from acme_core.records import CallBatch
        >>> [o.failure.kind for o in CallBatch("run", (4, 5)).lost("killed").outcomes()]
        ['lost-worker', 'lost-worker']
        """
        failures = {i: Failure(i, kind, "WorkerLost", reason, "", worker, self.attempt)
                    for i in self.indices}
        for i, (own_kind, own_reason) in (culprits or {}).items():
            if i in failures:
                failures[i] = Failure(i, own_kind, "WorkerLost", own_reason, "", worker,
                                      self.attempt)
        return BatchOutcome(self.indices, [None] * len(self.indices),
                            [0.0] * len(self.indices), failures, worker, self.attempt)


@dataclass(slots=True)
class BatchOutcome:
    """What one batch sends back: per call a value (or storage receipt) and a duration,
    and a :class:`Failure` for each call that failed. ``started`` is the wall-clock time
    (``time.time()``) the first call started; calls run back to back, so
    :meth:`starts` derives every call's start from it and the durations.

    Examples
    --------
    >>> from acme_core.records import BatchOutcome
    >>> out = BatchOutcome((0, 1), [18, 24], [0.1, 0.1], {}, "host:1")
    >>> [o.value for o in out.outcomes()]
    [18, 24]
    """

    indices: tuple[int, ...]
    values: list[Any]
    durations: list[float]
    failures: dict[int, Failure]
    worker: str = ""
    attempt: int = 1
    started: float = 0.0

    def starts(self) -> list[float]:
        """Each call's start time (seconds since the epoch), in batch order; all 0.0 when
        the backend did not say (a lost batch).

        Examples
        --------
        >>> from acme_core.records import BatchOutcome
        >>> BatchOutcome((0, 1), [1, 2], [0.5, 0.25], {}, started=100.0).starts()
        [100.0, 100.5]
        """
        if not self.started:
            return [0.0] * len(self.indices)
        return list(accumulate(self.durations[:-1], initial=self.started))

    def outcomes(self) -> list[CallOutcome]:
        """One :class:`CallOutcome` per call, in batch order."""
        w, a, failed = self.worker, self.attempt, self.failures
        starts = self.starts() if self.started else repeat(None)
        return [CallOutcome(i, v, failed.get(i), d, w, a, t) for i, v, d, t
                in zip(self.indices, self.values, self.durations, starts, strict=False)]

    def without(self, dropped: set[int]) -> BatchOutcome:
        """The same outcome without the calls ``dropped`` (a backend lost them)."""
        keep = [k for k, i in enumerate(self.indices) if i not in dropped]
        return BatchOutcome(tuple(self.indices[k] for k in keep), [self.values[k] for k in keep],
                            [self.durations[k] for k in keep],
                            {i: f for i, f in self.failures.items() if i not in dropped},
                            self.worker, self.attempt, self._start_of(keep[0]) if keep else 0.0)

    def _start_of(self, k: int) -> float:
        return self.started + sum(self.durations[:k]) if self.started else 0.0
