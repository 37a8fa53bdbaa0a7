"""``slurm_cluster_setup``: dask workers as SLURM jobs through dask-jobqueue, with ACME's
parameters and messages, in steps: check the arguments, attach to a running client, size
the jobs from the partition, make the TLS credentials, submit and wait for the workers."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import logging
import os
import shutil
import signal
import sys
import time
import weakref
from typing import Any

from acme_core.reaper import Reaper

from . import prompts
from .checks import check_bool, check_int, check_job_extra, output_directory
from .clients import (
    closing_new_clusters,
    cluster_cleanup,
    cluster_config,
    count_online_workers,
    dashboard_note,
    release_reaper,
    running_client,
)
from .credentials import private_directory, remove_credentials_with
from .slurm import get_slurm_partitions, parse_memory, partition_memory

log = logging.getLogger("acme_dask")

def import_jobqueue() -> Any:
    """Import ``dask_jobqueue`` without letting it take over Ctrl-C.

    dask-jobqueue 0.9 runs ``signal.signal(SIGINT, lambda *_: sys.exit())`` when imported
    (for its runner CLI), which turns Ctrl-C into a silent exit with status 0 and, from any
    thread but the main one, makes the import fail. The handler is not installed here.

    Examples
    --------
    >>> import signal
    >>> from acme_dask.slurm_cluster import import_jobqueue
    >>> before = signal.getsignal(signal.SIGINT)
    >>> import_jobqueue().SLURMCluster.__name__
    'SLURMCluster'
    >>> signal.getsignal(signal.SIGINT) is before
    True
    """
    if "dask_jobqueue" in sys.modules:
        return sys.modules["dask_jobqueue"]
    real = signal.signal

    def keep(signum: int, handler: Any) -> Any:
        return signal.getsignal(signum)

    signal.signal = keep  # type: ignore[assignment]
    try:
        import dask_jobqueue
    finally:
        signal.signal = real
    return dask_jobqueue

def default_log_directory() -> str:
    """Where SLURM job output goes when a run has no output directory (in-memory runs).

    ``~/acme_slurm_logs/<user>_<YYYYmmdd-HHMMSS-ffffff>``: the home directory is the one
    place every node of a SLURM cluster can write to (ACME uses ``/cs/slurm/<user>/...`` on
    ESI and ``~/slurm/...`` on CoBIC).

    Examples
    --------
    >>> from acme_dask.slurm_cluster import default_log_directory
    >>> "acme_slurm_logs" in default_log_directory()
    True
    """
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return os.path.join(os.path.expanduser("~"), "acme_slurm_logs", f"{current_user()}_{stamp}")

def current_user() -> str:
    """The login name (the uid where there is none), used in job names and log folders.

    Examples
    --------
    >>> from acme_dask.slurm_cluster import current_user
    >>> isinstance(current_user(), str)
    True
    """
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return str(os.getuid())

def slurm_cluster_setup(partition: str = "auto", n_cores: int = 1, n_workers: int = 1,
                        processes_per_worker: int = 1, mem_per_worker: str | None = "1GB",
                        n_workers_startup: int = 1, timeout: float = 60,
                        interactive: bool = True, interactive_wait: float = 10,
                        start_client: bool = True, job_extra: list[str] | None = None,
                        worker_extra_args: list[str] | None = None,
                        scheduler_options: dict[str, Any] | None = None,
                        avail_partitions: list[str] | None = None,
                        invalid_partitions: list[str] | None = None,
                        mem_cushion: int = 100, *, walltime: str | None = None,
                        interface: str | None = None, security: Any = True,
                        log_directory: str | None = None,
                        shared_temp_directory: str | None = None,
                        job_name: str | None = None, reuse: bool = True,
                        dashboard: bool = False, **kwargs: Any) -> Any:
    """Start dask workers as SLURM jobs (dask-jobqueue's SLURMCluster) and wait for them.

    ACME's parameters and messages; works on any SLURM, with or without accounting.

    Parameters
    ----------
    partition : str
        A partition from ``sinfo``; ``"auto"`` (ours) means the cluster's default partition.
    n_cores, n_workers, processes_per_worker
        CPUs per job, workers to start, dask worker processes per job.
    mem_per_worker : str or None
        Memory per job (``"8GB"`` = 8000 MB, ``"12000MB"``; SLURM's MB); None or ``"auto"``:
        the partition's default (``DefMemPerCPU`` x cores). Capped, with a warning, at the
        partition's limit (``MaxMemPerCPU`` x cores, ``MaxMemPerNode``, node memory, QoS)
        minus ``mem_cushion`` MB.
    n_workers_startup : int
        Without a prompt, a start-up that timed out goes on with the workers that came if
        at least this many (and at least one) came, else ``TimeoutError``.
    timeout, interactive, interactive_wait
        Seconds to wait for all workers; then ask (if ``interactive`` and on a terminal)
        "[k]eep waiting, [a]bort or [c]ontinue", answering ``c`` after ``interactive_wait`` s.
    start_client : bool
        Return a ``Client`` (True) or the cluster.
    job_extra, worker_extra_args, scheduler_options
        Extra ``#SBATCH`` lines (e.g. ``["--account=lab"]``), dask-worker arguments,
        scheduler options.
    avail_partitions, invalid_partitions
        Partitions to accept instead of asking ``sinfo``; partitions to hide from messages.
    mem_cushion : int
        MB kept free below the partition's memory limit.
    walltime : str, optional
        ``--time`` of every job (``"01:00:00"``); default none, so the partition's default.
    interface : str, optional
        Network interface for scheduler and workers (e.g. ``"ib0"``; ``"lo"`` on one host).
    security : bool or distributed.security.Security
        True (default): TLS with credentials made for this cluster (``Security.temporary()``),
        so only this process and its jobs can connect. False: plain TCP (only for debugging on
        a trusted network; anyone who reaches the port can run code as you).
    log_directory : str, optional
        Folder of the jobs' output files; default :func:`default_log_directory`.
    shared_temp_directory : str, optional
        Folder the compute nodes can read where the TLS credentials are written (files
        0600); default a new private folder under ``~/.acme_dask``, removed with the cluster.
    job_name : str, optional
        SLURM job name; default ``acme_<user>_<HHMMSS>``.
    reuse : bool
        Return the running client if there is one with workers (ACME); False: always start.
    dashboard : bool
        Serve dask's dashboard on a free loopback port of this host, logged once (readable by
        every user of this host). Default False (ours): scheduler and workers serve nothing
        over HTTP (ACME served it on port 8787 to everyone).
    **kwargs
        Unknown keywords are ignored with a warning (ACME ignored them silently).

    Returns
    -------
    distributed.Client or dask_jobqueue.SLURMCluster or None
        None when the user chose to abort at the prompt.

    Raises
    ------
    OSError
        "Error fetching SLURM partition setup" when ``sinfo`` is missing or fails.
    ValueError
        "Invalid partition selection ..." listing the available partitions.
    TimeoutError
        No worker came within ``timeout`` and nobody was asked.

    Examples
    --------
    >>> from acme_dask import slurm_cluster_setup, cluster_cleanup
    >>> client = slurm_cluster_setup(n_workers=2, mem_per_worker="500MB",
    ...                              interactive=False)               # doctest: +SKIP
    >>> cluster_cleanup(client)                                       # doctest: +SKIP
    """
    if kwargs:
        log.warning(f"slurm_cluster_setup ignores unknown keyword(s) {', '.join(sorted(kwargs))}.")
    for name, flag in (("interactive", interactive), ("start_client", start_client),
                       ("dashboard", dashboard)):
        check_bool(name, flag)
    n_cores, n_workers, processes_per_worker, n_workers_startup, mem_cushion = (
        check_int(name, value, low) for name, value, low in (
            ("n_cores", n_cores, 1), ("n_workers", n_workers, 1),
            ("processes_per_worker", processes_per_worker, 1),
            ("n_workers_startup", n_workers_startup, 0), ("mem_cushion", mem_cushion, 0)))
    _check_waits(timeout, interactive_wait)
    job_extra = check_job_extra([] if job_extra is None else job_extra)
    output_folder = output_directory(job_extra)
    requested_mb = None if mem_per_worker in (None, "auto") else parse_memory(mem_per_worker)
    if reuse:
        client = _reusable_client()
        if client is not None:
            return client if start_client else client.cluster
    partition = _pick_partition(partition, avail_partitions, invalid_partitions)
    mem_mb = _job_memory(partition, n_cores, requested_mb, mem_cushion)
    if log_directory is None:
        log_directory = default_log_directory()
    os.makedirs(log_directory, exist_ok=True)
    security, shared_temp_directory, own_tmp = _credentials(security, shared_temp_directory)
    log.info(f"Starting {n_workers} SLURM worker(s) in partition {partition} with "
             f"{n_cores} core(s) and {mem_mb}MB each; job output goes to {log_directory}")
    jobs = dict(
        cores=n_cores, job_cpu=n_cores, memory=f"{mem_mb}MiB", job_mem=f"{mem_mb}M",
        processes=processes_per_worker, queue=partition, walltime=walltime,
        job_extra_directives=job_extra, worker_extra_args=list(worker_extra_args or []),
        scheduler_options=scheduler_options or {}, interface=interface, security=security,
        shared_temp_directory=shared_temp_directory,
        log_directory=None if output_folder else log_directory, local_directory=output_folder,
        job_name=job_name or f"acme_{current_user()}_{dt.datetime.now():%H%M%S}")
    wait = (n_workers, n_workers_startup, timeout, interactive, interactive_wait)
    try:
        return _start_jobs(jobs, wait, own_tmp, start_client, dashboard)
    except BaseException:
        if own_tmp is not None:
            shutil.rmtree(own_tmp, ignore_errors=True)
        raise


def _check_waits(timeout: Any, interactive_wait: Any) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"`timeout` has to be a number of seconds >= 1, not {timeout!r}.")
    if timeout < 1:
        raise ValueError(f"`timeout` has to be a number of seconds between 1 and inf, not "
                         f"{timeout!r}.")
    if isinstance(interactive_wait, bool) or not isinstance(interactive_wait, (int, float)) \
            or interactive_wait < 0:
        raise ValueError(f"`interactive_wait` has to be a number of seconds >= 0, not "
                         f"{interactive_wait!r}.")


def _reusable_client() -> Any:
    """The running client if it has workers (ACME's reuse); one without workers is stopped."""
    client = running_client()
    if client is None:
        return None
    if count_online_workers(client) > 0:
        log.info(f"Attaching to parallel computing client {client}")
        return client
    log.info(f"Shutting down the running client {client}: it has no workers.")
    cluster_cleanup(client)
    return None


def _pick_partition(partition: Any, avail_partitions: list[str] | None,
                    invalid_partitions: list[str] | None) -> str:
    """``partition`` checked against ``sinfo`` (or ``avail_partitions``); ``"auto"``: the
    cluster's default partition."""
    partitions, default = get_slurm_partitions() if not avail_partitions else \
        (list(avail_partitions), None)
    if partition == "auto":
        if default is None:
            raise ValueError("`partition='auto'` means the cluster's default partition, but "
                             f"this cluster has none; available SLURM partitions are "
                             f"{_listing(partitions, invalid_partitions)}")
        log.info(f"Using the cluster's default SLURM partition {default}")
        return default
    if not isinstance(partition, str) or partition not in partitions:
        raise ValueError(f"Invalid partition selection {partition}, available SLURM partitions "
                         f"are {_listing(partitions, invalid_partitions)}")
    return partition


def _job_memory(partition: str, n_cores: int, requested_mb: int | None,
                mem_cushion: int) -> int:
    """MB per job: the request, or the partition's default; capped at its limit minus the
    cushion (with ACME's warning)."""
    memory = partition_memory(partition)
    limit = memory.limit(n_cores)
    limit = limit - mem_cushion if limit is not None else None
    if requested_mb is None:
        base = memory.default(n_cores)
        mem_mb = max(1, base - mem_cushion) if base is not None else 1000
        if base is None:
            log.warning(f"SLURM reports no memory setting for partition {partition}; "
                        f"asking for {mem_mb}MB per worker.")
    else:
        mem_mb = requested_mb
    if limit is not None and mem_mb > limit:
        log.warning(f"`mem_per_worker` of {mem_mb}MB exceeds limit of {limit}MB for partition "
                    f"{partition}. Capping memory at partition limit.")
        mem_mb = limit
    return mem_mb


def _credentials(security: Any, shared: str | None) -> tuple[Any, str | None, str | None]:
    """``(Security or None, folder for the workers' credentials, that folder if it is ours
    to remove)``."""
    if security is True:
        from distributed.security import Security

        own = private_directory() if shared is None else None
        return Security.temporary(), shared or own, own
    if security is False or security is None:
        log.warning("TLS is switched off: any process that reaches the scheduler's port can "
                    "run code on your workers.")
        return None, shared, None
    return security, shared, None


def _start_jobs(jobs: dict[str, Any], wait: tuple[Any, ...], own_tmp: str | None,
                start_client: bool, dashboard: bool) -> Any:
    """Make the SLURMCluster of ``jobs`` (its jobs cancelled should this process die),
    submit the jobs and wait for their workers; the client, the cluster or None."""
    security = jobs["security"]
    # port 0: a free port, never distributed's "Port 8787 is already in use" warning
    jobs.update(
        scheduler_options={"dashboard_address": "127.0.0.1:0", **jobs["scheduler_options"]},
        python=sys.executable, protocol=None if security is None else "tls://",
        job_directives_skip=[] if jobs["walltime"] else ["#SBATCH -t "],
        name=jobs["job_name"], silence_logs="error", death_timeout=WORKER_DEATH_TIMEOUT,
        job_script_prologue=[] if dashboard else [_NO_WORKER_HTTP])
    reaper = Reaper()
    jobs["job_extra_directives"] = reaper.tag_slurm_jobs(jobs["job_extra_directives"])
    SLURMCluster = import_jobqueue().SLURMCluster  # noqa: N806 - a class
    with closing_new_clusters(), cluster_config(dashboard):
        try:
            cluster = SLURMCluster(job_cls=reaped_job_class(reaper), **jobs)
        except BaseException:
            reaper.close()
            raise
        cluster.acme_reaper = reaper     # released when the cluster is stopped
        weakref.finalize(cluster, reaper.close)
        if own_tmp is not None:
            remove_credentials_with(cluster, own_tmp)
        n_workers = wait[0]
        cluster.scale(n_workers)
        online = wait_for_workers(cluster, *wait)
        if online is None:
            log.info("SLURM cluster setup aborted: every job is cancelled.")
            cluster.close()
            release_reaper(cluster)
            return None
        if not start_client:
            return cluster
        from distributed import Client

        client = Client(cluster, security=security)
        client.acme_dashboard = dashboard
    log.info(f"Parallel computing client ready, {dashboard_note(client)}")
    return client


def reaped_job_class(reaper: Reaper) -> type:
    """dask-jobqueue's ``SLURMJob`` whose jobs ``reaper`` cancels should this process die
    (SIGKILL, the OOM killer): each job id is handed over the moment ``sbatch`` returns it,
    so a job pending in the queue is cancelled too, not only one whose worker runs.

    Examples
    --------
    >>> from acme_core.reaper import Reaper
    >>> from acme_dask.slurm_cluster import reaped_job_class
    >>> reaper = Reaper()
    >>> reaped_job_class(reaper).__name__
    'ReapedSLURMJob'
    >>> reaper.close()
    """
    import_jobqueue()
    from dask_jobqueue.slurm import SLURMJob as base

    def _job_id_from_submit_output(self: Any, out: str) -> str:
        job_id = base._job_id_from_submit_output(self, out)
        with contextlib.suppress(RuntimeError, OSError):   # closed: the cluster is closing
            reaper.add(["scancel"], str(job_id))
        return job_id

    return type("ReapedSLURMJob", (base,),
                {"_job_id_from_submit_output": _job_id_from_submit_output})


#: Seconds a SLURM worker (and its nanny) keeps trying to reach a scheduler that is gone
#: (the parent was SIGKILLed) before its job ends (dask-jobqueue's default: 60).
WORKER_DEATH_TIMEOUT = 10

#: Job script line: the workers of a SLURM job serve nothing over HTTP (see cluster_config).
_NO_WORKER_HTTP = "export DASK_DISTRIBUTED__WORKER__HTTP__ROUTES='[]'"

def _listing(partitions: list[str], hidden: list[str] | None) -> str:
    shown = [p for p in partitions if p not in (hidden or [])]
    return ", ".join(f"'{p}'" for p in shown)

def wait_for_workers(cluster: Any, n_workers: int, n_workers_startup: int, timeout: float,
                     interactive: bool, interactive_wait: float) -> int | None:
    """Wait until ``n_workers`` workers are online; ACME's prompt on time-out.

    Returns the number of workers to go on with, or None when the user chose abort.

    Raises
    ------
    TimeoutError
        Nobody was asked and fewer than ``max(1, n_workers_startup)`` workers came.

    Examples
    --------
    >>> from acme_dask.slurm_cluster import wait_for_workers
    >>> cluster.scale(4)                                              # doctest: +SKIP
    >>> wait_for_workers(cluster, 4, 1, timeout=60, interactive=False,
    ...                  interactive_wait=10)                         # doctest: +SKIP
    4
    """
    interactive = interactive and sys.stdin is not None and sys.stdin.isatty()
    start = time.monotonic()
    deadline = start + timeout
    bar = prompts.SetupBar(n_workers)
    try:
        while True:
            online = count_online_workers(cluster)
            bar.show(online, deadline - time.monotonic())
            if online >= n_workers:
                bar.close()      # before the log line: one line per event
                log.info(f"SLURM workers ready: {online}/{n_workers} after "
                         f"{time.monotonic() - start:.1f} s")
                return online
            if time.monotonic() >= deadline:
                bar.close()      # the question or warning gets its own line
                if interactive:
                    if online > 0:
                        answer = prompts.user_input(
                            f"SLURM workers could not be started within given time-out interval "
                            f"of {timeout:g} seconds. Do you want to [k]eep waiting for "
                            f"{prompts.KEEP_WAITING:g}s, [a]bort or [c]ontinue with {online} workers?",
                            "kac", "c", interactive_wait)
                    else:
                        answer = prompts.user_input(
                            f"SLURM workers could not be started within given time-out interval "
                            f"of {timeout:g} seconds. Do you want to [k]eep waiting for "
                            f"{prompts.KEEP_WAITING:g}s or [a]bort?", "ka", "a", prompts.KEEP_WAITING)
                    if answer == "k":
                        deadline = time.monotonic() + prompts.KEEP_WAITING
                        continue
                    if answer == "a":
                        return None
                    return online
                if online >= max(1, n_workers_startup):
                    log.warning(f"Only {online} of {n_workers} SLURM workers started within "
                                f"{timeout:g} seconds; going on with them.")
                    return online
                raise TimeoutError(f"SLURM workers could not be started within given time-out "
                                   f"interval of {timeout:g} seconds")
            time.sleep(0.2)
    finally:
        bar.close()
