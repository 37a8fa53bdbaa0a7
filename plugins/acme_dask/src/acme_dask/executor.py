"""The ``dask`` and ``slurm`` executors.

Both attach to the dask client the process already has (ACME: ``n_workers``, ``partition``
and ``mem_per_worker`` are then ignored and ``stop_client="auto"`` leaves the client alone),
or start their own: a loopback-only ``LocalCluster`` (``dask``) or SLURM jobs through
dask-jobqueue with TLS (``slurm``), stopped at the end of the run unless ``stop_client=False``.

The run's program (function, broadcast arguments, storage writer) travels once to every
worker as a worker plugin named after the run (:mod:`acme_dask.worker`): the scheduler also
hands it to workers that join later (a restarted worker, a replacement job), each worker
unpickles it in its main thread, and back-to-back runs with identical arguments never share
each other's data. Every batch is one ``run_dask_batch(run_id, batch)`` task submitted with
``pure=False``. A batch that fails on a live worker (its program cannot be loaded there, or
the task itself raised) fails its calls as errors with the real exception; only a worker
that died or a connection that broke counts as a lost worker.

A worker that dies while it runs calls (killed, over its SLURM ``--mem``, its job cancelled)
costs no call: dask re-runs them elsewhere, and the run's log names the worker, its SLURM
job and the calls it held (read from the scheduler's ``remove-worker`` events, since dask's
own retries never reach acme-core). When every worker is gone, batches wait for a
replacement job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from typing import Any

from acme_core.calls import (
    ERROR,
    LOST_NEIGHBOUR,
    TIMEOUT,
    BatchOutcome,
    CallBatch,
    Failure,
    PickledProgram,
)
from acme_core.executor import ExecutorSettings, FuturesExecutor, RunContext
from acme_core.resources import auto_workers, stops_workers, usable_cores

from . import checks, clients, credentials, slurm_cluster
from .watch import HEARTBEAT_TIMEOUT, WATCH_SECONDS, CallWatch

log = logging.getLogger("acme_dask")

#: How often (s) collect() checks the workers while nothing finishes.
HEALTH_INTERVAL = 5.0


def _lost_worker_types() -> tuple[type[BaseException], ...]:
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    types: list[type[BaseException]] = [KilledWorker, CancelledError, CommClosedError]
    try:
        from distributed.client import FutureCancelledError

        types.append(FutureCancelledError)
    except ImportError:  # pragma: no cover - older distributed
        pass
    return tuple(types)


def _lost_worker_timeout() -> float:
    """Seconds until dask forgets a worker that vanished (``distributed.deploy.lost-worker-timeout``)."""
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.deploy.lost-worker-timeout", "15s")))


def _removed_workers(dask_scheduler: Any = None) -> list[tuple[float, str, list[Any]]]:
    """Run on the scheduler: every ``remove-worker`` event as (time, worker, the keys it
    was processing), in plain types."""
    return [(stamp, str(msg.get("worker")), list(msg.get("processing-tasks", ())))
            for stamp, msg in dask_scheduler.get_events("all")
            if isinstance(msg, dict) and msg.get("action") == "remove-worker"]


def _check_dashboard(options: dict[str, Any]) -> None:
    """The options both backends share: ``dashboard`` and ``heartbeat_timeout``."""
    if not isinstance(options.get("dashboard", False), bool):
        raise TypeError(f"backend_options['dashboard'] has to be True or False, not "
                        f"{options['dashboard']!r}.")
    beat = options.get("heartbeat_timeout", HEARTBEAT_TIMEOUT)
    if isinstance(beat, bool) or not isinstance(beat, (int, float)) or not beat > 0:
        raise ValueError(f"backend_options['heartbeat_timeout'] has to be a number of seconds "
                         f"> 0, not {beat!r}.")


#: How long a done future's result may take to read. It is local unless the future fell back
#: to waiting for a recomputation (its worker died after the batch ran): then the batch is
#: lost and the run loop re-runs its calls, instead of waiting with no worker left.
RESULT_WAIT = 30.0


class ResultLost(Exception):
    """A finished batch whose result went with its worker before the parent read it."""


class DaskExecutor(FuturesExecutor):
    """Backend ``"dask"``: the running dask client, or a local loopback-only cluster.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> ParallelMap(abs, [-1, -2], write_worker_results=False, backend="dask",
    ...             n_workers=1, verbose=False).compute()
    [1, 2]
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        super().__init__(settings)
        self._client: Any = None
        self._owned = False           # True: this executor started the client/cluster
        self._plugin: str | None = None   # name of the run's ProgramPlugin on the workers
        self._ref: PickledProgram | None = None
        self._n = 1
        self._target = 1
        self._last_health = 0.0
        self._no_workers_since: float | None = None
        self._lost: tuple[type[BaseException], ...] = ()
        self._batch_of_key: dict[Any, CallBatch] = {}   # this run's dask keys -> batches
        self._seen_events: set[tuple[Any, Any]] = set()
        self._labels: dict[str, str] = {}                 # worker address -> description
        self._early = False   # True: client() started the cluster the next start() uses
        self._cancelled = False
        self._empty_checks = 0         # health checks in a row that found no worker
        self._rescaled_at = -1e9       # when lost local nannies were last started again
        self._watch: CallWatch | None = None
        self._culprits: dict[Any, dict[int, tuple[str, str]]] = {}   # dask key -> timeouts
        self._stopped_keys: set[Any] = set()   # batches given up on: no "runs again" line
        self._validate(settings.options)

    def _validate(self, options: dict[str, Any]) -> None:
        threads = options.get("threads_per_worker", 1)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"backend_options['threads_per_worker'] has to be an integer >= 1, "
                             f"not {threads!r}.")
        _check_dashboard(options)

    @property
    def n_workers(self) -> int:
        return self._n

    # ------------------------------------------------------------------ start
    def start(self, run: RunContext) -> None:
        assert run.program_bytes is not None
        self._lost = _lost_worker_types()
        self._cancelled = False
        client = clients.running_client()
        try:
            if self._early:   # started by client(): its workers were all online then
                self._early = False
                if clients.count_online_workers(self._client) == 0:
                    raise RuntimeError(f"The cluster started for `daemon.client` "
                                       f"({self._client}) has no workers left; no active "
                                       f"workers found.")
            elif client is not None:
                self._attach(client)
            else:
                self._client = self._start_cluster(run)
                self._owned = True
                if self._client is None:
                    raise ConnectionAbortedError("Could not start distributed computing client.")
            self._ref = PickledProgram(run.program_bytes, run.info.run_id, run.sys_path)
            self._online()
            self._ship_program()
            self._n = max(1, self._threads_online(), self._target)
            self._watch = CallWatch(self._client, run.info.run_id, self.settings.timeout,
                                    self.settings.options.get("heartbeat_timeout",
                                                              HEARTBEAT_TIMEOUT))
        except BaseException:
            self._stop(force=self._owned)
            raise

    def client(self, run: RunContext) -> Any:
        """The running client, or this backend's own cluster started now for ``run``
        (ParallelMap's ``daemon.client``)."""
        if self._client is None:
            running = clients.running_client()
            if running is not None:
                return running
            self._client = self._start_cluster(run)
            self._owned = self._early = self._client is not None
        return self._client

    def _attach(self, client: Any) -> None:
        log.info(f"Attaching to parallel computing client {client}")
        ignored = [f"{name}={getattr(self.settings, name)!r}" for name, default in
                   (("n_workers", "auto"), ("partition", "auto"), ("mem_per_worker", "auto"))
                   if getattr(self.settings, name) != default]
        if ignored:
            log.warning(f"{', '.join(ignored)} ignored: the running client's workers are used.")
        self._client, self._owned = client, False
        setup_timeout = float(self.settings.setup_timeout)
        deadline = time.monotonic() + setup_timeout
        while clients.count_online_workers(client) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"The running dask client {client} has no workers (waited "
                                   f"{setup_timeout:g} s); no active workers found.")
            time.sleep(0.2)
        self._target = self._threads_online()

    def _start_cluster(self, run: RunContext) -> Any:
        n = self.settings.n_workers
        n_workers = auto_workers(run.n_calls, usable_cores()) if n == "auto" else int(n)
        mem = self.settings.mem_per_worker
        self._target = n_workers * self.settings.options.get("threads_per_worker", 1)
        return clients.local_cluster_setup(
            n_workers=n_workers, mem_per_worker=None if mem == "auto" else mem,
            interactive=False, threads_per_worker=self.settings.options.get("threads_per_worker", 1),
            dashboard=self.settings.options.get("dashboard", False))

    def _threads_online(self) -> int:
        info = self._client.scheduler_info()
        return sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())

    def _ship_program(self) -> None:
        # a worker plugin, not a scattered value: workers that join later (a nanny's new
        # worker, a replacement job) get it from the scheduler before their first task, so
        # nothing has to be re-sent when workers die, and it is loaded in their main thread
        from .worker import ProgramPlugin

        assert self._ref is not None
        plugin = ProgramPlugin(self._ref)
        self._client.register_plugin(plugin, name=plugin.name)
        self._plugin = plugin.name

    # ------------------------------------------------------------------ batches
    def _submit_future(self, batch: CallBatch) -> Any:
        from .worker import run_dask_batch

        assert self._ref is not None
        future = self._client.submit(run_dask_batch, self._ref.run_id, batch, pure=False)
        self._batch_of_key[future.key] = batch
        return future

    def _is_lost_worker(self, exc: BaseException) -> bool:
        return (isinstance(exc, (ResultLost, *self._lost))
                or "lost dependencies" in str(exc).lower())

    def _result(self, future: Any) -> Any:
        """A done future's result; one that went back to waiting because the worker
        holding its result died (dask then waits for a recomputation, forever when no
        worker is left) is a lost batch after :data:`RESULT_WAIT`."""
        if future.status == "error":
            return future.result()    # raises the task's own exception at once
        if future.status == "lost":
            raise ResultLost("its result was lost with its worker before it was read")
        try:
            return future.result(timeout=RESULT_WAIT)
        except TimeoutError as exc:
            raise ResultLost(f"its result was not readable within {RESULT_WAIT:.0f} s "
                             f"(its worker died after the batch ran)") from exc

    def _failed_batch(self, batch: CallBatch, exc: BaseException) -> list[BatchOutcome]:
        """A task that raised on a live worker is every call's error (never retried as a
        lost worker); a dead worker or a broken connection is a lost worker."""
        if self._is_lost_worker(exc):   # the run loop re-runs its calls one by one
            return super()._failed_batch(batch, exc)
        import traceback

        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = f"the dask task of this call raised: {exc}"
        failures = {i: Failure(i, ERROR, type(exc).__qualname__, message, text, "",
                               batch.attempt) for i in batch.indices}
        n = len(batch.indices)
        return [BatchOutcome(batch.indices, [None] * n, [0.0] * n, failures, "", batch.attempt)]

    def collect(self, timeout: float | None) -> list[BatchOutcome]:
        watch = self._watch
        if watch is not None and timeout is not None:
            timeout = min(timeout, WATCH_SECONDS)
        outcomes = super().collect(timeout)
        if self._pending:
            self._check_health()
            if watch is not None and watch.due():
                self._stop_workers(watch)
        return outcomes

    def _stop_workers(self, watch: CallWatch) -> None:
        """Stop the workers of calls over ``timeout`` (those calls fail with kind
        ``timeout``, their batch neighbours run again free) and workers that stopped
        beating (dask re-runs their calls elsewhere)."""
        with self._lock:
            futures = {f.key: f for f in self._pending.values()}
        running = {i: key for key, f in futures.items() if key in self._batch_of_key
                   for i in self._batch_of_key[key].indices}
        for stop in watch.check(lambda index: index in running):
            log.warning(f"Call {stop.index}: {stop.reason}." if stop.index is not None
                        else f"{stop.reason[:1].upper()}{stop.reason[1:]}.")
            if stop.kind == TIMEOUT and stop.index in running:
                key = running[stop.index]
                self._culprits[key] = {stop.index: (TIMEOUT, stop.reason)}
                self._stopped_keys.add(key)
                with contextlib.suppress(Exception):   # the client may be gone already
                    self._client.cancel([futures[key]])
            watch.kill(stop)

    def _outcomes_of(self, batch: CallBatch, future: Any) -> list[BatchOutcome]:
        culprits = self._culprits.pop(getattr(future, "key", None), None)
        if culprits:
            return [batch.lost("another call of its batch ran over its time limit and its "
                               "worker was killed", kind=LOST_NEIGHBOUR, culprits=culprits)]
        return super()._outcomes_of(batch, future)

    def _online(self) -> int:
        """Workers online now; describes each new one for :meth:`_report_lost_workers`."""
        workers = self._client.scheduler_info().get("workers", {})
        for address, info in workers.items():
            if address not in self._labels:
                self._labels[address] = self._label(address, str(info.get("name", "")))
        return len(workers)

    def _label(self, address: str, name: str) -> str:
        return f"{address} ({name})" if name and name != address else address

    def _check_health(self) -> None:
        """Every few seconds: log lost workers, replace lost SLURM jobs, and give up when no
        worker is left for longer than a replacement can take."""
        now = time.monotonic()
        if now - self._last_health < HEALTH_INTERVAL:
            return
        self._last_health = now
        self._report_lost_workers()
        online = self._online()
        if online or self._nannies_alive():
            self._no_workers_since = None
            self._empty_checks = 0
        else:
            self._empty_checks += 1
            if self._no_workers_since is None:
                self._no_workers_since = now
        if self._owned:
            self._replace_lost_workers(online)
        waited = now - self._no_workers_since if self._no_workers_since is not None else 0.0
        # a lost SLURM job is replaced only once dask-jobqueue has forgotten it
        # (distributed's lost-worker-timeout), and the replacement then has to start
        limit = max(float(self.settings.setup_timeout), 2 * HEALTH_INTERVAL) + _lost_worker_timeout()
        # and as many checks in a row found no worker (a clock that jumps is no stall)
        if waited > limit and self._empty_checks * HEALTH_INTERVAL > limit:
            raise RuntimeError(f"Parallel computation stalled: no active workers found for "
                               f"{waited:.0f} s (client {self._client}{self._nanny_note()}).")

    def _replace_lost_workers(self, online: int) -> None:
        """Local clusters restart dead workers themselves (nannies), but the cluster closes a
        nanny whose worker has not come back within distributed's lost-worker-timeout (a
        busy machine, a call that kills every new worker): start such nannies again."""
        cluster = getattr(self._client, "cluster", None)
        spec, nannies = getattr(cluster, "worker_spec", None), getattr(cluster, "workers", None)
        if spec is None or nannies is None or len(nannies) >= len(spec):
            return
        if time.monotonic() - self._rescaled_at < 3 * HEALTH_INTERVAL:
            return                 # the ones started last time are still starting
        self._rescaled_at = time.monotonic()
        log.info(f"{len(spec) - len(nannies)} local worker(s) gone for good; starting them "
                 f"again.")
        cluster.scale(len(spec))   # starts the nannies the cluster's spec lacks

    def _nanny_note(self) -> str:
        cluster = getattr(self._client, "cluster", None) if self._owned else None
        nannies = dict(getattr(cluster, "workers", None) or {})
        states = [getattr(getattr(n, "status", None), "name", "?") for n in nannies.values()]
        return f", nannies {', '.join(states)}" if nannies else ""

    def _nannies_alive(self) -> bool:
        """True while the run's own local cluster has nannies, which restart every worker
        that dies (one killed by its call again and again is never a stalled run)."""
        cluster = getattr(self._client, "cluster", None) if self._owned else None
        nannies = dict(getattr(cluster, "workers", None) or {})
        gone = ("closing", "closed", "failed", "closing_gracefully")
        return any(getattr(getattr(n, "status", None), "name", "closed") not in gone
                   for n in nannies.values())

    def _report_lost_workers(self) -> None:
        """Log each worker the scheduler removed while it ran calls of this run.

        dask re-runs such calls on other workers by itself, so acme-core never sees them
        fail: without this log line a killed worker would leave no trace in the run's log.
        """
        if not self._batch_of_key or self._client is None:
            return
        try:
            # not client.get_events("all"): that topic can hold events the scheduler cannot
            # serialise (WorkerState objects of "replicate", logged by broadcast scatters)
            removed = self._client.run_on_scheduler(_removed_workers)
        except Exception as exc:  # noqa: BLE001 - only a log line; the client may be gone
            log.debug(f"could not read the scheduler's events: {exc!r}")
            return
        for stamp, address, keys in removed:
            if (stamp, address) in self._seen_events:
                continue
            self._seen_events.add((stamp, address))
            batches = [self._batch_of_key[k] for k in keys
                       if k in self._batch_of_key and k not in self._stopped_keys]
            if batches:
                calls = sorted(i for b in batches for i in b.indices)
                log.warning(f"Worker {self._labels.get(address, address)} was lost while "
                            f"running call(s) {calls}; they run again on another worker.")

    def cancel(self) -> None:
        self._cancelled = True
        with self._lock:
            pending = list(self._pending.values())
        if pending and self._client is not None:
            try:
                self._client.cancel(pending)
            except Exception as exc:  # noqa: BLE001 - the client may be gone already
                log.debug(f"cancelling {len(pending)} batches failed: {exc!r}")

    # ------------------------------------------------------------------ end
    def _stop_wanted(self) -> bool:
        return stops_workers(self.settings.stop_client, started_by_run=self._owned)

    def close(self) -> None:
        self._report_lost_workers()
        self._stop(force=False)

    def _stop(self, force: bool) -> None:
        client = self._client
        plugin, self._plugin = self._plugin, None
        if client is None:
            return
        self._batch_of_key.clear()
        if force or self._stop_wanted():
            interrupted = force or self._cancelled
            self.cancel()
            self._client = None
            clients.stop_cluster(client, interrupted=interrupted)
            return
        if plugin is not None:   # the workers stay: they drop this run's program
            with contextlib.suppress(Exception):  # the client may be gone already
                client.unregister_worker_plugin(plugin)
        if self._owned:
            clients.keep_client(client)   # stop_client=False: the next ParallelMap attaches

    def shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.status == "running":
            clients.cluster_cleanup(client)


class SlurmExecutor(DaskExecutor):
    """Backend ``"slurm"``: dask workers as SLURM jobs, TLS between all of them.

    ``n_workers="auto"`` starts ``min(n_calls, idle CPUs of the partition // cores,
    max_workers)`` jobs (at least one): never more jobs than calls.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> ParallelMap(abs, [-1, -2], write_worker_results=False, backend="slurm",
    ...             n_workers=2, verbose=False).compute()      # doctest: +SKIP
    [1, 2]
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        self._cluster: Any = None
        self._scale_n = 1
        super().__init__(settings)

    def _validate(self, options: dict[str, Any]) -> None:
        for key in ("cores", "processes", "mem_cushion", "max_workers"):
            value = options.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "mem_cushion" else 1):
                raise ValueError(f"backend_options[{key!r}] has to be an integer >= 1, not {value!r}.")
        checks.check_job_extra(options.get("job_extra", []))
        _check_dashboard(options)
        for key in ("walltime", "interface", "log_directory", "shared_temp_directory", "job_name"):
            value = options.get(key)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"backend_options[{key!r}] has to be a string, not {value!r}.")
        security = options.get("security", True)
        if not isinstance(security, bool) and type(security).__name__ != "Security":
            raise TypeError(f"backend_options['security'] has to be True, False or a "
                            f"distributed Security object, not {security!r}.")

    def _start_cluster(self, run: RunContext) -> Any:
        opts = self.settings.options
        cores = int(opts.get("cores", 1))
        processes = int(opts.get("processes", 1))
        n = self.settings.n_workers
        partition = self.settings.partition
        if n == "auto":
            n_workers = self._auto_workers(run.n_calls, partition, cores,
                                           int(opts.get("max_workers", 64)))
        else:
            n_workers = int(n)
        log_directory = opts.get("log_directory")
        if log_directory is None:
            log_directory = (os.path.join(run.output_dir, "logs") if run.output_dir
                             else slurm_cluster.default_log_directory())
        security = opts.get("security", True)
        shared = opts.get("shared_temp_directory")
        tls_dir = None
        if security is True and shared is None:
            shared = tls_dir = credentials.private_directory()
        mem = self.settings.mem_per_worker
        self._scale_n = n_workers
        self._target = n_workers * max(1, cores // processes)
        client = slurm_cluster.slurm_cluster_setup(
            partition=partition, n_cores=cores, n_workers=n_workers,
            processes_per_worker=processes, mem_per_worker=None if mem == "auto" else mem,
            n_workers_startup=1, timeout=self.settings.setup_timeout,
            interactive=self.settings.setup_interactive, interactive_wait=120,
            start_client=True, job_extra=list(opts.get("job_extra", [])),
            mem_cushion=int(opts.get("mem_cushion", 100)), walltime=opts.get("walltime"),
            interface=opts.get("interface"), security=security, log_directory=log_directory,
            shared_temp_directory=shared,
            job_name=opts.get("job_name") or f"acme_{slurm_cluster.current_user()}_{run.info.run_id[:6]}",
            reuse=False, dashboard=opts.get("dashboard", False))
        if client is not None:
            self._cluster = client.cluster
            if tls_dir is not None:   # the credentials live as long as the jobs may need them
                credentials.remove_credentials_with(self._cluster, tls_dir)
        elif tls_dir is not None:
            shutil.rmtree(tls_dir, ignore_errors=True)
        return client

    @staticmethod
    def _auto_workers(n_calls: int, partition: str, cores: int, cap: int) -> int:
        from .slurm import get_slurm_partitions, idle_cpus

        if partition == "auto":
            partition = get_slurm_partitions()[1] or ""
        idle = idle_cpus(partition) if partition else None
        free = max(1, idle // cores) if idle is not None else cap
        n = auto_workers(n_calls, min(free, cap))
        log.info(f"n_workers='auto': starting {n} SLURM worker(s) for {n_calls} calls "
                 f"({idle if idle is not None else 'unknown'} idle CPUs in {partition or '?'})")
        return n

    def _label(self, address: str, name: str) -> str:
        # the SLURM job is looked up when the worker is first seen: dask-jobqueue forgets a
        # lost job (and gives its name to the replacement) after lost-worker-timeout
        cluster = self._cluster or getattr(self._client, "cluster", None)   # also attached
        jobs = dict(getattr(cluster, "workers", None) or {})   # a copy: atomic
        job = getattr(jobs.get(name), "job_id", None)
        label = super()._label(address, name)
        return f"{label}, SLURM job {job}" if job else label

    def status(self) -> dict[str, int]:
        """SLURM jobs submitted whose worker has not connected yet (the progress display's
        "queued")."""
        cluster = self._cluster or getattr(self._client, "cluster", None)
        try:
            submitted = len(dict(getattr(cluster, "workers", None) or {}))
            online = clients.count_online_workers(self._client)
        except Exception:  # noqa: BLE001 - a display detail must never fail a run
            return {}
        return {"queued": max(0, submitted - online)}

    def _replace_lost_workers(self, online: int) -> None:
        cluster = self._cluster
        if cluster is None or online >= self._scale_n:
            return
        # dask-jobqueue forgets a job whose worker vanished (cancelled, node failure, walltime)
        # after distributed's lost-worker-timeout; scale() then submits a replacement.
        log.warning(f"{online} of {self._scale_n} SLURM workers online; re-submitting lost jobs.")
        cluster.scale(self._scale_n)

