"""ACME's cluster helpers: ``local_cluster_setup``, ``slurm_cluster_setup``, ``cluster_cleanup``.

Parameters, defaults and messages follow ACME (esi-acme 2026.6); where this module differs
it says so in a docstring and in the plugin README ("Differences from ACME").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
import weakref
from typing import Any

from .slurm import get_slurm_partitions, parse_memory, partition_memory

log = logging.getLogger("acme_dask")

#: Seconds the "[k]eep waiting" answer of the start-up prompt waits (ACME: 60).
KEEP_WAITING = 60.0
#: Clients started with ``stop_client=False``: a strong reference keeps them (and their
#: clusters) alive for the next ParallelMap, since distributed only holds them weakly.
_kept: dict[int, Any] = {}


# ---------------------------------------------------------------------------------- prompts
def user_input(message: str, valid: str, default: str, timeout: float) -> str:
    """Ask ``message`` on the terminal; return one of ``valid`` (one letter each).

    Without a terminal on stdin, or when nothing valid is typed within ``timeout`` seconds,
    the answer is ``default``.

    Examples
    --------
    >>> from acme_dask.setup import user_input
    >>> user_input("Go on? [y/N]", "yn", "n", timeout=1)   # no terminal under pytest
    'n'
    """
    stdin = sys.stdin
    if stdin is None or not hasattr(stdin, "isatty") or not stdin.isatty():
        log.info(f"{message} No terminal to ask: answering {default!r}.")
        return default
    deadline = time.monotonic() + timeout
    print(f"{message} (default '{default}' in {timeout:.0f}s) ", end="", flush=True)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print(default)
            return default
        ready, _, _ = select.select([stdin], [], [], left)
        if not ready:
            continue
        answer = stdin.readline().strip().lower()[:1] or default
        if answer in valid:
            return answer
        print(f"Please answer one of {', '.join(valid)}: ", end="", flush=True)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` has to be `True` or `False`, not {value!r} "
                        f"({type(value).__name__}).")
    return value


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; ACME's messages name the parameter ``name``.

    Shared with site plugins (acme-slurm-esi) that validate the same kind of settings.

    Examples
    --------
    >>> from acme_dask.setup import check_int
    >>> check_int("n_workers", 2.0, 1)
    2
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` has to be an integer >= {minimum}, not {value!r} "
                        f"({type(value).__name__}).")
    if value != int(value) or value < minimum:
        raise ValueError(f"`{name}` has to be an integer between {minimum} and inf, not {value!r}.")
    return int(value)


# ---------------------------------------------------------------------------------- clients
def usable_cores() -> int:
    """CPUs this process may use (its affinity mask).

    Examples
    --------
    >>> from acme_dask.setup import usable_cores
    >>> usable_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def running_client() -> Any:
    """The dask client this process already has (the default client), or None.

    Examples
    --------
    >>> from acme_dask.setup import running_client
    >>> running_client() is None
    True
    """
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:
        return None
    return client if client.status == "running" else None


def count_online_workers(cluster: Any) -> int:
    """Number of workers connected to ``cluster`` (a dask cluster or client), as ACME.

    Examples
    --------
    >>> from acme_dask import count_online_workers, local_cluster_setup, cluster_cleanup
    >>> client = local_cluster_setup(n_workers=1, interactive=False)
    >>> count_online_workers(client)
    1
    >>> cluster_cleanup(client)
    """
    info = cluster.scheduler_info() if callable(getattr(cluster, "scheduler_info", None)) \
        else cluster.scheduler_info
    return len(info.get("workers", {}))


class _closing_new_clusters:
    """On any exception (Ctrl-C included) inside the block, close every dask cluster that
    was created in it, even one whose constructor never returned."""

    def __enter__(self) -> None:
        from distributed.deploy.spec import SpecCluster

        self._before = set(map(id, SpecCluster._instances))

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        from distributed.deploy.spec import SpecCluster

        for cluster in list(SpecCluster._instances):
            if id(cluster) not in self._before and cluster.status.name not in ("closed", "closing"):
                try:
                    cluster.close(timeout=30)
                except BaseException as err:  # noqa: BLE001 - keep the original error
                    log.debug(f"closing {cluster!r} after {exc!r} failed: {err!r}")


def keep_client(client: Any) -> None:
    """Hold a strong reference to ``client`` until :func:`cluster_cleanup` (ACME's reuse).

    Examples
    --------
    >>> from acme_dask.setup import keep_client, local_cluster_setup, cluster_cleanup
    >>> client = local_cluster_setup(n_workers=1, interactive=False)
    >>> keep_client(client)       # survives losing every other reference
    >>> cluster_cleanup(client)   # forgets it again
    """
    _kept[id(client)] = client


def cluster_config(dashboard: bool, *, local: bool = False) -> Any:
    """dask settings for a cluster acme-dask starts (a context manager; read by the
    scheduler and the nannies when they are made).

    ``dashboard=False`` serves nothing over HTTP: distributed always opens an HTTP port on
    the scheduler and on every worker, and without this its JSON and info pages (workers,
    logs, the call names) answer anyone who reaches the port, e.g. every user of a login
    node on loopback. ``local=True`` (workers on this host, started by nannies; see also
    :func:`local_worker_options`): a task is given up on at the
    first worker that dies under it (``allowed-failures=0``), so acme-core counts the
    call's attempts itself and a call that kills its worker every time fails alone, and a
    worker holds one task per thread (no queued neighbour dies with it).

    Examples
    --------
    >>> import dask
    >>> from acme_dask.setup import cluster_config
    >>> with cluster_config(dashboard=False):
    ...     dask.config.get("distributed.scheduler.http.routes")
    []
    """
    import dask

    # Ctrl-C inside a client call makes distributed cancel that call's future from its event
    # loop, which can fail and log a traceback on the terminal although nothing is wrong
    logging.getLogger("tornado.application").addFilter(_not_interrupted_sync)
    settings: dict[str, Any] = {}
    if not dashboard:
        settings.update({"distributed.scheduler.http.routes": [],
                         "distributed.worker.http.routes": []})
    if local:
        # worker-saturation 1.0: a one-thread worker holds one task, so a worker killed by
        # its call takes no queued neighbour with it
        settings.update({"distributed.scheduler.allowed-failures": 0,
                         "distributed.scheduler.worker-saturation": 1.0})
    return dask.config.set(settings)


def local_worker_options(dashboard: bool) -> dict[str, Any]:
    """Keywords of every nanny of a local cluster acme-dask starts: they are kept in the
    cluster's worker spec, so a nanny the cluster starts again later gets them too (unlike
    settings read from dask's configuration when the cluster was made).

    Examples
    --------
    >>> from acme_dask.setup import local_worker_options
    >>> local_worker_options(dashboard=False)["preload"]
    ['acme_dask.worker']
    """
    import dask

    options: dict[str, Any] = {
        "preload": [*dask.config.get("distributed.worker.preload", []), "acme_dask.worker"]}
    if not dashboard:
        # dotted: the nanny merges this over its dask configuration one key deep
        options["config"] = {"distributed.worker.http.routes": []}
    return options


def check_main_guard(what: str) -> None:
    """Raise :class:`acme_core.mainguard.MainGuardError` before any local worker starts
    when the running script starts them from top-level code outside ``if __name__ ==
    "__main__":``: each spawned worker imports the script again and would start workers too
    (distributed's "Nanny failed to start", hundreds of lines). ``ParallelMap`` checks this
    in its constructor already (backend capability ``imports-main``); this covers
    :func:`local_cluster_setup` called directly.

    Examples
    --------
    >>> from acme_dask.setup import check_main_guard
    >>> check_main_guard("local_cluster_setup")      # under pytest: guarded, nothing raised
    """
    from acme_core.mainguard import MainGuardError, unguarded_call

    found = unguarded_call(sys._getframe(1))
    if found is None:
        return
    path, line = found
    raise MainGuardError(
        f"{what} starts worker processes that import your script {path} again, and its "
        f"line {line} runs outside `if __name__ == \"__main__\":`, so every worker would "
        f"start workers too. Put the code that starts them under "
        f"`if __name__ == \"__main__\":` (functions stay defined above it). Nothing was "
        f"started.")


def _not_interrupted_sync(record: logging.LogRecord) -> bool:
    return "sync.<locals>.cancel" not in record.getMessage()


def local_cluster_setup(n_workers: int | None = None, mem_per_worker: str | None = None,
                        interactive: bool = True, *, threads_per_worker: int = 1,
                        security: bool = True, dashboard: bool = False) -> Any:
    """Start a local dask cluster on loopback and return its client (ACME's helper).

    Parameters
    ----------
    n_workers : int, optional
        Worker processes; default the number of CPUs this process may use.
    mem_per_worker : str, optional
        Memory limit per worker such as ``"2GB"`` (dask's parsing: 2e9 bytes); default dask's.
    interactive : bool
        Ask first whether the calling script guards its code with ``if __name__ ==
        "__main__"`` (ACME's question; default answer no: nothing starts, None is returned).
    threads_per_worker : int
        Threads per worker process (ACME used dask's default; one thread per process keeps
        functions that are not thread-safe, and HDF5 writers, safe).
    security : bool
        True (default, ours): scheduler, workers and client talk TLS with credentials made
        for this cluster and held only in memory (``Security.temporary()``), so no other
        process, and no other user of this host, can connect and run code as you. False:
        plain TCP on loopback (ACME), reachable by every local user.
    dashboard : bool
        Serve dask's dashboard (and its JSON/info pages) on a free loopback port, logged
        once; any local user who finds the port can read it. Default False (ours): nothing
        is served.

    Returns
    -------
    distributed.Client or None
        The new client (the process's default client), or None when the user said no.

    Examples
    --------
    >>> from acme_dask import local_cluster_setup, cluster_cleanup
    >>> client = local_cluster_setup(n_workers=2, mem_per_worker="1GB", interactive=False)
    >>> sorted(w["memory_limit"] for w in client.scheduler_info()["workers"].values())
    [1000000000, 1000000000]
    >>> client.scheduler.address.startswith("tls://127.0.0.1:")
    True
    >>> cluster_cleanup(client)
    """
    _check_bool("interactive", interactive)
    _check_bool("security", security)
    _check_bool("dashboard", dashboard)
    if n_workers is not None:
        n_workers = check_int("n_workers", n_workers, 1)
    if mem_per_worker is not None:
        parse_memory(mem_per_worker)
    if interactive:
        answer = user_input("If launched from a script, did you wrap your code inside a "
                            "__main__ module block? [y/N]", "yn", "n", 60)
        if answer != "y":
            log.info("Local cluster setup aborted: nothing was started.")
            return None
    check_main_guard("local_cluster_setup")
    from distributed import Client, LocalCluster
    from distributed.security import Security

    if n_workers is None:
        n_workers = usable_cores()
    credentials = Security.temporary() if security else None
    with _closing_new_clusters(), cluster_config(dashboard, local=True):
        # port 0: a free port, never distributed's "Port 8787 is already in use" warning
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                               processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                               security=credentials, protocol="tls://" if security else None,
                               memory_limit=mem_per_worker if mem_per_worker is not None
                               else "auto", **local_worker_options(dashboard))
        client = Client(cluster, security=credentials)
    client.acme_dashboard = dashboard
    log.info(f"Local parallel computing client ready, {_dashboard(client)}")
    return client


def _dashboard(client: Any) -> str:
    if not getattr(client, "acme_dashboard", True):
        return "no dashboard (backend_options={'dashboard': True} serves one)"
    try:
        has = "dashboard" in client.scheduler_info().get("services", {})
    except Exception:  # noqa: BLE001
        has = False
    if has:
        return (f"dashboard accessible at {client.dashboard_link} (readable by every user "
                f"who can reach this host's loopback)")
    return "no dashboard"


def cluster_cleanup(client: Any = None) -> None:
    """Stop a dask client, its workers and its cluster (SLURM jobs included), as ACME.

    Parameters
    ----------
    client : distributed.Client, optional
        The client to stop; default the process's default client. Without any client this
        only warns "No dangling clients or clusters found.".

    Examples
    --------
    >>> from acme_dask import cluster_cleanup
    >>> cluster_cleanup()      # nothing running: a warning, no error
    """
    stop_cluster(client, interrupted=False)


def stop_cluster(client: Any, interrupted: bool) -> None:
    """:func:`cluster_cleanup`; ``interrupted=True`` (calls may still be running, e.g. after
    Ctrl-C): local workers are stopped by their nannies at once instead of being asked to
    close, which would wait for their running calls.

    Examples
    --------
    >>> from acme_dask.setup import local_cluster_setup, stop_cluster
    >>> stop_cluster(local_cluster_setup(n_workers=1, interactive=False), interrupted=True)
    """
    from distributed import Client, LocalCluster

    if client is None:
        client = running_client()
        if client is None:
            log.warning("No dangling clients or clusters found.")
            return
    if not isinstance(client, Client):
        raise TypeError(f"`client` has to be a dask client object, not {type(client).__name__}.")
    cluster = client.cluster
    try:
        n = count_online_workers(cluster if cluster is not None else client)
    except Exception:  # noqa: BLE001 - only for the message
        n = 0
    address = getattr(client.scheduler, "address", "?")
    if isinstance(cluster, LocalCluster):
        what = f"LocalCluster hosted on {address}"
    else:
        what = f"cluster {getattr(cluster, 'job_name', None) or address}"
    _kept.pop(id(client), None)
    if cluster is not None and not (interrupted and isinstance(cluster, LocalCluster)):
        _close_workers_first(client)
    nanny_log = logging.getLogger("distributed.nanny")
    if interrupted:   # killing workers that still run calls is the point here, not news
        nanny_log.addFilter(_not_still_alive)
    try:
        client.shutdown()
    except Exception as exc:  # noqa: BLE001 - the scheduler may be gone already
        log.debug(f"client.shutdown() failed ({exc!r}); closing the client and its cluster")
        client.close()
        if cluster is not None:
            cluster.close()
    finally:
        nanny_log.removeFilter(_not_still_alive)
    log.info(f"Successfully shut down {what} containing {n} workers")


def _not_still_alive(record: logging.LogRecord) -> bool:
    return "still alive after" not in record.getMessage()


def _close_workers_first(client: Any, timeout: float = 10.0) -> None:
    """Ask every worker (and its nanny) to exit, and wait until they have left.

    A local worker asked to close by its nanny at shutdown gets 4 s before the nanny kills
    it with a warning ("Worker process still alive after 4.0 seconds, killing"), which a
    busy machine can exceed at the normal end of a run; a worker that closes itself is
    waited for.

    Cancelling a SLURM job sends SIGTERM to its processes in no particular order: when the
    worker gets it before its nanny, the nanny starts a new worker, the job's shell dies and
    the nanny is orphaned (without cgroups SLURM loses track of it) until dask's death
    timeout. Workers that close themselves end their jobs cleanly, so the cancellation
    that follows finds nothing left to signal.
    """
    def close_all(dask_scheduler: Any) -> int:
        for address in list(dask_scheduler.workers):
            dask_scheduler.close_worker(address)
        return len(dask_scheduler.workers)

    try:
        if not client.run_on_scheduler(close_all):
            return
        deadline = time.monotonic() + timeout
        while client.scheduler_info().get("workers") and time.monotonic() < deadline:
            time.sleep(0.1)
    except Exception as exc:  # noqa: BLE001 - the scheduler may be gone already
        log.debug(f"closing the workers before their jobs failed: {exc!r}")


# ---------------------------------------------------------------------------------- SLURM
def import_jobqueue() -> Any:
    """Import ``dask_jobqueue`` without letting it take over Ctrl-C.

    dask-jobqueue 0.9 runs ``signal.signal(SIGINT, lambda *_: sys.exit())`` when imported
    (for its runner CLI), which turns Ctrl-C into a silent exit with status 0 and, from any
    thread but the main one, makes the import fail. The handler is not installed here.

    Examples
    --------
    >>> import signal
    >>> from acme_dask.setup import import_jobqueue
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
    >>> from acme_dask.setup import default_log_directory
    >>> "acme_slurm_logs" in default_log_directory()
    True
    """
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return os.path.join(os.path.expanduser("~"), "acme_slurm_logs", f"{current_user()}_{stamp}")


def current_user() -> str:
    """The login name (the uid where there is none), used in job names and log folders.

    Examples
    --------
    >>> from acme_dask.setup import current_user
    >>> isinstance(current_user(), str)
    True
    """
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return str(os.getuid())


def private_directory(base: str | None = None) -> str:
    """A new directory only its owner can enter (0700), for one run's TLS credentials.

    Default ``base``: ``~/.acme_dask`` (shared with the compute nodes on a SLURM cluster).

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> from acme_dask.setup import private_directory
    >>> d = private_directory(tempfile.gettempdir())
    >>> oct(os.stat(d).st_mode & 0o777)
    '0o700'
    >>> shutil.rmtree(d)
    """
    base = os.path.expanduser(base or os.path.join("~", ".acme_dask"))
    os.makedirs(base, mode=0o700, exist_ok=True)
    _remove_stale_directories(base)
    folder = tempfile.mkdtemp(prefix="tls-", dir=base)
    with open(os.path.join(folder, OWNER_FILE), "w") as fh:
        fh.write(f"{socket.gethostname()} {os.getpid()}\n")
    return folder


#: Written into every credentials folder: the host and process that own it.
OWNER_FILE = "owner"


def _remove_stale_directories(base: str) -> None:
    """Delete credentials folders left by processes of this host that died without cleaning
    up (SIGKILL, a lost session); folders of other hosts and of live processes are kept."""
    here = socket.gethostname()
    for name in os.listdir(base):
        folder = os.path.join(base, name)
        try:
            with open(os.path.join(folder, OWNER_FILE)) as fh:
                host, pid = fh.read().split()
        except (OSError, ValueError):
            continue
        if host != here:
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            log.debug(f"removed stale TLS credentials {folder} of dead process {pid}")
        except (PermissionError, ValueError):
            continue


def check_job_extra(job_extra: Any) -> list[str]:
    """ACME's ``job_extra`` check: a list of sbatch options, each starting with ``-``.

    Examples
    --------
    >>> from acme_dask.setup import check_job_extra
    >>> check_job_extra(["--exclusive"])
    ['--exclusive']
    """
    if not isinstance(job_extra, list):
        raise TypeError(f"`job_extra` has to be a list, not {type(job_extra).__name__}.")
    for item in job_extra:
        if not isinstance(item, str):
            raise TypeError(f"`job_extra` has to be a list of strings, found {item!r}.")
        if not item.startswith("-"):
            raise ValueError(f"`job_extra` entries have to be sbatch options starting with "
                             f"'-', not {item!r}.")
    return list(job_extra)


def _output_directory(job_extra: list[str]) -> str | None:
    for item in job_extra:
        if item.startswith(("--output", "-o")):
            path = item.split("=", 1)[1] if "=" in item else ""
            folder = os.path.dirname(path)
            if not item.startswith("--output=") or not folder or not os.path.isdir(folder):
                raise ValueError(f"`job_extra` option {item!r} has to be of the form "
                                 f"'--output=/existing/folder/file'.")
            return folder
    return None


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
    _check_bool("interactive", interactive)
    _check_bool("start_client", start_client)
    _check_bool("dashboard", dashboard)
    n_cores = check_int("n_cores", n_cores, 1)
    n_workers = check_int("n_workers", n_workers, 1)
    processes_per_worker = check_int("processes_per_worker", processes_per_worker, 1)
    n_workers_startup = check_int("n_workers_startup", n_workers_startup, 0)
    mem_cushion = check_int("mem_cushion", mem_cushion, 0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"`timeout` has to be a number of seconds >= 1, not {timeout!r}.")
    if timeout < 1:
        raise ValueError(f"`timeout` has to be a number of seconds between 1 and inf, not {timeout!r}.")
    if isinstance(interactive_wait, bool) or not isinstance(interactive_wait, (int, float)) \
            or interactive_wait < 0:
        raise ValueError(f"`interactive_wait` has to be a number of seconds >= 0, not "
                         f"{interactive_wait!r}.")
    job_extra = check_job_extra([] if job_extra is None else job_extra)
    output_folder = _output_directory(job_extra)
    if mem_per_worker is not None and mem_per_worker != "auto":
        requested_mb: int | None = parse_memory(mem_per_worker)
    else:
        requested_mb = None

    if reuse:
        client = running_client()
        if client is not None:
            if count_online_workers(client) > 0:
                log.info(f"Attaching to parallel computing client {client}")
                return client if start_client else client.cluster
            log.info(f"Shutting down the running client {client}: it has no workers.")
            cluster_cleanup(client)

    # ---- partition and memory: sinfo and scontrol only
    partitions, default = get_slurm_partitions() if not avail_partitions else \
        (list(avail_partitions), None)
    if partition == "auto":
        if default is None:
            raise ValueError("`partition='auto'` means the cluster's default partition, but "
                             f"this cluster has none; available SLURM partitions are "
                             f"{_listing(partitions, invalid_partitions)}")
        partition = default
        log.info(f"Using the cluster's default SLURM partition {partition}")
    if not isinstance(partition, str) or partition not in partitions:
        raise ValueError(f"Invalid partition selection {partition}, available SLURM partitions "
                         f"are {_listing(partitions, invalid_partitions)}")
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

    # ---- files: job output, TLS credentials
    if log_directory is None:
        log_directory = default_log_directory()
    os.makedirs(log_directory, exist_ok=True)
    own_tmp = None
    protocol = None
    if security is True:
        from distributed.security import Security

        security = Security.temporary()
        if shared_temp_directory is None:
            shared_temp_directory = own_tmp = private_directory()
    elif security is False or security is None:
        security = None
        log.warning("TLS is switched off: any process that reaches the scheduler's port can "
                    "run code on your workers.")
    if security is not None:
        protocol = "tls://"
    # port 0: a free port, never distributed's "Port 8787 is already in use" warning
    options = {"dashboard_address": "127.0.0.1:0"}
    options.update(scheduler_options or {})
    if job_name is None:
        job_name = f"acme_{current_user()}_{dt.datetime.now():%H%M%S}"

    SLURMCluster = import_jobqueue().SLURMCluster  # noqa: N806 - a class

    log.info(f"Starting {n_workers} SLURM worker(s) in partition {partition} with "
             f"{n_cores} core(s) and {mem_mb}MB each; job output goes to {log_directory}")
    try:
        with _closing_new_clusters(), cluster_config(dashboard):
            cluster = SLURMCluster(
                cores=n_cores, job_cpu=n_cores, memory=f"{mem_mb}MiB", job_mem=f"{mem_mb}M",
                processes=processes_per_worker, queue=partition, python=sys.executable,
                walltime=walltime, job_directives_skip=[] if walltime else ["#SBATCH -t "],
                job_extra_directives=job_extra, worker_extra_args=list(worker_extra_args or []),
                scheduler_options=options, interface=interface, security=security,
                protocol=protocol, shared_temp_directory=shared_temp_directory,
                log_directory=None if output_folder else log_directory, name=job_name,
                job_name=job_name, local_directory=output_folder, silence_logs="error",
                death_timeout=WORKER_DEATH_TIMEOUT,
                job_script_prologue=[] if dashboard else [_NO_WORKER_HTTP])
            if own_tmp is not None:
                remove_credentials_with(cluster, own_tmp)
            cluster.scale(n_workers)
            online = wait_for_workers(cluster, n_workers, n_workers_startup, timeout,
                                      interactive, interactive_wait)
            if online is None:
                log.info("SLURM cluster setup aborted: every job is cancelled.")
                cluster.close()
                return None
            if not start_client:
                return cluster
            from distributed import Client

            client = Client(cluster, security=security)
            client.acme_dashboard = dashboard
    except BaseException:
        if own_tmp is not None:
            shutil.rmtree(own_tmp, ignore_errors=True)
        raise
    log.info(f"Parallel computing client ready, {_dashboard(client)}")
    return client


#: Seconds a SLURM worker (and its nanny) keeps trying to reach a scheduler that is gone
#: (the parent was SIGKILLed) before its job ends (dask-jobqueue's default: 60).
WORKER_DEATH_TIMEOUT = 10

#: Job script line: the workers of a SLURM job serve nothing over HTTP (see cluster_config).
_NO_WORKER_HTTP = "export DASK_DISTRIBUTED__WORKER__HTTP__ROUTES='[]'"


def _drop_credentials(files: list[Any], folder: str) -> None:
    for handle in files:
        with contextlib.suppress(OSError):
            handle.close()            # a NamedTemporaryFile: closing deletes it
    shutil.rmtree(folder, ignore_errors=True)


def remove_credentials_with(cluster: Any, folder: str) -> None:
    """Delete ``folder`` (the cluster's TLS credentials) once ``cluster`` is gone.

    dask-jobqueue writes the worker credentials as temporary files it deletes when they are
    garbage collected; closing them here first keeps the two from racing.

    Examples
    --------
    >>> from acme_dask.setup import remove_credentials_with
    >>> remove_credentials_with(cluster, folder)     # doctest: +SKIP
    """
    files = [getattr(cluster, f"_job_{key}") for key in ("ca_file", "cert", "key")
             if hasattr(cluster, f"_job_{key}")]
    weakref.finalize(cluster, _drop_credentials, files, folder)


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
    >>> from acme_dask.setup import wait_for_workers
    >>> cluster.scale(4)                                              # doctest: +SKIP
    >>> wait_for_workers(cluster, 4, 1, timeout=60, interactive=False,
    ...                  interactive_wait=10)                         # doctest: +SKIP
    4
    """
    interactive = interactive and sys.stdin is not None and sys.stdin.isatty()
    start = time.monotonic()
    deadline = start + timeout
    bar = _SetupBar(n_workers)
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
                        answer = user_input(
                            f"SLURM workers could not be started within given time-out interval "
                            f"of {timeout:g} seconds. Do you want to [k]eep waiting for "
                            f"{KEEP_WAITING:g}s, [a]bort or [c]ontinue with {online} workers?",
                            "kac", "c", interactive_wait)
                    else:
                        answer = user_input(
                            f"SLURM workers could not be started within given time-out interval "
                            f"of {timeout:g} seconds. Do you want to [k]eep waiting for "
                            f"{KEEP_WAITING:g}s or [a]bort?", "ka", "a", KEEP_WAITING)
                    if answer == "k":
                        deadline = time.monotonic() + KEEP_WAITING
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


class _SetupBar:
    """The start-up bar on a terminal: workers online and the seconds left until the
    time-out (a countdown, not a clock time that reads like a past moment)."""

    def __init__(self, total: int) -> None:
        self._bar = None
        if sys.stderr is not None and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, file=sys.stderr,
                             desc="<slurm_cluster_setup> SLURM workers ready",
                             bar_format="{desc}: {n}/{total} [elapsed {elapsed}, {postfix}]")

    def show(self, online: int, left: float) -> None:
        if self._bar is None:
            return
        if online != self._bar.n:
            self._bar.update(online - self._bar.n)
        self._bar.set_postfix_str(f"time-out in {max(0.0, left):.0f} s", refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
