"""acme-core hook implementations of acme-slurm (the entry point ``slurm-array``)."""

from __future__ import annotations

from acme_core import ExecutorSpec, hookimpl


@hookimpl
def acme_core_executors() -> list[ExecutorSpec]:
    """Backend ``"slurm-array"``.

    Examples
    --------
    >>> from acme_slurm.plugin import acme_core_executors
    >>> [spec.name for spec in acme_core_executors()]
    ['slurm-array']
    """
    from .executor import ArrayExecutor
    from .options import OPTIONS

    return [ExecutorSpec(
        name="slurm-array",
        factory=ArrayExecutor,
        description="SLURM job arrays: no scheduler, no open port; can outlive its caller, "
                    "knows why a task died and asks for what it needs",
        needs_pickle=True,
        parameters=("partition", "n_workers", "mem_per_worker"),
        options=OPTIONS,
        capabilities=frozenset({"processes", "kill-worker", "cancel", "slurm", "timeout"}),
    )]
