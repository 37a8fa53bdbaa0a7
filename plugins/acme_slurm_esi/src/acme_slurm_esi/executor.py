"""The executor of a site backend (``"slurm-esi"``): acme-dask's SLURM executor with the
site's presets applied just before the jobs are submitted.

Everything acme-dask does stays as it is (TLS, attaching to a running client, replacing
lost jobs, stopping the jobs); this subclass only decides the partition, the cores, the
memory and the extra ``#SBATCH`` lines, and for ``partition="auto"`` measures sampled
calls first (:mod:`acme_slurm_esi.probe`).
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import platform
import random
from typing import Any

from acme_dask import setup as dask_setup
from acme_dask.executor import SlurmExecutor
from acme_dask.slurm import get_slurm_partitions, parse_memory

from acme_core.calls import BatchOutcome, CallBatch
from acme_core.executor import ExecutorSettings, RunContext
from acme_core.resources import auto_workers

from .probe import ProbeResult, measure_calls
from .site import HEADROOM, PROBE_CALLS, PROBE_TIMEOUT, Site

log = logging.getLogger("acme_slurm_esi")

def site_executor(settings: ExecutorSettings, site: Site) -> Any:
    """The site backend's executor: acme-dask's SLURM executor with the site's presets, or
    with ``backend_options={"transport": "array"}`` acme-slurm's job arrays with the same
    :class:`~acme_slurm_esi.site.Site` record."""
    options = dict(settings.options)
    transport = options.pop("transport", "dask")
    settings = dataclasses.replace(settings, options=options)
    if transport == "array":
        from acme_slurm.site import array_executor

        return array_executor(settings, site)
    if transport != "dask":
        raise ValueError(f"backend_options['transport'] has to be 'dask' or 'array', not "
                         f"{transport!r}.")
    return SiteSlurmExecutor(settings, site)


class SiteSlurmExecutor(SlurmExecutor):
    """A site's SLURM backend: acme-dask's ``slurm`` executor plus the site's presets.

    Parameters
    ----------
    settings : ExecutorSettings
        ParallelMap's backend parameters and ``backend_options`` (see ``acme_slurm_esi.site.SITE_OPTIONS``).
    site : Site
        The site's presets.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> ParallelMap(abs, [-1, -2], write_worker_results=False, backend="slurm-esi",
    ...             partition="8GBXS", n_workers=2).compute()        # doctest: +SKIP
    [1, 2]
    """

    def __init__(self, settings: ExecutorSettings, site: Site) -> None:
        self.site = site
        self._deferred: RunContext | None = None
        self._buffer: list[CallBatch] = []
        #: partition="auto": what the probe measured (None until it ran).
        self.probe_results: list[ProbeResult] | None = None
        super().__init__(settings)

    def _validate(self, options: dict[str, Any]) -> None:
        super()._validate(options)
        calls = options.get("probe_calls", PROBE_CALLS)
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
            raise ValueError(f"backend_options['probe_calls'] has to be an integer >= 1, "
                             f"not {calls!r}.")
        cap = options.get("probe_timeout", PROBE_TIMEOUT)
        if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not 0 < cap < float("inf"):
            raise ValueError(f"backend_options['probe_timeout'] has to be a number of seconds "
                             f"> 0, not {cap!r}.")

    # ------------------------------------------------------------------ start
    def _probe_needed(self) -> bool:
        return self.settings.partition == "auto" and self.settings.mem_per_worker == "auto"

    def start(self, run: RunContext) -> None:
        if (self._probe_needed() and run.program.split is None
                and dask_setup.running_client() is None):
            # The calls' own arguments travel with the batches (they are large): measure the
            # first calls submitted, then start the jobs (see collect()).
            self._deferred = run
            n = self.settings.n_workers
            self._n = int(n) if n != "auto" else auto_workers(run.n_calls, 8)
            return
        super().start(run)

    def submit(self, batch: CallBatch) -> None:
        if self._deferred is not None:
            self._buffer.append(batch)
            return
        super().submit(batch)

    def collect(self, timeout: float | None) -> list[BatchOutcome]:
        if self._deferred is not None:
            run, self._deferred = self._deferred, None
            super().start(run)
            buffered, self._buffer = self._buffer, []
            for batch in buffered:
                super().submit(batch)
        return super().collect(timeout)

    def _start_cluster(self, run: RunContext) -> Any:
        s, site = self.settings, self.site
        opts = dict(s.options)
        cushion = int(opts.get("mem_cushion", site.mem_cushion))
        partitions, _ = get_slurm_partitions()
        mem_mb = None if s.mem_per_worker == "auto" else parse_memory(s.mem_per_worker)
        cores = opts.get("cores")
        partition = s.partition
        if partition == "auto":
            if mem_mb is None:
                estimate_mb = self._measure(run)
                need, why = estimate_mb * HEADROOM, f"estimated memory consumption of " \
                    f"{estimate_mb / 1024:.2f} GB"
            else:
                need, why = mem_mb, f"mem_per_worker={s.mem_per_worker}"
            partition, per_job = site.choose_partition(need, partitions, cores or 1, cushion)
            log.info(f"Picked partition {partition} based on {why}: {per_job / 1024:.2f} GB per "
                     f"job (needed {need / 1024:.2f} GB"
                     + (f", the estimate + {HEADROOM - 1:.0%})" if mem_mb is None else ")"))
        else:
            site.check_partition(partition, partitions)
            site.check_arch(partition)
        mem = s.mem_per_worker
        if mem_mb is None and platform.machine() in site.foreign_default_mem:
            mem_mb = site.foreign_default_mem[platform.machine()]
            mem = f"{mem_mb}MB"
        if cores is None:
            cores = site.derive_cores(partition, mem_mb)
        job_extra = site.job_extra(opts.get("job_extra"), opts.get("log_directory"))
        opts.update(cores=cores, job_extra=job_extra, mem_cushion=cushion)
        self.settings = dataclasses.replace(s, partition=partition, mem_per_worker=mem,
                                            options=opts)
        return super()._start_cluster(run)

    def _measure(self, run: RunContext) -> float:
        """Peak memory (MB) of up to ``probe_calls`` sampled calls, the largest of them."""
        opts = self.settings.options
        k = min(int(opts.get("probe_calls", PROBE_CALLS)), run.n_calls)
        cap = float(opts.get("probe_timeout", PROBE_TIMEOUT))
        if run.program.split is not None:
            picked = sorted(random.sample(range(run.n_calls), k))
            calls: list[tuple[int, Any]] = [(i, None) for i in picked]
        else:
            calls = []
            for batch in self._buffer:
                splits = batch.split or (None,) * len(batch.indices)
                for index, split in zip(batch.indices, splits, strict=True):
                    if len(calls) < k:
                        calls.append((index, split if batch.pickled or split is None
                                      else pickle.dumps(split)))
        assert run.program_bytes is not None
        log.info(f"partition='auto': measuring the memory of {len(calls)} of {run.n_calls} "
                 f"calls of {run.info.func_name} ({', '.join(f'#{i}' for i, _ in calls)}), one "
                 f"at a time on this host, at most {cap:g} s each")
        results = measure_calls(run.program_bytes, calls, cap, run.sys_path, run.info.func_name)
        self.probe_results = results
        peaks = [r.peak_mb for r in results]
        estimate = max(peaks)
        log.info(f"Estimated memory consumption across {len(results)} runs is "
                 f"{estimate / 1024:.2f} GB (the largest peak; mean "
                 f"{sum(peaks) / len(peaks) / 1024:.2f} GB)")
        return estimate


def check_site_partition(settings: ExecutorSettings, site: Site) -> None:
    """A site backend's constructor check: ``partition=`` is one of the cluster's (one
    cached ``sinfo``, ACME's message hiding the site's invalid partitions) and its nodes
    have this host's architecture.

    Nothing is checked for ``partition="auto"``, while a dask client is running (its
    workers are used), or when ``sinfo`` cannot answer (the run reports that at start).

    Examples
    --------
    >>> from acme_core.executor import ExecutorSettings
    >>> from acme_slurm_esi.esi import ESI
    >>> from acme_slurm_esi.executor import check_site_partition
    >>> check_site_partition(ExecutorSettings(partition="auto"), ESI)   # nothing to check
    """
    from acme_dask.slurm import known_partitions

    if settings.partition == "auto" or dask_setup.running_client() is not None:
        return
    try:
        partitions, _ = known_partitions()
    except OSError:
        return
    site.check_partition(settings.partition, partitions)
    site.check_arch(settings.partition)
