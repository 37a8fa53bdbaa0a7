"""``ParallelMap``: ACME's user-facing class, with backends and storages chosen by name."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
import time
import uuid
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

from . import interrupts, manifest, plugins, replays, reuse
from . import output_dir as outdir
from . import rerun as rerun_policy
from .acme_attributes import AcmeAttributes, ArgumentLists, Daemon
from .arguments import CallPlan, build_call_plan
from .callkeys import ArgumentKeys
from .calls import CallBatch, CallOutcome, CallProgram, disk_hint, worker_name
from .codeversion import code_version
from .display import dashboard_link, run_summary_html
from .dryrun import dry_run
from .early_log import collected
from .errors import ParallelComputationError, ResultShapeError
from .executor import ExecutorSettings, RunContext
from .failures import FailureTable
from .hookspecs import BACKEND_PARAMETERS, ExecutorSpec, StorageSpec
from .logs import LogFile, configure, running
from .mainguard import IMPORTS_MAIN, check_main_guard
from .manifest import ManifestWriter, RunState
from .parameters import BACKEND_DEFAULTS, Settings, check_flag, validate
from .pickling import pickle_calls, pickle_program
from .progress import ProgressBar
from .progress import wanted as progress_wanted
from .reserved import check_reserved
from .run import RunInfo, RunLoop, RunSummary
from .seeding import CallStreams, cannot_draw, keywords_for_function
from .session import Session, log_failure_summary
from .storage.base import StorageSettings
from .streaming import call_result

log = logging.getLogger("acme_core")

#: ParallelMap's own keywords: a function keyword of the same name cannot be distributed.
RESERVED = ("backend", "storage", "backend_options", "retries", "rerun", "timeout")


class ParallelMap(AcmeAttributes):
    """Call ``func`` concurrently over many inputs and store every result.

    Arguments are distributed as ACME does: lists, tuples, ranges and 1-D arrays whose
    length is the number of calls are split element-wise, everything else goes whole to
    every call. Results go to one HDF5 file per call plus a container (the default), to
    memory (``write_worker_results=False``), or to any storage named by ``storage``.

    Parameters
    ----------
    func : callable
        The function to call.
    *args, **kwargs
        Arguments of ``func``; see above for how they spread over calls.
    n_inputs : "auto" or int, default "auto"
        Number of calls; "auto" infers it from the sequence arguments.
    write_worker_results : bool, default True
        True: results go to disk and ``compute()`` returns file paths. False: results are
        returned in memory.
    output_dir : str, default None
        Where results go; None: a new ``ACME_YYYYMMDD-hhmmss-ffffff`` in the current
        working directory. It is created when ``compute()`` starts (the constructor only
        validates). An existing directory must be empty or hold an earlier run of the same
        function with the same number of calls and storage: its results are reused.
    result_shape : tuple, default None
        Stack each call's first return value into one array of this shape; its single
        ``None`` is the axis of calls.
    result_dtype : str, default "float"
        NumPy dtype of the stacked array (float64).
    single_file : bool, default False
        ACME's flag for one HDF5 file for all results (storage ``"hdf5-single"``).
    write_pickle : bool, default False
        ACME's flag for one pickle file per call (storage ``"pickle"``).
    partition : str, default "auto"
        SLURM partition; "auto": the backend chooses (``slurm``: the cluster's default
        partition, ``slurm-esi``: from the measured memory of sampled calls).
    n_workers : int or "auto", default "auto"
        Worker processes or SLURM jobs; "auto": the backend chooses (the local CPUs, or
        as many jobs as there are calls up to a limit).
    mem_per_worker : str, default "auto"
        Memory per worker such as ``"4GB"``; "auto": the backend's default (on SLURM the
        partition's memory per CPU).
    setup_timeout : float, default 60
        Seconds to wait for SLURM workers to start.
    setup_interactive : bool, default True
        On a terminal, ask whether to keep waiting when not every worker started within
        ``setup_timeout`` (without a terminal: go on with the workers that came).
    stop_client : bool or "auto", default "auto"
        Stop the workers at the end of the run: "auto" stops those the run started and
        leaves a client you started; True stops either; False keeps them for the next run.
    verbose : bool, default None
        None: INFO messages, True: DEBUG, False: warnings only (and no progress bar).
    dryrun : bool, default False
        Run one sampled call in this process first and report its time and memory.
    logfile : bool or str, default None
        None: a log file beside on-disk results; True/False force it on/off; str: this file.
    cleanup_threshold_days : int, default None
        Before a run with ``output_dir=None``, delete our ``ACME_*`` runs in the current
        directory not modified for this many days (never one that is running).
    backend : str, default "auto"
        Executor name (``python -m acme_core plugins`` lists them); "auto" lets installed
        plugins claim the run (a running dask client, an HPC site) and falls back to the
        local default.
    storage : str, default "auto"
        Storage name; "auto" follows ACME's flags.
    backend_options : dict, default None
        Backend-specific settings (``python -m acme_core options BACKEND`` lists them);
        unknown keys are an error that lists the accepted ones.
    retries : int, default 0
        Re-runs of a call whose function raised (calls lost with a dead worker are always
        re-submitted, up to 3 times).
    timeout : float or None, default None
        Seconds a single call may run; a call running longer has its worker killed and
        fails with kind ``"timeout"``, the other calls go on. None (the default): no limit.
    rerun : {"missing", "changed", "all"}, default "missing"
        On an ``output_dir`` that holds results (or at a second ``compute()``): which calls
        with a result run again. Calls without a result, failed ones and those whose own
        arguments changed always run. "missing" (default) keeps results computed by an
        earlier version of the function's code (one warning counts them), "changed" re-runs
        those too, "all" re-runs every call.
    progress : bool, default None
        Show a progress bar (done, failed, retried, running calls): None shows it where a
        person watches (a terminal, or Jupyter's widget) unless ``verbose=False``;
        True/False force it on or off.
    seed : int or False, default None
        The run's entropy: call ``i`` draws from its own stream, made of this entropy and
        ``i`` only (``acme_core.rng()``; Python's ``random`` and ``numpy.random`` are seeded
        from it before each call). None: a fresh entropy, recorded in the run directory (a
        resumed run keeps it). False: leave the random generators alone. A function with
        a parameter of its own named ``seed`` (or ``reuse``) gets it, as in ACME.
    reuse : str, default None
        A result-store directory: calls already computed there (same code version,
        arguments and random stream) are taken, not computed, and new results are added.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> with ParallelMap(f, [2, 4, 6, 8], 4, write_worker_results=False,
    ...                  verbose=False) as pmap:
    ...     pmap.compute()
    [18, 24, 30, 36]
    """

    #: ACME's size threshold (MB) of the large-argument warning.
    _maxArgSize: float = 1024

    @collected(lambda: _logger_names())   # construction warnings reach the log file too
    def __init__(self, func: Any, *args: Any, n_inputs: int | str = "auto",
                 write_worker_results: bool = True, output_dir: str | None = None,
                 result_shape: Sequence[Any] | None = None, result_dtype: str = "float",
                 single_file: bool = False, write_pickle: bool = False, partition: str = "auto",
                 n_workers: int | str = "auto", mem_per_worker: str = "auto",
                 setup_timeout: float = 60, setup_interactive: bool = True,
                 stop_client: bool | str = "auto", verbose: bool | None = None,
                 dryrun: bool = False, logfile: bool | str | None = None,
                 cleanup_threshold_days: int | None = None, backend: str = "auto",
                 storage: str = "auto", backend_options: Mapping[str, Any] | None = None,
                 retries: int = 0, rerun: str = "missing", progress: bool | None = None,
                 seed: int | bool | None = None, reuse: str | os.PathLike[str] | None = None,
                 timeout: float | None = None, **kwargs: Any) -> None:
        check_reserved(func, backend=backend, storage=storage, backend_options=backend_options,
                       retries=retries, rerun=rerun, progress=progress, timeout=timeout)
        own = keywords_for_function(func, kwargs, seed=seed, reuse=reuse)
        self._settings = s = validate(
            n_inputs=n_inputs, write_worker_results=write_worker_results, output_dir=output_dir,
            result_shape=result_shape, result_dtype=result_dtype, single_file=single_file,
            write_pickle=write_pickle, partition=partition, n_workers=n_workers,
            mem_per_worker=mem_per_worker, setup_timeout=setup_timeout,
            setup_interactive=setup_interactive, stop_client=stop_client, verbose=verbose,
            dryrun=dryrun, logfile=logfile, cleanup_threshold_days=cleanup_threshold_days,
            backend=backend, storage=storage, backend_options=backend_options, retries=retries,
            rerun=rerun, timeout=timeout, **own)
        self._progress = None if progress is None else check_flag("progress", progress)
        self._loggers = configure(_logger_names(), s.verbose)
        self._plan = plan = build_call_plan(func, args, kwargs, s.n_inputs, self._maxArgSize)
        self._acme_lists: ArgumentLists | None = None   # made when first read (see _acme)
        self._daemon: Daemon | None = None
        self.backend, executor_spec = _choose_backend(s)
        if IMPORTS_MAIN in executor_spec.capabilities:
            check_main_guard(self.backend)
        self.storage, storage_spec = _choose_storage(s)
        _check_backend_settings(self.backend, executor_spec, s)
        executor_settings = ExecutorSettings(
            **{k: getattr(s, k) for k in BACKEND_DEFAULTS}, options=s.backend_options,
            timeout=s.timeout)
        if executor_spec.check is not None:
            executor_spec.check(executor_settings)  # e.g. partition= against the cluster's
        self.output_dir = self._output_path(storage_spec)
        self._storage = storage_spec.factory(StorageSettings(
            func_name=outdir.safe_name(plan.func_name), n_calls=plan.n_inputs,
            output_dir=self.output_dir,
            result_shape=s.result_shape if not (s.write_pickle and s.storage == "auto") else None,
            result_dtype=s.result_dtype, pass_task_id=plan.pass_task_id))
        self._executor = executor_spec.factory(executor_settings)
        self._run_id = uuid.uuid4().hex
        self._entropy = replays.run_entropy(s.seed, self.output_dir)
        self._needs_pickle = executor_spec.needs_pickle
        self._prepare_program()
        if self.output_dir is not None and manifest.exists(self.output_dir):
            _check_same_run(self.output_dir, self._manifest_header())
        path = _log_path(s.logfile, self.output_dir, outdir.safe_name(plan.func_name))
        self._log_file = LogFile(path, self._loggers, self._run_id) if path else None
        self.failures = FailureTable()
        self._summary: RunSummary | None = None  # of the last compute(), for display
        self._dashboard: str | None = None
        self._manifest: ManifestWriter | None = None
        self._session: Session | None = None
        self._aborted = False
        # Nothing exists yet on disk or in a process: the output directory, the log file and
        # the manifest appear when compute() starts.
        if s.dryrun and not dry_run(self._program, plan, s.setup_interactive):
            log.info("Dry-run aborted by the user: nothing was started.")
            self._aborted = True
            self._log_file = None
        if self._log_file is not None:   # what the construction logged goes into the file too
            self._log_file.keep(self._early_log.take())
        self._early_log.close()

    # ------------------------------------------------------------------ set-up
    def _around(self) -> Any:
        """What runs each call: its own random streams (unless ``seed=False`` or no call
        can draw), through the result store of ``reuse=``."""
        plan = self._plan
        streams = None if self._entropy is False or cannot_draw(
            plan.func, [a.value for a in plan.broadcast_arguments],
            [a.value for a in plan.split_arguments]) else CallStreams(self._entropy)
        if self._settings.reuse is None:
            return streams
        hook, found = reuse.runner(self._settings.reuse, plan.func, plan, streams,
                                   self._entropy, self.output_dir)
        log.info(f"Result store {self._settings.reuse}: {found} of {plan.n_inputs} calls are "
                 f"stored and are taken, not computed.")
        return hook

    def _prepare_program(self) -> None:
        """The call program of the current plan, pickled (proven picklable) when the
        backend needs it."""
        plan = self._plan
        slots, constants = plan.layout()
        inline = not self._needs_pickle or _small(plan)
        self._program = CallProgram(
            self._run_id, plan.func, slots, constants, self._acme.writer(self._storage.writer()),
            plan.pass_task_id, tuple(a.value for a in plan.split_arguments) if inline else None,
            around=self._around())
        self._program_bytes: bytes | None = None
        self._call_blobs: list[bytes] | None = None
        if self._needs_pickle:
            self._program_bytes = pickle_program(self._program, plan, self.backend)
            if not inline:
                self._call_blobs = pickle_calls(plan, self.backend)

    def _output_path(self, spec: StorageSpec) -> str | None:
        s = self._settings
        if not spec.on_disk:
            if s.output_dir is not None:
                log.warning("Output directory specification has no effect if "
                            "`write_worker_results` is `False`.")
            return None
        if s.output_dir is None:
            return outdir.default_path()
        if not manifest.exists(s.output_dir):
            outdir.check_available(s.output_dir)
        return s.output_dir

    def _manifest_header(self) -> dict[str, Any]:
        plan = self._plan
        return {"acme_core_manifest": manifest.FORMAT, "func": plan.func_name,
                "n_inputs": plan.n_inputs, "storage": self.storage, "run_id": self._run_id,
                "created": manifest.now()}

    def _open_outputs(self, stack: contextlib.ExitStack) -> RunState | None:
        """Create the run directory (or take up the existing run in it) and hold its lock;
        returns what the manifest says of earlier sessions (None: a new run)."""
        out, s, plan = self.output_dir, self._settings, self._plan
        if out is None:
            return None
        outdir.refuse_if_locked(out)  # before the checks below misread a run being made
        if not manifest.exists(out):
            outdir.check_available(out)
            if s.output_dir is None and s.cleanup_threshold_days is not None:
                outdir.cleanup_old_runs(os.path.dirname(out), s.cleanup_threshold_days)
            outdir.create(out, {
                "acme_core_run": 1, "run_id": self._run_id, "func": plan.func_name,
                "n_inputs": plan.n_inputs, "storage": self.storage, "backend": self.backend,
                "created": manifest.now()})
        lock = outdir.RunLock(out)
        lock.acquire()
        stack.callback(lock.release)
        state = manifest.read(out) if manifest.exists(out) else None
        if state is not None:
            _check_same_run(out, self._manifest_header())
        self._storage.settings.resume = state is not None
        self._storage.prepare()
        self._manifest = ManifestWriter(out, None if state is not None else
                                        self._manifest_header())
        stack.callback(self._close_manifest)
        replays.save(out, self._program, self._program_bytes, self._call_blobs, self._entropy,
                     plan.n_inputs, sys.path)
        return state

    def _close_manifest(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None

    # ------------------------------------------------------------------ attributes
    @property
    def n_inputs(self) -> int:
        """The number of calls."""
        return self._plan.n_inputs

    @property
    def results_container(self) -> str | None:
        """The file users open to read every result (None for in-memory results)."""
        return self._storage.results_container

    @property
    def logfile(self) -> str | None:
        """The log file's path, if one is written (it appears when ``compute()`` starts)."""
        return self._log_file.path if self._log_file is not None else None

    # ------------------------------------------------------------------ running
    def compute(self, debug: bool = False) -> Any:
        """Run every call that has no result yet and return the results.

        Every ``compute()`` is recorded in the run's manifest and log. On a run directory
        that already holds results (an interrupted run, one with failed calls, a second
        ``compute()`` of the same object) only the calls without a result run, plus those
        whose own arguments changed; results of an earlier version of the function's code
        are kept with one warning, or re-run with ``rerun="changed"`` (``rerun="all"``:
        every call runs).

        Parameters
        ----------
        debug : bool
            Run the calls one after another in this process, so ``pdb`` and ``%debug``
            work; the first exception propagates unchanged.

        Returns
        -------
        list or numpy.ndarray or None
            Per-call HDF5 paths (``storage="hdf5"``), return values in call order
            (``"memory"``), a stacked array (``result_shape`` in memory), or None when a
            dry-run was declined or ``func`` saves its own output through ``taskID``.

        Raises
        ------
        ParallelComputationError
            When some calls failed; every other result is stored, ``err.failures`` (and
            ``self.failures``) lists the failed calls.
        ResultShapeError
            When a result does not fit ``result_shape``: the run stops at the first one,
            finished results are kept.
        KeyboardInterrupt
            On Ctrl-C: pending calls are cancelled, finished results and the manifest are
            kept, and the log says how to resume.

        Examples
        --------
        >>> from acme_core import ParallelMap
        >>> pmap = ParallelMap(pow, [1, 2, 3], 2, write_worker_results=False, verbose=False)
        >>> pmap.compute(debug=True)
        [1, 4, 9]
        """
        check_flag("debug", debug)
        if self._aborted:
            return None
        self._take_rewrites()   # argv/kwargv/outFile rewritten since the constructor
        with contextlib.ExitStack() as stack:
            stack.callback(interrupts.release)  # Ctrl-C held back by an interrupted run
            todo = self._begin(stack, debug)
            if debug:
                return self._debug_run(todo)
            try:
                return self._parallel_run(todo)
            except KeyboardInterrupt as stop:  # the log said what happened: no library frames
                raise stop.with_traceback(None) from None

    def as_completed(self) -> Iterator[tuple[int, Any]]:
        """Run the calls as :meth:`compute` does and yield ``(index, result)`` of each call as
        soon as it has finished, in the order calls finish.

        ``result`` is the return value for in-memory results (``write_worker_results=False``);
        for on-disk storages it is where the result is: the call's own file (``hdf5``,
        ``pickle``) or the container (``hdf5-single``; ``hdf5-shards``, whose container is
        built when the run ends). Each result is stored and recorded in the manifest before
        it is yielded. Everything else is as in :meth:`compute`: retries, resuming, the
        progress bar, Ctrl-C. Failed calls are not yielded: once every call has finished,
        the iterator raises the same :class:`ParallelComputationError` ``compute()`` raises.
        Leaving the loop early (``break``, an exception) cancels the calls not yet finished,
        keeps what finished, and logs how to resume.

        Yields
        ------
        tuple of (int, object)
            A call's index and its result (or its result's location).

        Examples
        --------
        >>> from acme_core import ParallelMap
        >>> pmap = ParallelMap(pow, [1, 2, 3], 2, write_worker_results=False, verbose=False)
        >>> sorted(pmap.as_completed())
        [(0, 1), (1, 4), (2, 9)]
        """
        if self._aborted:
            return
        self._take_rewrites()   # argv/kwargv/outFile rewritten since the constructor
        with contextlib.ExitStack() as stack:
            stack.callback(interrupts.release)  # Ctrl-C held back by an interrupted run
            steps = self._run_steps(self._begin(stack, False))
            try:
                for outcomes in steps:
                    for outcome in outcomes:
                        yield outcome.index, call_result(self._storage, outcome)
            finally:
                steps.close()  # left early: cancels the calls still pending

    def _begin(self, stack: contextlib.ExitStack, debug: bool) -> list[int]:
        """Open the run's outputs and its session; return the calls to run."""
        stack.enter_context(running(self._run_id))
        state = self._open_outputs(stack)
        if self._log_file is not None:
            stack.enter_context(self._log_file.attached())
        plan = self._plan
        log.info(f"This is acme-core v. {_version()}: {plan.n_inputs} calls of "
                 f"`{plan.func_name}` on backend {self.backend!r}, storage {self.storage!r}")
        keys = ArgumentKeys.of(plan) if self._manifest is not None else None
        code = code_version(plan.func)
        selection = rerun_policy.select(plan.n_inputs, state, keys, code,
                                        self._settings.rerun,
                                        getattr(self._storage, "damaged", None))
        if state is not None:
            assert self.output_dir is not None
            rerun_policy.report(selection, plan.n_inputs, plan.func_name, self.output_dir)
        self._session = session = Session.after(state, code, keys, self._manifest)
        session.begin(self.backend, selection, self._settings.rerun, debug)
        stack.callback(self._end_session, RunSummary(plan.n_inputs), len(selection.todo),
                       0.0, "?", "aborted")  # only when the run ended by an exception
        return selection.todo

    def _collect(self, outcome: CallOutcome) -> None:
        self._storage.collect(outcome)
        if self._session is not None:
            self._session.seen(outcome)

    def _debug_run(self, todo: list[int]) -> Any:
        if todo:
            log.warning(f"Running in debug mode: {len(todo)} call(s) run here, one after "
                        f"another.")
        else:
            log.warning("Debug mode: every call has a result, nothing runs (rerun=\"all\" "
                        "runs every call again).")
        program, plan = self._program, self._plan
        summary = RunSummary(n_calls=plan.n_inputs)
        start = time.perf_counter()
        where = f"{worker_name()} (debug)"
        for index in todo:
            began = time.perf_counter()
            value = replays.replay_call(program, plan.split_values(index), index)
            receipt = program.writer.write(index, value)
            self._collect(CallOutcome(index, receipt, None, time.perf_counter() - began, where))
            summary.n_done += 1
            if self._manifest is not None:
                self._storage.flush()
                self._manifest.done((index,))
                self._manifest.flush()
        summary.elapsed = time.perf_counter() - start
        return self._finish(summary, len(todo), "debug")

    def _parallel_run(self, todo: list[int]) -> Any:
        steps = self._run_steps(todo)
        while True:
            try:
                next(steps)
            except StopIteration as end:
                return end.value

    def _run_steps(self, todo: list[int]) -> Generator[list[CallOutcome], None, Any]:
        """The parallel run as a generator of finished outcomes; returns compute()'s value."""
        plan = self._plan
        pm = plugins.get_plugin_manager()
        context = self._run_context()
        info = context.info
        self._executor.start(context)
        self._dashboard = dashboard_link(self._executor)
        log.info(f"Preparing {len(todo)} parallel calls of `{plan.func_name}` using "
                 f"{self._executor.n_workers} workers")
        bar = self._progress_bar(len(todo))
        if bar is not None:
            pm.register(bar, name=f"acme_core.progress.{self._run_id}")
        try:
            if plugins.has_listeners("acme_core_run_started"):
                pm.hook.acme_core_run_started(run=info)
            loop = RunLoop(self._executor, info, self._make_batch, self._collect, pm.hook,
                           retries=self._settings.retries, manifest=self._manifest,
                           describe=plan.describe_call, flush=self._storage.flush)
            stopped = ""
            try:
                yield from loop.iterate(todo)
            except GeneratorExit:
                stopped = "as_completed() left early"
            except ResultShapeError as exc:
                self._executor.cancel()
                self._stopped(loop.summary, len(todo), exc)
                raise
            finally:
                if bar is not None:  # before the backend's shutdown messages
                    bar.close()
                self._executor.close()
            summary = loop.summary
            if plugins.has_listeners("acme_core_run_finished"):
                pm.hook.acme_core_run_finished(run=info, summary=summary)
        finally:
            if bar is not None:
                pm.unregister(bar)
        try:
            return self._finish(summary, len(todo), self._executor.n_workers, stopped)
        finally:
            summary.restore_signals()  # Ctrl-C was held back while an interrupted run ended

    def _stopped(self, summary: RunSummary, n_ran: int, exc: ResultShapeError) -> None:
        where = self.results_container or self.output_dir
        log.error(f"Stopped at the first result that does not fit: {exc} Pending calls were "
                  f"cancelled; {summary.n_done} finished result(s) are kept"
                  + (f" in {where}." if where else "."))
        self._end_session(summary, n_ran, summary.elapsed, self._executor.n_workers,
                          stopped="ResultShapeError")

    def _end_session(self, summary: RunSummary, n_ran: int, elapsed: float, workers: Any,
                     stopped: str = "") -> None:
        if self._session is not None:
            self._session.end(n_ran, summary.n_done, summary.n_failed, elapsed, workers,
                              summary.interrupted, stopped)
            self._session = None

    def _run_context(self) -> RunContext:
        plan = self._plan
        info = RunInfo(self._run_id, plan.func_name, plan.n_inputs, self.backend, self.storage,
                       self.output_dir)
        return RunContext(info, self._program, self._program_bytes, plan.n_inputs,
                          self.output_dir, tuple(sys.path))

    def _progress_bar(self, total: int) -> ProgressBar | None:
        if not progress_wanted(self._progress, self._settings.verbose):
            return None
        n = self._plan.n_inputs  # a resumed run counts from the calls already done
        return ProgressBar(n, self._executor.n_workers, initial=n - total,
                           status=self._executor.status)

    def _make_batch(self, indices: Sequence[int], attempt: int) -> CallBatch:
        if self._program.split is not None:
            return CallBatch(self._run_id, tuple(indices), None, False, attempt)
        if self._call_blobs is not None:
            split = tuple(self._call_blobs[i] for i in indices)
            return CallBatch(self._run_id, tuple(indices), split, True, attempt)
        split = tuple(self._plan.split_values(i) for i in indices)
        return CallBatch(self._run_id, tuple(indices), split, False, attempt)

    def _finish(self, summary: RunSummary, n_ran: int, workers: Any, stopped: str = "") -> Any:
        plan = self._plan
        self.failures = FailureTable([(f, plan.describe_call(f.index))
                                      for f in summary.failures], func=plan.func)
        self.failures.replay_dir = self.output_dir
        try:
            result = self._storage.finish()
        except OSError as exc:  # a full disk: say so, and report the failed calls if any
            if not (disk_hint(exc) and summary.failures):
                raise
            log.error(f"Writing the results container failed ({exc}). {disk_hint(exc)}.")
            result = None
        finally:
            if self._manifest is not None:
                self._manifest.flush()
        self._summary = summary
        where = self.results_container or self.output_dir
        try:  # the session's figures are the log's last line, whatever the outcome
            if stopped:
                log.warning(f"Stopped early: {summary.n_done} of {n_ran} calls finished"
                            + (f"; create the same ParallelMap with output_dir="
                               f"{self.output_dir!r} to run the others." if self.output_dir
                               else "."))
                return None
            if summary.interrupted:
                resume = (f" To finish the run, create the same ParallelMap with "
                          f"output_dir={self.output_dir!r} and call compute() again: only the "
                          f"missing calls run." if self.output_dir else "")
                log.error(f"Interrupted: {summary.n_done} of {n_ran} calls finished"
                          + (f"; their results are in {where}." if where else ".") + resume)
                raise KeyboardInterrupt
            if self.failures:
                message = _failure_message(self.failures, n_ran, where, self.output_dir)
                log_failure_summary(message)
                raise ParallelComputationError(message, self.failures)
            if where is not None:
                log.info(f"SUCCESS! Results have been saved to {where}")
            else:
                log.info("Finished parallel computation")
            return result
        finally:
            self._end_session(summary, n_ran, summary.elapsed, workers, stopped)

    def replay(self, index: int) -> Any:
        """Run call ``index`` here with its arguments and random streams, as in the run.

        Nothing is stored; the call's exception propagates unchanged, so ``pdb`` and
        ``%debug`` work. ``acme_core.replay(output_dir, index)`` does the same from any
        process once the run is on disk.

        Examples
        --------
        >>> from acme_core import ParallelMap
        >>> ParallelMap(pow, [1, 2, 3], 2, write_worker_results=False).replay(2)
        9
        """
        index = replays.check_index(index, self._plan.n_inputs)
        return replays.replay_call(self._program, self._plan.split_values(index), index)

    # ------------------------------------------------------------------ life cycle
    def cleanup(self) -> None:
        """Stop workers kept for reuse when ``stop_client=True`` (ACME's ``cleanup()``)."""
        if self._log_file is not None:
            self._log_file.close()
        self._close_manifest()
        if self._settings.stop_client is True:
            self._executor.shutdown()

    def __enter__(self) -> ParallelMap:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def _repr_html_(self) -> str:
        return run_summary_html(self)

    def __repr__(self) -> str:
        return (f"<ParallelMap {self._plan.func_name}: {self.n_inputs} calls, "
                f"backend={self.backend!r}, storage={self.storage!r}>")


#: Split arguments up to this size travel once per worker inside the run's program;
#: larger ones travel with the batches that need them.
INLINE_SPLIT_BYTES = 16 * 1024**2


def _small(plan: CallPlan) -> bool:
    return sum(arg.size for arg in plan.split_arguments) <= INLINE_SPLIT_BYTES


def _logger_names() -> list[str]:
    names = ["acme_core"]
    for _, plugin in plugins.get_plugin_manager().list_name_plugin():
        top = getattr(plugin, "__name__", "").split(".")[0]
        if top and top not in names:
            names.append(top)
    return names


def _version() -> str:
    from . import __version__

    return __version__


def _choose_backend(s: Settings) -> tuple[str, ExecutorSpec]:
    name = s.backend
    if name == "auto":
        claim = plugins.resolve_auto_backend()
        log.debug(f"backend='auto' resolved to {claim.backend!r}: {claim.reason}")
        name = claim.backend
    return name, plugins.get_executor_spec(name)


def _implied_storage(s: Settings) -> str:
    if not s.write_worker_results:
        if s.single_file:
            log.warning("Generating a single output file only possible if "
                        "`write_worker_results` is `True`; single_file is ignored.")
        if s.write_pickle:
            log.warning("Pickling of results only possible if `write_worker_results` is `True`; "
                        "write_pickle is ignored.")
        return "memory"
    if s.write_pickle:
        if s.result_shape is not None:
            log.warning("Pickling of results does not support output array shape "
                        "specification; result_shape is ignored.")
        return "pickle"
    return "hdf5-single" if s.single_file else "hdf5"


def _choose_storage(s: Settings) -> tuple[str, StorageSpec]:
    if s.storage == "auto":
        name = _implied_storage(s)
        return name, plugins.get_storage_spec(name)
    spec = plugins.get_storage_spec(s.storage)
    if spec.on_disk and not s.write_worker_results:
        raise ValueError(
            f"`storage={s.storage!r}` writes results to disk, but `write_worker_results=False` "
            f"asks for results in memory. Drop one of the two.")
    if not spec.on_disk and (s.single_file or s.write_pickle):
        raise ValueError(
            f"`storage={s.storage!r}` keeps results in memory, but single_file/write_pickle ask "
            f"for files. Drop one of the two.")
    for flag, implied in (("single_file", "hdf5-single"), ("write_pickle", "pickle")):
        if getattr(s, flag) and s.storage != implied:
            raise ValueError(f"`{flag}=True` means storage {implied!r}, but `storage="
                             f"{s.storage!r}` was given. Drop one of the two.")
    return s.storage, spec


def _check_backend_settings(name: str, spec: ExecutorSpec, s: Settings) -> None:
    unknown = sorted(set(s.backend_options) - set(spec.options))
    if unknown:
        accepted = ", ".join(repr(k) for k in spec.options) or "none"
        raise ValueError(
            f"backend {name!r} does not accept `backend_options` key(s) "
            f"{', '.join(repr(k) for k in unknown)}; accepted: {accepted}.")
    if s.timeout is not None and "timeout" not in spec.capabilities:
        log.warning(f"`timeout={s.timeout!r}` has no effect on backend {name!r} (it cannot "
                    f"stop a single call) and is ignored.")
    for param in BACKEND_PARAMETERS:
        value = getattr(s, param)
        if (param not in spec.parameters and value != BACKEND_DEFAULTS[param]
                and ONLY_DISABLES.get(param, _NOTHING) != value):
            log.warning(f"`{param}={value!r}` has no effect on backend {name!r} and is ignored.")


#: Values that only turn off something a backend without the parameter cannot do anyway
#: (SyNCoPy passes setup_interactive=False everywhere): no "has no effect" warning.
ONLY_DISABLES: dict[str, Any] = {"setup_interactive": False}
_NOTHING = object()


def _log_path(logfile: bool | str | None, output_dir: str | None, func_name: str) -> str | None:
    if logfile is False or (logfile is None and output_dir is None):
        return None
    if isinstance(logfile, str):
        if os.path.exists(logfile):
            log.warning(f"Log file {logfile} exists; appending to it.")
        return logfile
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(output_dir or os.getcwd(), f"ACME_{func_name}_{stamp}.log")


def _failure_message(failures: FailureTable, n: int, where: str | None,
                     output_dir: str | None) -> str:
    first = failures[0]
    shown = failures.indices[:20]
    more = f" (and {len(failures) - 20} more)" if len(failures) > 20 else ""
    text = (f"Parallel computation failed: {len(failures)}/{n} tasks failed. First failure: call "
            f"{first.index} ({first.arguments}) raised {first.exc_type}: {first.message}. "
            f"Failed calls: {shown}{more}.")
    if where is not None:
        text += f" Results of the other calls are stored in {where}."
    text += (" Inspect `err.failures` (also `pmap.failures`); `compute(debug=True)` re-raises "
             "the original exception in this process, and "
             f"`{replays.replay_hint(output_dir, first.index)}` runs just call {first.index} "
             f"here, with its arguments and random draws (pdb works).")
    if output_dir is not None:
        text += (f" After a fix, calling compute() again (or the same ParallelMap with "
                 f"output_dir={output_dir!r}) re-runs only the failed calls.")
    return text


def _check_same_run(output_dir: str, header: dict[str, Any]) -> None:
    """Refuse to continue a run of another function, number of calls or storage: its
    results cannot be matched call by call (changed arguments or code are handled per
    call, see :mod:`acme_core.rerun`)."""
    old = manifest.read(output_dir).header
    if os.path.exists(os.path.join(output_dir, outdir.MARKER)):
        outdir.read_marker(output_dir)  # a damaged marker: a clear error now, not in load()
    for key, what in (("func", "function name"), ("n_inputs", "number of calls"),
                      ("storage", "storage")):
        if old.get(key) != header[key]:
            raise ValueError(
                f"`output_dir` {output_dir!r} holds a run with a different {what} "
                f"({old.get(key)!r}, now {header[key]!r}); results of two different runs are "
                f"never mixed. Pass a new output_dir.")
