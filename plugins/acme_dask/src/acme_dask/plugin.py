"""acme-core hook implementations of acme-dask (the entry point ``dask``)."""

from __future__ import annotations

import sys
from typing import Any

from acme_core import AutoClaim, ExecutorSpec, hookimpl
from acme_core.executor import ExecutorSettings


@hookimpl
def acme_core_executors() -> list[ExecutorSpec]:
    """Backends ``"dask"`` and ``"slurm"``."""
    from .executor import DASK_OPTIONS, SLURM_OPTIONS, DaskExecutor, SlurmExecutor

    return [
        ExecutorSpec(
            name="dask",
            factory=DaskExecutor,
            description="the running dask client, or a local dask cluster on loopback",
            needs_pickle=True,
            parameters=("n_workers", "mem_per_worker", "setup_timeout", "stop_client"),
            options=DASK_OPTIONS,
            # a local cluster's nannies spawn workers that import the __main__ script again
            capabilities=frozenset({"processes", "kill-worker", "cancel", "imports-main",
                                    "timeout"}),
        ),
        slurm_executor_spec("slurm", SlurmExecutor,
                            "dask workers as SLURM jobs on any SLURM (dask-jobqueue, TLS)",
                            SLURM_OPTIONS, check_partition),
    ]


def slurm_executor_spec(name: str, factory: Any, description: str, options: dict[str, str],
                        check: Any) -> ExecutorSpec:
    """The :class:`~acme_core.ExecutorSpec` of a backend built on acme-dask's SLURM executor
    (``"slurm"``, and site backends such as acme-slurm-esi's ``"slurm-esi"``): the backend
    parameters it takes and what it can do are the executor's, so they are stated once.

    Examples
    --------
    >>> from acme_dask.executor import SLURM_OPTIONS, SlurmExecutor
    >>> from acme_dask.plugin import check_partition, slurm_executor_spec
    >>> spec = slurm_executor_spec("slurm-x", SlurmExecutor, "SLURM at site X",
    ...                            SLURM_OPTIONS, check_partition)
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
