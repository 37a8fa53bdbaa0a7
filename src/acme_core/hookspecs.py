"""Every hook of acme-core, and the records plugins hand back through them.

A plugin is a plain module (or object) with functions marked ``@hookimpl``. It is found
through the entry-point group ``acme_core`` (see ``plugins.py``); acme-core's own storages
are registered the very same way.

Registration hooks return small frozen records (conda style): :class:`ExecutorSpec` for a
named backend, :class:`StorageSpec` for a named result storage, :class:`AutoClaim` for a
claim on ``backend="auto"``. Lifecycle hooks observe a run; they return nothing and must be
quick, since they run in the parent process between calls.

The protocols the records point at are :class:`acme_core.executor.Executor` (start, submit
batches, stream outcomes back, cancel, close) and :class:`acme_core.storage.base.Storage`
(a worker-side writer and a parent-side collector).

Example
-------
A complete plugin module that adds a backend and watches failures::

    from acme_core import hookimpl
    from acme_core.hookspecs import ExecutorSpec

    @hookimpl
    def acme_core_executors():
        from my_pkg.executor import MyExecutor
        return [ExecutorSpec(name="mine", factory=MyExecutor,
                             description="my cluster", needs_pickle=True)]

    @hookimpl
    def acme_core_call_failed(run, outcome):
        print("call", outcome.index, "failed:", outcome.failure.message)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from .calls import CallOutcome
    from .run import RunInfo, RunSummary

PROJECT = "acme_core"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Capability names an executor may declare (a conformance suite skips what is missing).
CAPABILITIES = {
    "processes": "calls run in processes other than the caller's",
    "kill-worker": "a worker process can be killed and the run recovers the lost calls",
    "cancel": "pending calls can be cancelled",
    "slurm": "workers run as SLURM jobs",
    "imports-main": "worker processes import the caller's __main__ script again (spawn): "
                    "a script must start its run under if __name__ == '__main__'",
}

#: ACME's ParallelMap parameters an executor may use; others are ignored with a warning.
BACKEND_PARAMETERS = (
    "partition",
    "n_workers",
    "mem_per_worker",
    "setup_timeout",
    "setup_interactive",
    "stop_client",
)


@dataclass(frozen=True)
class ExecutorSpec:
    """A named backend contributed by a plugin.

    Parameters
    ----------
    name : str
        What users pass as ``backend=``; unique among installed plugins.
    factory : callable
        ``factory(settings: ExecutorSettings) -> Executor``. Must validate its settings and
        start nothing (no process, no job) until :meth:`Executor.start`.
    description : str
        One line for ``python -m acme_core plugins``.
    needs_pickle : bool
        True when calls run in another process, so the core must prove the function and
        its arguments picklable before anything starts.
    parameters : tuple of str
        Which of ACME's backend parameters (``BACKEND_PARAMETERS``) this backend uses.
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
    >>> from acme_core.hookspecs import ExecutorSpec
    >>> spec = ExecutorSpec(name="mine", factory=object, description="demo")
    >>> spec.name
    'mine'
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    needs_pickle: bool = True
    parameters: tuple[str, ...] = ("n_workers",)
    options: Mapping[str, str] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()
    check: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class StorageSpec:
    """A named result storage contributed by a plugin.

    Parameters
    ----------
    name : str
        What users pass as ``storage=``; unique among installed plugins.
    factory : callable
        ``factory(settings: StorageSettings) -> Storage``. Validates and creates nothing on
        disk until :meth:`Storage.prepare`.
    description : str
        One line for ``python -m acme_core plugins``.
    on_disk : bool
        True when results go to ``output_dir`` (an output directory and a log file are made).

    Examples
    --------
    >>> from acme_core.hookspecs import StorageSpec
    >>> StorageSpec(name="zarr", factory=object, on_disk=True).on_disk
    True
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    on_disk: bool = True


@dataclass(frozen=True)
class AutoClaim:
    """A plugin's claim on ``backend="auto"``; the highest ``priority`` wins.

    Priorities in use: 200 a running dask client the user made, 100 a site's cluster node
    (an ESI node), 0 the default local backend.

    Examples
    --------
    >>> from acme_core.hookspecs import AutoClaim
    >>> AutoClaim(backend="joblib", priority=0, reason="default").backend
    'joblib'
    """

    backend: str
    priority: int
    reason: str = ""


@hookspec
def acme_core_executors() -> Iterable[ExecutorSpec]:
    """Return the backends this plugin provides.

    Example::

        @hookimpl
        def acme_core_executors():
            return [ExecutorSpec(name="threads", factory=ThreadExecutor,
                                 description="a thread pool", needs_pickle=False)]
    """


@hookspec
def acme_core_storages() -> Iterable[StorageSpec]:
    """Return the result storages this plugin provides.

    Example::

        @hookimpl
        def acme_core_storages():
            return [StorageSpec(name="zarr", factory=ZarrStorage, on_disk=True)]
    """


@hookspec
def acme_core_claim_auto() -> AutoClaim | None:
    """Claim ``backend="auto"`` for this process, or return None.

    Called once per ParallelMap whose backend is ``"auto"``; must be cheap (no network,
    no subprocess that can hang).

    Example::

        @hookimpl
        def acme_core_claim_auto():
            if os.environ.get("MY_SITE_NODE") == "1":
                return AutoClaim(backend="my-site", priority=100, reason="MY_SITE_NODE=1")
            return None
    """


@hookspec
def acme_core_run_started(run: RunInfo) -> None:
    """A run is about to submit its first call.

    Example::

        @hookimpl
        def acme_core_run_started(run):
            print(f"{run.func_name}: {run.n_calls} calls on {run.backend}")
    """


@hookspec
def acme_core_call_finished(run: RunInfo, outcome: CallOutcome) -> None:
    """One call finished and its result was handed to the storage.

    Example::

        @hookimpl
        def acme_core_call_finished(run, outcome):
            print("done", outcome.index, f"{outcome.duration:.3f}s")
    """


@hookspec
def acme_core_call_failed(run: RunInfo, outcome: CallOutcome) -> None:
    """One call failed for good (``outcome.failure`` says why and where).

    Example::

        @hookimpl
        def acme_core_call_failed(run, outcome):
            print("failed", outcome.index, outcome.failure.exc_type)
    """


@hookspec
def acme_core_call_retried(run: RunInfo, outcome: CallOutcome) -> None:
    """One call failed and is submitted again (a lost worker, or ``retries=`` left).

    Example::

        @hookimpl
        def acme_core_call_retried(run, outcome):
            print("retrying", outcome.index, "after", outcome.failure.kind)
    """


@hookspec
def acme_core_run_finished(run: RunInfo, summary: RunSummary) -> None:
    """A run ended (finished, failed or interrupted); ``summary`` has the counts.

    Example::

        @hookimpl
        def acme_core_run_finished(run, summary):
            print(summary.n_done, "done,", summary.n_failed, "failed")
    """
