"""dask clients acme-dask starts, attaches to and stops: ``local_cluster_setup``,
``cluster_cleanup`` and what the SLURM setup shares with them (the dask settings of a new
cluster, the client kept for the next run, closing clusters a Ctrl-C left half made)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from acme_core.resources import usable_cores

from .checks import check_bool, check_int
from .prompts import user_input
from .slurm import parse_memory

log = logging.getLogger("acme_dask")

#: Clients started with ``stop_client=False``: a strong reference keeps them (and their
#: clusters) alive for the next ParallelMap, since distributed only holds them weakly.
_kept: dict[int, Any] = {}


def running_client() -> Any:
    """The dask client this process already has (the default client), or None.

    Examples
    --------
    >>> from acme_dask.clients import running_client
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

class closing_new_clusters:
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
                release_reaper(cluster)

def keep_client(client: Any) -> None:
    """Hold a strong reference to ``client`` until :func:`cluster_cleanup` (ACME's reuse).

    Examples
    --------
    >>> from acme_dask.clients import keep_client, local_cluster_setup, cluster_cleanup
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
    >>> from acme_dask.clients import cluster_config
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
    >>> from acme_dask.clients import local_worker_options
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
    >>> from acme_dask.clients import check_main_guard
    >>> check_main_guard("local_cluster_setup")      # under pytest: guarded, nothing raised
    """
    from acme_core import mainguard

    mainguard.check_main_guard(starter=what, started="them")


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
    check_bool("interactive", interactive)
    check_bool("security", security)
    check_bool("dashboard", dashboard)
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
    with closing_new_clusters(), cluster_config(dashboard, local=True):
        # port 0: a free port, never distributed's "Port 8787 is already in use" warning
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                               processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                               security=credentials, protocol="tls://" if security else None,
                               memory_limit=mem_per_worker if mem_per_worker is not None
                               else "auto", **local_worker_options(dashboard))
        client = Client(cluster, security=credentials)
    client.acme_dashboard = dashboard
    log.info(f"Local parallel computing client ready, {dashboard_note(client)}")
    return client

def dashboard_note(client: Any) -> str:
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
    >>> from acme_dask.clients import local_cluster_setup, stop_cluster
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
        release_reaper(cluster)
    log.info(f"Successfully shut down {what} containing {n} workers")


def release_reaper(cluster: Any) -> None:
    """``cluster`` is closed: the reaper that would cancel its SLURM jobs should this
    process die exits (see :func:`acme_dask.slurm_cluster.reaped_job_class`).

    Examples
    --------
    >>> from acme_dask.clients import release_reaper
    >>> release_reaper(None)        # no cluster, or one without a reaper: nothing to do
    """
    reaper = getattr(cluster, "acme_reaper", None)
    if reaper is not None:
        reaper.close()

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
