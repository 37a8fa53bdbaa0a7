"""``backend_options`` of ``"slurm-array"``: checked at ``ParallelMap(...)``, before any job."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from acme_core.executor import ExecutorSettings

from . import slurmctl
from .escalation import EscalationPolicy, Request


def _positive(name: str, value: Any, integer: bool = False) -> Any:
    ok = (not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
          and 0 < value < math.inf)
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"backend_options[{name!r}] has to be {kind} > 0, not {value!r}.")
    return value


def _walltime(value: Any) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(math.ceil(value))
    if isinstance(value, str):
        found = slurmctl.minutes(value)
        if found:
            return found
    raise ValueError(f"backend_options['walltime'] has to be 'HH:MM:SS', 'D-HH:MM:SS' or "
                     f"minutes > 0, not {value!r}.")


def _memory_mb(value: str) -> int | None:
    """ACME's ``mem_per_worker`` (``"4GB"``: 4000 MB, ``"1500MB"``) in MB; None for auto."""
    if value == "auto":
        return None
    text = value.strip().upper() if isinstance(value, str) else ""
    for unit, factor in (("GB", 1000), ("MB", 1)):
        if text.endswith(unit):
            try:
                number = float(text[:-2])
            except ValueError:
                break
            if number > 0:
                return int(round(number * factor))
    raise ValueError(f"`mem_per_worker` has to be 'auto' or a memory such as '4GB' or "
                     f"'1500MB', not {value!r}.")


@dataclass(frozen=True)
class ArrayOptions:
    """The backend's settings, validated (see ``acme_slurm.plugin.OPTIONS``).

    Examples
    --------
    >>> from acme_core.executor import ExecutorSettings
    >>> from acme_slurm.options import ArrayOptions
    >>> ArrayOptions.from_settings(ExecutorSettings(n_workers=4)).max_jobs
    4
    """

    partition: str = "auto"
    mem_mb: int | None = None
    max_jobs: int | None = None
    task_minutes: float = 10.0
    calls_per_task: int | None = None
    walltime: int | None = None
    cores: int = 1
    poll_interval: float = 10.0
    probe_wait: float = 60.0
    on_interrupt: str = "cancel"
    job_name: str = "acme-array"
    job_extra: tuple[str, ...] = ()
    work_dir: str = field(default_factory=lambda: os.path.expanduser("~/.acme_slurm"))
    policy: EscalationPolicy = field(default_factory=EscalationPolicy)
    site: Any = None

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> ArrayOptions:
        """Check ``settings`` and ``backend_options``; a bad value raises ValueError naming it."""
        o = dict(settings.options)
        site = o.get("site")
        if site is not None:
            o = {**site.array_defaults(), **o}
        n = settings.n_workers
        max_jobs = o.get("max_jobs", n if n != "auto" else None)
        if max_jobs is not None:
            _positive("max_jobs", max_jobs, integer=True)
        interrupt = o.get("on_interrupt", "cancel")
        if interrupt not in ("cancel", "detach"):
            raise ValueError(f"backend_options['on_interrupt'] has to be 'cancel' or 'detach', "
                             f"not {interrupt!r}.")
        extra = o.get("job_extra", ())
        if isinstance(extra, str) or not all(isinstance(e, str) for e in extra):
            raise ValueError(f"backend_options['job_extra'] has to be a list of sbatch options "
                             f"such as ['--account=lab'], not {extra!r}.")
        policy = o.get("policy", EscalationPolicy())
        if not hasattr(policy, "next_request") or not hasattr(policy, "max_attempts"):
            raise ValueError(f"backend_options['policy'] has to be an acme_slurm."
                             f"EscalationPolicy (or have its next_request and max_attempts), "
                             f"not {policy!r}.")
        cpt = o.get("calls_per_task")
        return cls(
            partition=settings.partition, mem_mb=_memory_mb(settings.mem_per_worker),
            max_jobs=max_jobs,
            task_minutes=_positive("task_minutes", o.get("task_minutes", 10.0)),
            calls_per_task=None if cpt is None else _positive("calls_per_task", cpt, True),
            walltime=None if o.get("walltime") is None else _walltime(o["walltime"]),
            cores=_positive("cores", o.get("cores", 1), integer=True),
            poll_interval=_positive("poll_interval", o.get("poll_interval", 10.0)),
            probe_wait=_positive("probe_wait", o.get("probe_wait", 60.0)),
            on_interrupt=interrupt, job_name=str(o.get("job_name", "acme-array")),
            job_extra=tuple(extra),
            work_dir=os.path.expanduser(str(o.get("work_dir", "~/.acme_slurm"))),
            policy=policy, site=site)

    def slots_hint(self) -> int:
        """Tasks that may run at once, before the cluster was asked."""
        return self.max_jobs or 8

    def slots(self, partition: slurmctl.Partition) -> int:
        """Tasks that may run at once: ``max_jobs``, else the partition's CPUs per task."""
        if self.max_jobs is not None:
            return self.max_jobs
        return max(1, partition.cpus // self.cores)

    def base_request(self, run: Any = None) -> Request:
        """The request of ordinary tasks: the partition asked for, or for ``"auto"`` the
        site's choice (``run``: the calls it may measure) or the cluster's default."""
        name = self.partition
        if name == "auto":
            name = (self.site.partition_for(run, self.mem_mb) if self.site is not None
                    else slurmctl.default_partition())
        return Request(name, self.mem_mb, self.walltime or 30, self.cores)
