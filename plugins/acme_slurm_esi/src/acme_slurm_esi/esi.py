"""The ESI HPC cluster (Ernst Strüngmann Institute, Frankfurt): backend ``"slurm-esi"`` and
ACME's ``esi_cluster_setup``.

This is the only module that knows ESI. A sibling for another site is a copy of this file
with the :class:`~acme_slurm_esi.site.Site` record, the setup function's name and its
defaults edited (see the README).
"""

from __future__ import annotations

from typing import Any

from acme_dask.plugin import slurm_executor_spec

from acme_core import AutoClaim, ExecutorSpec, hookimpl
from acme_core.executor import ExecutorSettings

from .site import SITE_OPTIONS, Site, site_cluster_setup

#: ESI's presets (ACME 2026.6: its ``esi_cluster_setup`` defaults and partitions).
ESI = Site(
    name="ESI",
    backend="slurm-esi",
    setup_name="esi_cluster_setup",
    node_env="ACME_SLURM_ESI_NODE",
    hostname_prefix="esi-sv",
    marker_path="/cs",
    invalid_partitions=("PREPO", "ESI"),
    # partition="auto" picks among the short-runtime <N>GBS partitions; POWER hosts use E880
    auto_partitions={"x86_64": r"^\d+GBS$", "ppc64le": r"^E880$"},
    partition_arch={r"^E880$": "ppc64le"},
    default_arch="x86_64",
    arch_hint="Start x86_64 workers from esi-svhpc{1,2,3} and POWER workers from the hub.",
    log_template="/cs/slurm/{user}/{user}_{stamp}/slurm-%j.out",
    n_workers=2,
    timeout=60,
    interactive_wait=120,
    mem_cushion=100,
    min_mem_per_cpu=1000,
    cores_rounding="floor",
    foreign_default_mem={"ppc64le": 16000},
)


def esi_cluster_setup(partition: str, n_workers: int = 2, mem_per_worker: str = "auto",
                      cores_per_worker: int | None = None, n_workers_startup: int = 1,
                      timeout: float = 60, interactive: bool = True,
                      interactive_wait: float = 120, start_client: bool = True,
                      job_extra: list[str] | None = None, mem_cushion: int = 100,
                      **kwargs: Any) -> Any:
    """Start dask workers as SLURM jobs on the ESI HPC cluster (ACME's parameters).

    Parameters
    ----------
    partition : str
        Required: a partition from ``sinfo`` (``"8GBXS"``, ``"16GBS"``, ...), or ``"auto"``
        together with ``mem_per_worker="estimate_memuse:<GB>"`` (what ``ParallelMap`` does
        after measuring calls): the smallest ``<N>GBS`` partition with at least the estimate
        + 20% per job.
    n_workers : int
        SLURM jobs (one dask worker each) to start.
    mem_per_worker : str
        ``"auto"``: the partition's memory per CPU times the cores (minus ``mem_cushion``);
        else ``"4GB"`` / ``"1500MB"``, capped with a warning at the partition's limit.
    cores_per_worker : int, optional
        CPUs per job; default the memory per worker over the partition's ``DefMemPerCPU``
        (at least 1000 MB), at least 1: ``"20GB"`` in ``8GBS`` means 2 cores.
    n_workers_startup, timeout, interactive, interactive_wait, start_client
        As :func:`acme_dask.slurm_cluster_setup`.
    job_extra : list of str, optional
        Extra ``#SBATCH`` options. Without an ``--output=`` here, job output goes to
        ``/cs/slurm/<user>/<user>_<YYYYmmdd-HHMMSS>/slurm-%j.out`` on an ESI node, and
        elsewhere where acme-dask puts it.
    mem_cushion : int
        MB kept free below the partition's limit.
    **kwargs
        ``processes_per_worker`` and acme-dask's keywords (``walltime``, ``interface``,
        ``security``, ``log_directory``, ``job_name``, ...).

    Returns
    -------
    distributed.Client or dask_jobqueue.SLURMCluster or None
        A running client is returned as it is (ACME). Without SLURM: asked (interactive), or
        a local client (``interactive=False``, with a warning).

    Raises
    ------
    ValueError
        An unknown partition ("Invalid partition selection ..., available SLURM partitions
        are ..."), or one whose nodes' architecture differs from this host's.
    OSError
        ``partition="auto"`` without an estimate; SLURM missing and the user said no.

    Examples
    --------
    >>> from acme_dask import cluster_cleanup
    >>> from acme_slurm_esi import esi_cluster_setup
    >>> client = esi_cluster_setup("8GBXS", n_workers=2, interactive=False)  # doctest: +SKIP
    >>> cluster_cleanup(client)                                             # doctest: +SKIP
    """
    return site_cluster_setup(
        ESI, partition, n_workers=n_workers, mem_per_worker=mem_per_worker,
        cores_per_worker=cores_per_worker, n_workers_startup=n_workers_startup,
        timeout=timeout, interactive=interactive, interactive_wait=interactive_wait,
        start_client=start_client, job_extra=job_extra, mem_cushion=mem_cushion, **kwargs)


# ---------------------------------------------------------------------------------- hooks
@hookimpl
def acme_core_executors() -> list[ExecutorSpec]:
    """Backend ``"slurm-esi"``.

    Examples
    --------
    >>> from acme_slurm_esi.esi import acme_core_executors
    >>> [spec.name for spec in acme_core_executors()]
    ['slurm-esi']
    """
    return [slurm_executor_spec(
        ESI.backend, _esi_executor,
        "dask workers as SLURM jobs on the ESI HPC cluster (ACME's presets, partition='auto' "
        "from measured memory)", SITE_OPTIONS, _check_esi_partition)]


# The backend's factory and check import the executor only when "slurm-esi" is used:
# acme-core loads this module for every ParallelMap.
def _esi_executor(settings: ExecutorSettings) -> Any:
    from .executor import site_executor

    return site_executor(settings, site=ESI)


def _check_esi_partition(settings: ExecutorSettings) -> None:
    from .executor import check_site_partition

    check_site_partition(settings, site=ESI)


@hookimpl
def acme_core_claim_auto() -> AutoClaim | None:
    """``backend="auto"`` means ``"slurm-esi"`` on an ESI node (``ACME_SLURM_ESI_NODE``:
    ``1`` forces the claim, ``0`` forbids it).

    Examples
    --------
    >>> import os
    >>> from acme_slurm_esi.esi import acme_core_claim_auto
    >>> os.environ.get("ACME_SLURM_ESI_NODE") is not None or acme_core_claim_auto() is None
    True
    """
    return ESI.claim()
