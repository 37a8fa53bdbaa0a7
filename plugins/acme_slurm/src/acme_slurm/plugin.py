"""acme-core hook implementations of acme-slurm (the entry point ``slurm-array``)."""

from __future__ import annotations

from acme_core import ExecutorSpec, hookimpl

#: ``backend_options`` of ``"slurm-array"`` (validated by :mod:`acme_slurm.options`). Here,
#: not there: loading the plugin imports neither the executor nor the validation.
OPTIONS = {
    "max_jobs": "array tasks running at once (sbatch --array=...%N); default n_workers when it "
                "is a number, else no throttle",
    "task_minutes": "minutes of work each array task should get (default 10)",
    "calls_per_task": "a fixed number of calls per task instead of sizing from measured time",
    "walltime": "time limit of each task, 'HH:MM:SS' or minutes (default: twice task_minutes "
                "+ 5 min, more for long chunks, within the partition's MaxTime)",
    "cores": "CPUs per task (default 1)",
    "poll_interval": "seconds between the run's squeue queries (one query for all tasks; "
                     "default 10)",
    "probe_wait": "seconds a pilot task may run without a result before its running time "
                  "counts as the call time (default 60)",
    "on_interrupt": "Ctrl-C, SIGTERM or the death of this process (SIGKILL, OOM): "
                    "'cancel' the run's tasks (default) or 'detach' (leave them running; a "
                    "re-run with the same output_dir collects them)",
    "job_name": "SLURM job name of the arrays (default 'acme-array')",
    "job_extra": "extra sbatch options, e.g. ['--account=lab']",
    "work_dir": "shared folder for the state of in-memory runs (default ~/.acme_slurm)",
    "policy": "an acme_slurm.EscalationPolicy: what a call gets after its task died",
    "site": "a site profile (acme_slurm.SiteProfile) whose defaults the run uses",
}


@hookimpl
def acme_core_executors() -> list[ExecutorSpec]:
    """Backend ``"slurm-array"``.

    Examples
    --------
    >>> from acme_slurm.plugin import acme_core_executors
    >>> [spec.name for spec in acme_core_executors()]
    ['slurm-array']
    """
    return [ExecutorSpec(
        name="slurm-array",
        factory="acme_slurm.executor:ArrayExecutor",
        description="SLURM job arrays: no scheduler, no open port; can outlive its caller, "
                    "knows why a task died and asks for what it needs",
        needs_pickle=True,
        parameters=("partition", "n_workers", "mem_per_worker"),
        options=OPTIONS,
        capabilities=frozenset({"processes", "kill-worker", "cancel", "slurm", "timeout"}),
    )]
