"""``ParallelMap``: ACME's user-facing class, with backends and storages chosen by name."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import manifest, plugins, replays
from . import output_dir as outdir
from .acme_attributes import AcmeAttributes, ArgumentLists, Daemon
from .arguments import build_call_plan
from .choices import choose, log_path, output_path, storage_settings
from .computation import Computation, RunParts
from .display import run_summary_html
from .dryrun import dry_run
from .early_log import collected
from .failures import FailureTable
from .logs import LogFile, configure
from .parameters import FORWARDED, RESERVED, Settings, check_flag, given_parameters, validate
from .payloads import Payloads, call_runner
from .records import RunContext, RunSummary
from .reserved import check_reserved
from .resources import stops_workers
from .run_header import RunHeader
from .seeding import keywords_for_function

log = logging.getLogger("acme_core")


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
    timeout : float or None, default None
        Seconds a single call may run; a call running longer has its worker killed and
        fails with kind ``"timeout"``, the other calls go on. None (the default): no limit.

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
        # The signature is written out for IDEs and ACME's users; its values are read back
        # by name, so every parameter is handled once (acme_core.parameters.PARAMETERS).
        self._settings = s = _settle(func, kwargs, given_parameters(locals()))
        self._loggers = configure(_logger_names(), s.verbose)
        self._plan = plan = build_call_plan(func, args, kwargs, s.n_inputs, self._maxArgSize)
        self._acme_lists: ArgumentLists | None = None   # made when first read (see _acme)
        self._daemon: Daemon | None = None
        choice = choose(s)
        self.backend, self.storage = choice.backend, choice.storage
        self.output_dir = output_path(s, choice.storage_spec)
        self._storage = choice.storage_spec.get_factory()(
            storage_settings(s, plan, self.output_dir))
        self._executor = choice.executor_spec.get_factory()(choice.executor_settings)
        self._run_id = uuid.uuid4().hex
        self._entropy = replays.run_entropy(s.seed, self.output_dir)
        self._needs_pickle = choice.executor_spec.needs_pickle
        self._payloads = self._make_payloads()
        if self.output_dir is not None and manifest.exists(self.output_dir):
            self._header().check_same_run(self.output_dir)
        path = log_path(s.logfile, self.output_dir, outdir.safe_name(plan.func_name))
        self._log_file = LogFile(path, self._loggers, self._run_id) if path else None
        self.failures = FailureTable()
        self._last: Computation | None = None  # the last compute(), for display and cleanup
        self._aborted = False
        # Nothing exists yet on disk or in a process: the output directory, the log file and
        # the manifest appear when compute() starts.
        if s.dryrun and not dry_run(self._payloads.program, plan, s.setup_interactive):
            log.info("Dry-run aborted by the user: nothing was started.")
            self._aborted = True
            self._log_file = None
        if self._log_file is not None:   # what the construction logged goes into the file too
            self._log_file.keep(self._early_log.take())
        self._early_log.close()

    # ------------------------------------------------------------------ set-up
    def _make_payloads(self) -> Payloads:
        """The call program of the current plan, pickled (proven picklable) when the
        backend needs it."""
        around = call_runner(self._plan, self._entropy, self._settings.reuse, self.output_dir)
        return Payloads(self._plan, self._run_id, self._acme.writer(self._storage.writer()), around,
                        self._needs_pickle, self.backend)

    def _header(self) -> RunHeader:
        return RunHeader(self._run_id, self._plan.func_name, self._plan.n_inputs, self.storage,
                         self.backend)

    def _parts(self) -> RunParts:
        return RunParts(self._header(), self._payloads, self._storage, self._executor,
                        self._settings, self.output_dir, self._entropy, self._log_file,
                        self._settings.progress)

    def _run_context(self) -> RunContext:
        return self._parts().context()

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
        run = self._computation(debug)
        try:
            return run.compute()
        except KeyboardInterrupt as stop:  # the log said what happened: no library frames
            raise stop.with_traceback(None) from None
        finally:
            self._took(run)

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
        run = self._computation(False)
        try:
            yield from run.as_completed()
        finally:
            self._took(run)

    def _computation(self, debug: bool) -> Computation:
        self._take_rewrites()   # argv/kwargv/outFile rewritten since the constructor
        self._last = Computation(self._parts(), debug)
        return self._last

    def _took(self, run: Computation) -> None:
        """Show what the run ``run`` left: its failures table (when it ended)."""
        if run.failures is not None:
            self.failures = run.failures

    @property
    def _summary(self) -> RunSummary | None:
        """The counts of the last ``compute()`` that ended (for display)."""
        return self._last.summary if self._last is not None else None

    @property
    def _dashboard(self) -> str | None:
        return self._last.dashboard if self._last is not None else None

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
        return replays.replay_call(self._payloads.program, self._plan.split_values(index), index)

    # ------------------------------------------------------------------ life cycle
    def cleanup(self) -> None:
        """Stop workers kept for reuse when ``stop_client=True`` (ACME's ``cleanup()``)."""
        if self._log_file is not None:
            self._log_file.close()
        if self._last is not None:
            self._last.close_manifest()
        if stops_workers(self._settings.stop_client, started_by_run=False):
            self._executor.shutdown()  # kept for reuse by the runs of this object

    def __enter__(self) -> ParallelMap:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def _repr_html_(self) -> str:
        return run_summary_html(self)

    def __repr__(self) -> str:
        return (f"<ParallelMap {self._plan.func_name}: {self.n_inputs} calls, "
                f"backend={self.backend!r}, storage={self.storage!r}>")


def _logger_names() -> list[str]:
    names = ["acme_core"]
    for _, plugin in plugins.get_plugin_manager().list_name_plugin():
        top = getattr(plugin, "__name__", "").split(".")[0]
        if top and top not in names:
            names.append(top)
    return names


def _settle(func: Any, kwargs: dict[str, Any], given: dict[str, Any]) -> Settings:
    """ParallelMap's validated settings. A reserved keyword meant for ``func`` is an error;
    a forwarded one that ``func`` names moves into ``kwargs``."""
    check_reserved(func, **{name: given[name] for name in RESERVED})
    given.update(keywords_for_function(func, kwargs, **{name: given[name] for name in FORWARDED}))
    return validate(**given)
