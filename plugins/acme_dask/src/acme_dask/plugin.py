"""acme-core hook implementations of acme-dask (the entry point ``dask``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from acme_core import AutoClaim, ExecutorSpec, hookimpl
from acme_core.executor import ExecutorSettings

# The backends' ``backend_options``. Here, not in the executor's module: loading the plugin
# imports neither dask nor the executor (the specs name their factories as strings).
_HEARTBEAT = ("seconds without a heartbeat before a stopped or hung worker is killed and its "
              "calls run elsewhere (default 120)")
DASK_OPTIONS = {
    "threads_per_worker": "threads per local worker process (default 1)",
    "heartbeat_timeout": _HEARTBEAT,
    "dashboard": "True: serve dask's dashboard on a free loopback port and log its link "
                 "(readable by every local user); default False: no dashboard",
}
SLURM_OPTIONS = {
    "cores": "CPUs per SLURM job, i.e. per worker (default 1)",
    "processes": "dask worker processes per SLURM job (default 1)",
    "walltime": "--time of every job, e.g. '02:00:00' (default: the partition's default)",
    "job_extra": "extra #SBATCH options, a list such as ['--account=lab', '--qos=short']",
    "interface": "network interface of scheduler and workers, e.g. 'ib0' (default: dask's)",
    "security": "True (default): TLS with credentials made for this run; False: plain TCP "
                "(trusted networks only); or a distributed Security object",
    "log_directory": "folder of the jobs' output (default: <output_dir>/logs, or "
                     "~/acme_slurm_logs/<user>_<timestamp> for in-memory runs)",
    "shared_temp_directory": "folder readable on the compute nodes for the TLS credentials "
                             "(default: a private folder under ~/.acme_dask, removed after)",
    "job_name": "SLURM job name (default acme_<user>_<HHMMSS>)",
    "mem_cushion": "MB kept free below the partition's memory limit (default 100)",
    "max_workers": "upper bound of n_workers='auto' (default 64)",
    "heartbeat_timeout": _HEARTBEAT,
    "dashboard": "True: serve dask's dashboard on a free loopback port of this host and log "
                 "its link (readable by every user of this host); default False: none",
}


@hookimpl
def acme_core_executors() -> list[ExecutorSpec]:
    """Backends ``"dask"`` and ``"slurm"``."""
    return [
        ExecutorSpec(
            name="dask",
            factory="acme_dask.executor:DaskExecutor",
            description="the running dask client, or a local dask cluster on loopback",
            needs_pickle=True,
            parameters=("n_workers", "mem_per_worker", "setup_timeout", "stop_client"),
            options=DASK_OPTIONS,
            # a local cluster's nannies spawn workers that import the __main__ script again
            capabilities=frozenset({"processes", "kill-worker", "cancel", "imports-main",
                                    "timeout"}),
        ),
        slurm_executor_spec("slurm", "acme_dask.executor:SlurmExecutor",
                            "dask workers as SLURM jobs on any SLURM (dask-jobqueue, TLS)",
                            SLURM_OPTIONS, check_partition),
    ]


def slurm_executor_spec(name: str, factory: Any, description: str, options: Mapping[str, str],
                        check: Any) -> ExecutorSpec:
    """The :class:`~acme_core.ExecutorSpec` of a backend built on acme-dask's SLURM executor
    (``"slurm"``, and site backends such as acme-slurm-esi's ``"slurm-esi"``): the backend
    parameters it takes and what it can do are the executor's, so they are stated once.

    Examples
    --------
    >>> from acme_dask.plugin import SLURM_OPTIONS, check_partition, slurm_executor_spec
    >>> spec = slurm_executor_spec("slurm-x", "acme_dask.executor:SlurmExecutor",
    ...                            "SLURM at site X", SLURM_OPTIONS, check_partition)
    >>> spec.name, "timeout" in spec.capabilities
    ('slurm-x', True)
    """
    return ExecutorSpec(
        name=name, factory=factory, description=description, needs_pickle=True,
        parameters=("partition", "n_workers", "mem_per_worker", "setup_timeout",
                    "setup_interactive", "stop_client"),
        options=options,
        capabilities=frozenset({"processes", "kill-worker", "cancel", "slurm", "timeout"}),
        check=check)


@hookimpl
def acme_core_claim_auto() -> AutoClaim | None:
    """``backend="auto"`` means ``"dask"`` while this process has a running dask client.

    Cheap: without ``distributed`` imported there can be no client, and nothing is imported.

    Examples
    --------
    >>> from acme_dask.plugin import acme_core_claim_auto
    >>> acme_core_claim_auto() is None
    True
    """
    if "distributed" not in sys.modules:
        return None
    from .clients import running_client

    client = running_client()
    if client is None:
        return None
    return AutoClaim(backend="dask", priority=200, reason=f"a dask client is running: {client}")


def check_partition(settings: ExecutorSettings) -> None:
    """Backend ``"slurm"``: ``partition=`` is one of the cluster's (one cached ``sinfo``),
    checked when the ParallelMap is made.

    Nothing is checked for ``partition="auto"``, while a dask client is running (its
    workers are used, the partition is ignored), or when ``sinfo`` cannot answer (the run
    then reports that when it starts).

    Examples
    --------
    >>> from acme_core.executor import ExecutorSettings
    >>> from acme_dask.plugin import check_partition
    >>> check_partition(ExecutorSettings(partition="NOPE"))      # doctest: +SKIP
    Traceback (most recent call last):
    ValueError: Invalid partition selection NOPE, available SLURM partitions are '8GBXS', ...
    """
    from .clients import running_client
    from .slurm import known_partitions

    partition = settings.partition
    if partition == "auto" or running_client() is not None:
        return
    try:
        partitions, _ = known_partitions()
    except OSError:
        return
    if partition not in partitions:
        shown = ", ".join(f"'{p}'" for p in partitions)
        raise ValueError(f"Invalid partition selection {partition}, available SLURM partitions "
                         f"are {shown}")
