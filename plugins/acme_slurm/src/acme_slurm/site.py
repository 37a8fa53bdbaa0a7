"""Site profiles: an HPC site's presets, as the array transport consumes them.

A site plugin keeps one record of its presets (acme-slurm-esi: ``acme_slurm_esi.site.Site``,
also read by its dask transport) and hands it to :func:`array_executor`. The record is
turned into a :class:`SiteProfile` here, and the profile answers the three questions the
array backend asks of a site:

- ``partition="auto"``: which partition fits a task's memory (measured on sampled calls
  when ``mem_per_worker="auto"``, with the site's headroom);
- ``out-of-memory`` once a partition's memory is exhausted: the next larger partition
  (the site's partition ladder);
- the site's defaults of ``backend_options``.

A second site (CoBIC, say) writes its own ``Site`` record in its plugin (a copy of
``acme_slurm_esi/esi.py`` with its names) and gets both transports, the dask one and
``transport="array"``, with nothing copied from this plugin.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acme_core.executor import ExecutorSettings, RunContext

from . import slurmctl

log = logging.getLogger("acme_slurm")


@dataclass(frozen=True)
class SiteProfile:
    """What a site tells the array backend (see the module docstring).

    Parameters
    ----------
    name : str
        The site's short name, for messages.
    choose_partition : callable
        ``choose_partition(need_mb) -> str``: the partition for tasks that need ``need_mb``.
    larger_partition : callable, optional
        ``larger_partition(partition) -> str | None``: the next rung of the ladder.
    measure_memory : callable, optional
        ``measure_memory(run) -> float``: peak MB of a few sampled calls (for
        ``partition="auto"`` without ``mem_per_worker``); None: the smallest partition.
    headroom : float
        A measured estimate is multiplied by this.
    defaults : mapping
        ``backend_options`` the site sets unless the user does.

    Examples
    --------
    >>> from acme_slurm.site import SiteProfile
    >>> ladder = ["8GBS", "16GBS", "32GBS"]
    >>> profile = SiteProfile("X", choose_partition=lambda mb: "16GBS" if mb > 8000 else "8GBS",
    ...                       larger_partition=lambda p: dict(zip(ladder, ladder[1:])).get(p))
    >>> profile.partition_for(None, 9000), profile.larger_partition("16GBS")
    ('16GBS', '32GBS')
    """

    name: str
    choose_partition: Callable[[float], str]
    larger_partition: Callable[[str], str | None] | None = None
    measure_memory: Callable[[RunContext], float] | None = None
    headroom: float = 1.2
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def array_defaults(self) -> dict[str, Any]:
        """The site's ``backend_options`` defaults."""
        return dict(self.defaults)

    def partition_for(self, run: RunContext | None, mem_mb: int | None) -> str:
        """``partition="auto"``: from ``mem_mb``, else from measured calls, else the least."""
        if mem_mb is not None:
            need, why = float(mem_mb), f"mem_per_worker={mem_mb} MB"
        elif run is not None and self.measure_memory is not None:
            estimate = self.measure_memory(run)
            need, why = estimate * self.headroom, (f"estimated memory consumption of "
                                                   f"{estimate / 1024:.2f} GB")
        else:
            need, why = 0.0, "no memory estimate"
        chosen = self.choose_partition(need)
        log.info(f"Picked partition {chosen} based on {why} ({self.name}, array transport)")
        return chosen


def _ladder(pattern: str) -> list[str]:
    """The partitions matching ``pattern``, by memory per CPU (then MaxTime)."""
    sized = []
    for name in slurmctl.partitions():
        if re.search(pattern, name):
            part = slurmctl.partition(name)
            sized.append((part.def_mem_per_cpu or 0, part.max_minutes or 0, name))
    return [name for *_, name in sorted(sized)]


def profile_of(site: Any) -> SiteProfile:
    """The :class:`SiteProfile` of an acme-slurm-esi ``Site`` record (ESI, CoBIC, ...).

    Examples
    --------
    >>> from acme_slurm_esi import ESI
    >>> from acme_slurm.site import profile_of
    >>> profile_of(ESI).name
    'ESI'
    """
    import platform

    pattern = site.auto_partitions.get(platform.machine(), r"^$")

    def choose(need_mb: float) -> str:
        return site.choose_partition(need_mb, slurmctl.partitions())[0]

    def larger(partition: str) -> str | None:
        ladder = _ladder(pattern)
        later = ladder[ladder.index(partition) + 1:] if partition in ladder else []
        return later[0] if later else None

    def measure(run: RunContext) -> float:
        from acme_slurm_esi.probe import measure_calls
        from acme_slurm_esi.site import PROBE_CALLS, PROBE_TIMEOUT

        if run.program.split is None or run.program_bytes is None:
            return 0.0          # the calls' arguments travel with batches: not sampled here
        picked = sorted(random.sample(range(run.n_calls), min(PROBE_CALLS, run.n_calls)))
        results = measure_calls(run.program_bytes, [(i, None) for i in picked], PROBE_TIMEOUT,
                                run.sys_path, run.info.func_name)
        return max(r.peak_mb for r in results)

    return SiteProfile(site.name, choose, larger, measure)


def array_executor(settings: ExecutorSettings, site: Any) -> Any:
    """The array backend with ``site``'s presets: what a site plugin's factory returns for
    ``transport="array"``.

    Examples
    --------
    >>> from acme_core.executor import ExecutorSettings
    >>> from acme_slurm_esi import ESI
    >>> from acme_slurm.site import array_executor
    >>> type(array_executor(ExecutorSettings(), ESI)).__name__
    'ArrayExecutor'
    """
    from .executor import ArrayExecutor

    profile = profile_of(site)
    options = {**dict(settings.options), "site": profile}
    if profile.larger_partition is not None and "policy" not in options:
        from .escalation import EscalationPolicy

        options["policy"] = EscalationPolicy(larger_partition=profile.larger_partition)
    return ArrayExecutor(dataclasses.replace(settings, options=options))
