"""One ``compute()`` (or ``as_completed()``): open the run's outputs, choose the calls to
run, drive the run loop, and end the run as the user sees it.

Data flows one way: :class:`RunParts` (made by ``ParallelMap`` at construction) ->
:class:`Computation` -> :class:`~acme_core.run.RunLoop` -> executor -> storage and
manifest. What the run leaves for ``ParallelMap`` to show (failures table, summary,
dashboard link) is read from the computation afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from . import interrupts, manifest, replays
from . import output_dir as outdir
from . import rerun as rerun_policy
from .callkeys import ArgumentKeys
from .codeversion import code_version
from .display import dashboard_link
from .errors import ResultShapeError
from .executor import Executor
from .failures import FailureTable
from .inprocess import InProcessExecutor
from .lifecycle import RunHooks
from .logs import LogFile, running
from .manifest import ManifestWriter, RunState
from .parameters import Settings
from .payloads import Payloads
from .plugins import get_plugin_manager
from .progress import ProgressBar
from .progress import wanted as progress_wanted
from .records import CallOutcome, RunContext, RunInfo, RunSummary
from .run import RunLoop
from .run_end import conclude, failure_table, stored_result
from .run_header import RunHeader
from .session import Session
from .storage.base import Storage
from .streaming import call_result

log = logging.getLogger("acme_core")


@dataclass
class RunParts:
    """Everything a run is made of, fixed when ``ParallelMap`` is constructed."""

    header: RunHeader
    payloads: Payloads
    storage: Storage
    executor: Executor
    settings: Settings
    output_dir: str | None
    entropy: int | bool
    log_file: LogFile | None
    progress: bool | None

    def context(self) -> RunContext:
        """What the executor gets at ``start``."""
        h, p = self.header, self.payloads
        info = RunInfo(h.run_id, h.func, h.n_inputs, h.backend, h.storage, self.output_dir)
        return RunContext(info, p.program, p.program_bytes, h.n_inputs, self.output_dir,
                          tuple(sys.path))


class Computation:
    """One ``compute()`` of ``parts``; ``debug=True`` runs the calls here, one by one.

    Examples
    --------
    ``ParallelMap.compute()`` makes one per call::

        Computation(parts, debug=False).compute()
    """

    def __init__(self, parts: RunParts, debug: bool = False) -> None:
        self.parts, self.debug = parts, debug
        self.executor: Executor = InProcessExecutor() if debug else parts.executor
        #: Set when the run ended (not after an exception): for ``pmap.failures``.
        self.failures: FailureTable | None = None
        self.summary: RunSummary | None = None
        self.dashboard: str | None = None
        self.manifest: ManifestWriter | None = None
        self._session: Session | None = None

    # ------------------------------------------------------------------ entry points
    def compute(self) -> Any:
        """Run the calls that have no result; return the storage's result."""
        with contextlib.ExitStack() as stack:
            stack.callback(interrupts.release)  # Ctrl-C held back by an interrupted run
            steps = self._steps(self._begin(stack))
            try:
                while True:
                    next(steps)
            except StopIteration as end:
                return end.value

    def as_completed(self) -> Iterator[tuple[int, Any]]:
        """:meth:`compute` yielding ``(index, result)`` of each call as it finishes."""
        with contextlib.ExitStack() as stack:
            stack.callback(interrupts.release)
            steps = self._steps(self._begin(stack))
            try:
                for outcomes in steps:
                    for outcome in outcomes:
                        yield outcome.index, call_result(self.parts.storage, outcome)
            finally:
                steps.close()  # left early: cancels the calls still pending

    def close_manifest(self) -> None:
        """Close the manifest (the end of ``compute()`` does; ``cleanup()`` again)."""
        writer, self.manifest = self.manifest, None
        if writer is not None:
            writer.close()

    # ------------------------------------------------------------------ set-up
    def _begin(self, stack: contextlib.ExitStack) -> list[int]:
        """Open the run's outputs and its session; return the calls to run."""
        parts, header = self.parts, self.parts.header
        stack.enter_context(running(header.run_id))
        state = self._open_outputs(stack)
        if parts.log_file is not None:
            stack.enter_context(parts.log_file.attached())
        log.info(f"This is acme-core v. {_version()}: {header.n_inputs} calls of "
                 f"`{header.func}` on backend {header.backend!r}, storage {header.storage!r}")
        plan = parts.payloads.plan
        keys = ArgumentKeys.of(plan) if self.manifest is not None else None
        # the code version goes only into the manifest (an in-memory run has none, and
        # hashing the function's code costs milliseconds of its start)
        code = code_version(plan.func) if self.manifest is not None else ""
        selection = rerun_policy.select(plan.n_inputs, state, keys, code, parts.settings.rerun,
                                        getattr(parts.storage, "damaged", None))
        if state is not None:
            assert parts.output_dir is not None
            rerun_policy.report(selection, plan.n_inputs, plan.func_name, parts.output_dir)
        self._session = session = Session.after(state, code, keys, self.manifest)
        session.begin(header.backend, selection, parts.settings.rerun, self.debug)
        stack.callback(self._end_session, RunSummary(plan.n_inputs), len(selection.todo),
                       "?", "aborted")  # only when the run ended by an exception
        return selection.todo

    def _open_outputs(self, stack: contextlib.ExitStack) -> RunState | None:
        """Create the run directory (or take up the existing run in it) and hold its lock;
        returns what the manifest says of earlier sessions (None: a new run)."""
        out, parts = self.parts.output_dir, self.parts
        if out is None:
            return None
        header = parts.header.stamped()  # created now, as the directory
        outdir.refuse_if_locked(out)  # before the checks below misread a run being made
        if not manifest.exists(out):
            outdir.check_available(out)
            days = parts.settings.cleanup_threshold_days
            if parts.settings.output_dir is None and days is not None:
                outdir.cleanup_old_runs(os.path.dirname(out), days)
            outdir.create(out, header.marker())
        lock = outdir.RunLock(out)
        lock.acquire()
        stack.callback(lock.release)
        outdir.take_up(out, (manifest.NAME, outdir.MARKER, replays.DIRNAME))
        state = manifest.read(out) if manifest.exists(out) else None
        if state is not None:
            header.check_same_run(out)
        parts.storage.settings.resume = state is not None
        parts.storage.prepare()
        self.manifest = ManifestWriter(out, None if state is not None else header.manifest_line())
        stack.callback(self.close_manifest)
        parts.payloads.save_for_replay(out, parts.entropy)
        return state

    # ------------------------------------------------------------------ running
    def _steps(self, todo: list[int]) -> Generator[list[CallOutcome], None, Any]:
        """The run as a generator of finished outcomes; returns compute()'s value."""
        executor, context = self.executor, self.parts.context()
        executor.start(context)
        self.dashboard = dashboard_link(executor)
        self._announce(len(todo))
        pm = get_plugin_manager()
        with self._progress_bar(pm, len(todo), context.info.run_id) as bar:
            hooks = RunHooks(context.info, pm.hook)
            hooks.run_started()
            assert self._session is not None
            loop = RunLoop(executor, self.parts.storage, self.parts.payloads, self._session,
                           hooks, retries=self.parts.settings.retries)
            stopped = ""
            try:
                yield from loop.iterate(todo)
            except GeneratorExit:
                stopped = "as_completed() left early"
            except ResultShapeError as exc:
                executor.cancel()
                self._stopped(loop.summary, len(todo), exc)
                raise
            finally:
                if bar is not None:  # before the backend's shutdown messages
                    bar.close()
                executor.close()
            hooks.run_finished(loop.summary)
        try:
            return self._finish(loop.summary, len(todo), stopped)
        finally:
            loop.summary.restore_signals()  # Ctrl-C was held back while an interrupted run ended

    def _announce(self, n_todo: int) -> None:
        if not self.debug:
            log.info(f"Preparing {n_todo} parallel calls of `{self.parts.header.func}` using "
                     f"{self.executor.n_workers} workers")
        elif n_todo:
            log.warning(f"Running in debug mode: {n_todo} call(s) run here, one after another.")
        else:
            log.warning("Debug mode: every call has a result, nothing runs (rerun=\"all\" "
                        "runs every call again).")

    @contextlib.contextmanager
    def _progress_bar(self, pm: Any, total: int, run_id: str) -> Iterator[ProgressBar | None]:
        """The run's progress bar, listening to the call hooks while the run goes on."""
        # none in debug mode: a bar redrawn under pdb's prompt garbles it
        if self.debug or not progress_wanted(self.parts.progress, self.parts.settings.verbose):
            yield None
            return
        n = self.parts.header.n_inputs  # a resumed run counts from the calls already done
        bar = ProgressBar(n, self.executor.n_workers, initial=n - total,
                          status=self.executor.status)
        pm.register(bar, name=f"acme_core.progress.{run_id}")
        try:
            yield bar
        finally:
            pm.unregister(bar)

    # ------------------------------------------------------------------ ending
    @property
    def _workers(self) -> Any:
        return "debug" if self.debug else self.executor.n_workers

    def _where(self) -> str | None:
        return self.parts.storage.results_container or self.parts.output_dir

    def _stopped(self, summary: RunSummary, n_ran: int, exc: ResultShapeError) -> None:
        where = self._where()
        log.error(f"Stopped at the first result that does not fit: {exc} Pending calls were "
                  f"cancelled; {summary.n_done} finished result(s) are kept"
                  + (f" in {where}." if where else "."))
        self._end_session(summary, n_ran, self._workers, stopped="ResultShapeError")

    def _end_session(self, summary: RunSummary, n_ran: int, workers: Any,
                     stopped: str = "") -> None:
        if self._session is not None:
            self._session.end(n_ran, summary.n_done, summary.n_failed, summary.elapsed,
                              workers, summary.interrupted, stopped)
            self._session = None

    def _finish(self, summary: RunSummary, n_ran: int, stopped: str = "") -> Any:
        parts, plan = self.parts, self.parts.payloads.plan
        self.failures = failure_table(summary, plan.describe_call, plan.func, parts.output_dir)
        try:
            result = stored_result(parts.storage, summary)
        finally:
            if self.manifest is not None:
                self.manifest.flush()
        self.summary = summary
        try:  # the session's figures are the log's last line, whatever the outcome
            return conclude(result, summary, self.failures, n_ran, self._where(),
                            parts.output_dir, stopped)
        finally:
            self._end_session(summary, n_ran, self._workers, stopped)


def _version() -> str:
    from . import __version__

    return __version__
