"""Every hook of acme-core; the records they pass are in :mod:`acme_core.records`.

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

    from acme_core import ExecutorSpec, hookimpl

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

from collections.abc import Iterable, Sequence

import pluggy

# What the hooks pass; importable from here too, as plugins written before records.py do.
from .records import (  # noqa: F401 - re-exported
    CAPABILITIES,
    AutoClaim,
    CallOutcome,
    ExecutorSpec,
    RunInfo,
    RunSummary,
    StorageSpec,
)

PROJECT = "acme_core"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------- registration
# Called when the plugin manager is built or a ParallelMap is made; each returns records.

@hookspec
def acme_core_executors() -> Iterable[ExecutorSpec]:
    """Return the backends this plugin provides.

    Example::

        from concurrent.futures import ThreadPoolExecutor

        from acme_core import ExecutorSpec, hookimpl
        from acme_core.calls import run_batch
        from acme_core.executor import FuturesExecutor

        class ThreadExecutor(FuturesExecutor):
            def start(self, run):
                self._pool, self._program = ThreadPoolExecutor(2), run.program
            def _submit_future(self, batch):
                return self._pool.submit(run_batch, self._program, batch)
            def close(self):
                self._pool.shutdown()

        @hookimpl
        def acme_core_executors():
            return [ExecutorSpec(name="my-threads", factory=ThreadExecutor,
                                 description="a thread pool", needs_pickle=False)]
    """


@hookspec
def acme_core_storages() -> Iterable[StorageSpec]:
    """Return the result storages this plugin provides.

    Example::

        from acme_core import StorageSpec, hookimpl
        from acme_core.storage.base import KeepValue, Storage

        class ListStorage(Storage):             # results in memory, in call order
            def writer(self):
                return KeepValue()              # the value travels back to the parent
            def __init__(self, settings):    # settings: a StorageSettings
                super().__init__(settings)
                self.results = [None] * settings.n_calls
            def collect(self, outcome):
                self.results[outcome.index] = outcome.value
            def finish(self):
                return self.results

        @hookimpl
        def acme_core_storages():
            return [StorageSpec(name="my-list", factory=ListStorage, on_disk=False)]
    """


@hookspec
def acme_core_claim_auto() -> AutoClaim | None:
    """Claim ``backend="auto"`` for this process, or return None.

    Called once per ParallelMap whose backend is ``"auto"``; must be cheap (no network,
    no subprocess that can hang).

    Example::

        import os

        from acme_core import AutoClaim, hookimpl

        @hookimpl
        def acme_core_claim_auto():
            if os.environ.get("MY_SITE_NODE") == "1":
                return AutoClaim(backend="my-site", priority=100, reason="MY_SITE_NODE=1")
            return None
    """


# ---------------------------------------------------------------------- lifecycle
# Called in the parent process during compute(), only when some plugin implements them.

@hookspec
def acme_core_run_started(run: RunInfo) -> None:
    """A run is about to submit its first call.

    Example::

        from acme_core import hookimpl

        @hookimpl
        def acme_core_run_started(run):
            print(f"{run.func_name}: {run.n_calls} calls on {run.backend}")
    """


@hookspec
def acme_core_call_finished(run: RunInfo, outcome: CallOutcome) -> None:
    """One call finished and its result was handed to the storage.

    Example::

        from acme_core import hookimpl

        @hookimpl
        def acme_core_call_finished(run, outcome):
            print("done", outcome.index, f"{outcome.duration:.3f}s")
    """


@hookspec
def acme_core_calls_finished(run: RunInfo, indices: Sequence[int]) -> None:
    """Calls finished and their results were handed to the storage: once per batch, with
    the indices of its calls that finished. A plugin that only counts should listen here
    rather than to :func:`acme_core_call_finished`: no object is made per call, and a
    batch without failures reaches the storage in one step.

    Example::

        from acme_core import hookimpl

        @hookimpl
        def acme_core_calls_finished(run, indices):
            print("done", len(indices), "of", run.n_calls)
    """


@hookspec
def acme_core_call_failed(run: RunInfo, outcome: CallOutcome) -> None:
    """One call failed for good (``outcome.failure`` says why and where).

    Example::

        from acme_core import hookimpl

        @hookimpl
        def acme_core_call_failed(run, outcome):
            print("failed", outcome.index, outcome.failure.exc_type)
    """


@hookspec
def acme_core_call_retried(run: RunInfo, outcome: CallOutcome) -> None:
    """One call failed and is submitted again (a lost worker, or ``retries=`` left).

    Example::

        from acme_core import hookimpl

        @hookimpl
        def acme_core_call_retried(run, outcome):
            print("retrying", outcome.index, "after", outcome.failure.kind)
    """


@hookspec
def acme_core_run_finished(run: RunInfo, summary: RunSummary) -> None:
    """A run ended (finished, failed or interrupted); ``summary`` has the counts.

    Example::

        from acme_core import hookimpl

        @hookimpl
        def acme_core_run_finished(run, summary):
            print(summary.n_done, "done,", summary.n_failed, "failed")
    """
