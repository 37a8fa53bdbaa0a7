"""What ``n_workers="auto"`` and ``stop_client`` mean, answered once for every backend.

Backends ask here instead of answering themselves, so the same machine gives the same
number of usable cores to every backend, and ``stop_client`` means the same everywhere.
"""

from __future__ import annotations

import math
import os

#: cgroup files that limit this process's CPU time (v2, then v1).
_CGROUP_V2 = "/sys/fs/cgroup/cpu.max"
_CGROUP_V1 = ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def usable_cores() -> int:
    """CPUs this process may use: its affinity mask (SLURM's allocation, ``taskset``),
    capped by a container's CPU quota (cgroups), as joblib's ``cpu_count`` counts them.

    Examples
    --------
    >>> from acme_core.resources import usable_cores
    >>> usable_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, quota) if quota is not None else cores)


def _cgroup_quota() -> int | None:
    """CPUs a cgroup CPU quota allows (rounded up), or None without a quota."""
    try:
        quota, period = _read(_CGROUP_V2).split()[:2]
    except (OSError, ValueError):
        try:
            quota, period = (_read(path) for path in _CGROUP_V1)
        except (OSError, ValueError):
            return None
    if not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None  # "max" (v2) or "-1" (v1): no quota
    return max(1, math.ceil(int(quota) / int(period)))


def _read(path: str) -> str:
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()


def auto_workers(n_calls: int, capacity: int) -> int:
    """``n_workers="auto"`` of a backend that starts its workers for the run: one per call,
    up to ``capacity`` (what the backend can start now: local cores, idle SLURM CPUs...).

    Examples
    --------
    >>> from acme_core.resources import auto_workers
    >>> auto_workers(n_calls=3, capacity=8), auto_workers(n_calls=100, capacity=8)
    (3, 8)
    """
    return max(1, min(n_calls, capacity))


def stops_workers(stop_client: bool | str, started_by_run: bool) -> bool:
    """Whether the end of a run stops its workers: ``stop_client="auto"`` stops those the
    run started and keeps those it found (a client you started, a pool kept for the next
    run); True stops either, False keeps either.

    Examples
    --------
    >>> from acme_core.resources import stops_workers
    >>> stops_workers("auto", started_by_run=True), stops_workers("auto", False)
    (True, False)
    >>> stops_workers(True, started_by_run=False), stops_workers(False, True)
    (True, False)
    """
    if stop_client == "auto":
        return started_by_run
    return bool(stop_client)
