"""What every HPC site preset shares: a :class:`Site` record and the setup it drives.

Nothing here knows a site's names. A site module (``esi.py``) fills one :class:`Site` with
its partitions' naming, its node test, its log folder and its defaults, and gets from this
module ACME's site behaviour (its ``esi_cluster_setup``): partition checks, memory capping, cores
derived from the partition's memory per CPU, the architecture guard, the default
``--output=``, reuse of a running client, and ``partition="auto"`` from a memory estimate.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acme_dask.plugin import SLURM_OPTIONS

from acme_core import AutoClaim

log = logging.getLogger("acme_slurm_esi")

#: Memory per job must be at least the estimate times this (ACME picked the closest
#: partition, which could be smaller than the estimate).
HEADROOM = 1.2
#: Sampled calls measured for ``partition="auto"`` and seconds each may run (ACME: 5, 30).
PROBE_CALLS = 5
PROBE_TIMEOUT = 30.0

#: ``backend_options`` of a site backend: acme-dask's SLURM options plus the probe's.
SITE_OPTIONS = {
    **SLURM_OPTIONS,
    "cores": "CPUs per SLURM job (default: memory per worker / the partition's DefMemPerCPU, "
             "at least 1)",
    "job_extra": "extra #SBATCH options, e.g. ['--account=lab']; an --output=/folder/file "
                 "here wins over every default log location",
    "mem_cushion": "MB kept free below the partition's memory limit (default: the site's)",
    "probe_calls": "partition='auto': how many sampled calls are measured (default 5)",
    "probe_timeout": "partition='auto': seconds one measured call may run (default 30)",
    "transport": "'dask' (default: dask workers as SLURM jobs) or 'array' (acme-slurm's job "
                 "arrays with the same presets; no scheduler, no open port)",
}
try:  # transport="array" takes acme-slurm's options too, when it is installed
    from acme_slurm.plugin import OPTIONS as _ARRAY_OPTIONS
except ImportError:  # pragma: no cover - acme-slurm not installed
    _ARRAY_OPTIONS = {}
SITE_OPTIONS.update({k: f"transport='array': {v}" for k, v in _ARRAY_OPTIONS.items()
                     if k not in SITE_OPTIONS})


@dataclass(frozen=True)
class Site:
    """One HPC site's presets: how its nodes and partitions look, and its defaults.

    Parameters
    ----------
    name : str
        Short name for messages (``"ESI"``).
    backend : str
        The acme-core backend name (``"slurm-esi"``).
    setup_name : str
        Name of the site's setup function, used as message prefix (``"esi_cluster_setup"``).
    node_env : str
        Environment variable that overrides the node test for ``backend="auto"``: ``"1"``
        claims, ``"0"`` never claims. It changes nothing else (paths stay as the node is).
    hostname_prefix, marker_path : str
        A site node's hostname starts with ``hostname_prefix`` and ``marker_path`` exists.
    invalid_partitions : tuple of str
        Partitions hidden from the "Invalid partition selection" message (ACME).
    auto_partitions : mapping of str to str
        Per submitting-host architecture, a regular expression of the partitions
        ``partition="auto"`` chooses from (smallest memory per job that fits first).
    partition_arch : mapping of str to str
        Regular expression of a partition name -> architecture of its nodes; partitions
        that match none run ``default_arch``.
    default_arch : str
        Architecture of partitions that ``partition_arch`` does not name.
    arch_hint : str
        Appended to the architecture-mismatch error (where to submit from instead).
    log_template : str, optional
        Default ``--output=`` on a site node (``{user}``, ``{stamp}`` filled in); off the
        site's nodes job output goes to the run's output directory instead.
    n_workers, timeout, interactive_wait, mem_cushion : int
        Defaults of the site's setup function.
    min_mem_per_cpu : int
        ``DefMemPerCPU`` is floored at this many MB when cores are derived from memory.
    cores_rounding : str
        ``"floor"`` (ESI: ``int(mem / DefMemPerCPU)``) or ``"round"`` (CoBIC).
    foreign_default_mem : mapping of str to int
        Per architecture, MB per worker when none is given and the partition has no
        ``DefMemPerCPU`` worth using (ACME: 16000 MB on ESI's POWER partition).
    claim_priority : int
        Priority of the ``backend="auto"`` claim on a site node (100: above the local
        default, below a running dask client).

    Examples
    --------
    >>> from acme_slurm_esi.site import Site
    >>> site = Site(name="X", backend="slurm-x", setup_name="x_cluster_setup",
    ...             node_env="ACME_SLURM_X_NODE", hostname_prefix="x-hpc",
    ...             marker_path="/nonexistent", auto_partitions={"x86_64": r"^(\\d+)G$"})
    >>> site.is_node(), site.arch_of("64G")
    (False, 'x86_64')
    """

    name: str
    backend: str
    setup_name: str
    node_env: str
    hostname_prefix: str
    marker_path: str
    invalid_partitions: tuple[str, ...] = ()
    auto_partitions: Mapping[str, str] = field(default_factory=dict)
    partition_arch: Mapping[str, str] = field(default_factory=dict)
    default_arch: str = "x86_64"
    arch_hint: str = ""
    log_template: str | None = None
    n_workers: int = 2
    timeout: int = 60
    interactive_wait: int = 120
    mem_cushion: int = 100
    min_mem_per_cpu: int = 1000
    cores_rounding: str = "floor"
    foreign_default_mem: Mapping[str, int] = field(default_factory=dict)
    claim_priority: int = 100

    # ------------------------------------------------------------------ the node
    def is_node(self) -> bool:
        """True on one of the site's nodes (hostname and marker path; no override)."""
        return (socket.gethostname().startswith(self.hostname_prefix)
                and os.path.isdir(self.marker_path))

    def claim(self) -> AutoClaim | None:
        """The ``backend="auto"`` claim: on a site node, or forced by ``node_env``.

        Examples
        --------
        >>> import os
        >>> from acme_slurm_esi.esi import ESI
        >>> saved = os.environ.get("ACME_SLURM_ESI_NODE")
        >>> os.environ["ACME_SLURM_ESI_NODE"] = "1"
        >>> ESI.claim().backend
        'slurm-esi'
        >>> os.environ["ACME_SLURM_ESI_NODE"] = "0"
        >>> ESI.claim() is None
        True
        >>> if saved is None: del os.environ["ACME_SLURM_ESI_NODE"]
        ... else: os.environ["ACME_SLURM_ESI_NODE"] = saved
        """
        forced = os.environ.get(self.node_env, "").strip()
        if forced == "0":
            return None
        if forced == "1":
            return AutoClaim(self.backend, self.claim_priority, f"{self.node_env}=1")
        if self.is_node():
            return AutoClaim(self.backend, self.claim_priority,
                             f"this is an {self.name} node ({socket.gethostname()})")
        return None

    # ------------------------------------------------------------------ partitions
    def arch_of(self, partition: str) -> str:
        """Architecture of the nodes of ``partition``."""
        for pattern, arch in self.partition_arch.items():
            if re.search(pattern, partition):
                return arch
        return self.default_arch

    def check_arch(self, partition: str, host_arch: str | None = None) -> None:
        """ACME's architecture guard: workers must match the submitting host.

        Examples
        --------
        >>> from acme_slurm_esi.esi import ESI
        >>> ESI.check_arch("8GBS", "x86_64")
        >>> ESI.check_arch("E880", "x86_64")
        Traceback (most recent call last):
        ...
        ValueError: Cannot start SLURM workers in partition E880 with architecture ppc64le from submitting host with architecture x86_64. Start x86_64 workers from esi-svhpc{1,2,3} and POWER workers from the hub.
        """
        host_arch = host_arch or platform.machine()
        wanted = self.arch_of(partition)
        if wanted != host_arch:
            raise ValueError(f"Cannot start SLURM workers in partition {partition} with "
                             f"architecture {wanted} from submitting host with architecture "
                             f"{host_arch}. {self.arch_hint}".rstrip())

    def check_partition(self, partition: Any, partitions: list[str]) -> str:
        """``partition`` if the cluster has it, else ACME's ValueError listing valid ones."""
        if not isinstance(partition, str) or partition not in partitions:
            shown = ", ".join(f"'{p}'" for p in partitions if p not in self.invalid_partitions)
            raise ValueError(f"Invalid partition selection {partition}, available SLURM "
                             f"partitions are {shown}")
        return partition

    def choose_partition(self, need_mb: float, partitions: list[str],
                         cores: int = 1, mem_cushion: int | None = None,
                         host_arch: str | None = None) -> tuple[str, int]:
        """The partition ``partition="auto"`` picks for jobs that need ``need_mb`` MB.

        The candidates are the partitions matching ``auto_partitions[host_arch]``; the one
        with the least memory per job (``scontrol``: its limit for ``cores`` CPUs, minus the
        cushion) that is at least ``need_mb`` wins. When none is large enough, the largest.

        Returns
        -------
        partition : str
        mem_mb : int
            Its memory per job (MB).

        Examples
        --------
        >>> from acme_slurm_esi.esi import ESI
        >>> ESI.choose_partition(8600, ["8GBS", "16GBS", "64GBS"])   # doctest: +SKIP
        ('16GBS', 16284)
        """
        from acme_dask.slurm import partition_memory

        host_arch = host_arch or platform.machine()
        pattern = self.auto_partitions.get(host_arch)
        cushion = self.mem_cushion if mem_cushion is None else mem_cushion
        if pattern is None:
            raise ValueError(f"{self.name}: no partitions for submitting hosts with architecture "
                             f"{host_arch} to choose from.")
        candidates = [p for p in partitions if re.search(pattern, p)]
        if not candidates:
            raise ValueError(f"{self.name}: none of the cluster's partitions "
                             f"{', '.join(partitions)} matches {pattern!r}; pass a partition.")
        sized = []
        for name in candidates:
            limit = partition_memory(name).limit(cores)
            if limit is not None:
                sized.append((limit - cushion, name))
        if not sized:
            raise ValueError(f"{self.name}: SLURM reports no memory limit for "
                             f"{', '.join(candidates)}; pass a partition.")
        sized.sort()
        for mem_mb, name in sized:
            if mem_mb >= need_mb:
                return name, mem_mb
        mem_mb, name = sized[-1]
        log.warning(f"No partition offers {need_mb / 1024:.1f} GB per job; using the largest, "
                    f"{name} ({mem_mb / 1024:.1f} GB): calls may run out of memory.")
        return name, mem_mb

    # ------------------------------------------------------------------ cores, logs
    def derive_cores(self, partition: str, mem_mb: int | None) -> int:
        """ACME's core count: the memory per worker over the partition's ``DefMemPerCPU``
        (floored at ``min_mem_per_cpu``); ``mem_mb`` None means the partition's limit for
        one CPU, so one core.

        Examples
        --------
        >>> from acme_slurm_esi.esi import ESI
        >>> ESI.derive_cores("8GBS", 20000)     # doctest: +SKIP
        2
        """
        from acme_dask.slurm import partition_memory

        memory = partition_memory(partition)
        per_cpu = max(self.min_mem_per_cpu, memory.def_per_cpu or 0)
        if mem_mb is None:
            mem_mb = memory.limit(1) or per_cpu
        ratio = mem_mb / per_cpu
        return max(1, round(ratio) if self.cores_rounding == "round" else int(ratio))

    def default_output(self) -> str | None:
        """The site's default ``--output=`` (its folder made), or None off the site's nodes."""
        from acme_dask import setup as dask_setup

        if self.log_template is None or not self.is_node():
            return None
        user = dask_setup.current_user()
        path = self.log_template.format(user=user, stamp=f"{dt.datetime.now():%Y%m%d-%H%M%S}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        log.debug(f"Using {os.path.dirname(path)} for SLURM logs")
        return f"--output={path}"

    def job_extra(self, job_extra: list[str] | None, log_directory: Any = None) -> list[str]:
        """``job_extra`` checked, plus the site's default ``--output=`` unless it has one or
        a ``log_directory`` was chosen."""
        from acme_dask import setup as dask_setup

        job_extra = dask_setup.check_job_extra([] if job_extra is None else list(job_extra))
        if log_directory is None and not any(o.startswith(("--output", "-o")) for o in job_extra):
            default = self.default_output()
            if default is not None:
                job_extra.append(default)
        return job_extra


# ---------------------------------------------------------------------------------- setup
def slurm_available() -> tuple[bool, str]:
    """Whether ``sinfo`` answers, and what it said when it did not."""
    if shutil.which("sinfo") is None:
        return False, "sinfo: command not found"
    try:
        proc = subprocess.run(["sinfo"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    return proc.returncode == 0, proc.stderr.strip()


def estimate_from_marker(mem_per_worker: Any) -> float | None:
    """The GB of ACME's ``"estimate_memuse:<GB>"`` marker, or None for anything else.

    Examples
    --------
    >>> from acme_slurm_esi.site import estimate_from_marker
    >>> estimate_from_marker("estimate_memuse:3"), estimate_from_marker("2GB")
    (3.0, None)
    """
    if isinstance(mem_per_worker, str) and mem_per_worker.startswith("estimate_memuse:"):
        return float(mem_per_worker.split(":", 1)[1])
    return None


def site_cluster_setup(site: Site, partition: str, n_workers: int | None = None,
                       mem_per_worker: str | None = "auto", cores_per_worker: int | None = None,
                       n_workers_startup: int = 1, timeout: float | None = None,
                       interactive: bool = True, interactive_wait: float | None = None,
                       start_client: bool = True, job_extra: list[str] | None = None,
                       mem_cushion: int | None = None, **kwargs: Any) -> Any:
    """ACME's site setup (``esi_cluster_setup`` and siblings) for ``site``.

    See :func:`acme_slurm_esi.esi.esi_cluster_setup` for the parameters; defaults of None
    are the site's.

    Returns
    -------
    distributed.Client or dask_jobqueue.SLURMCluster or None
    """
    from acme_dask import setup as dask_setup
    from acme_dask.slurm import get_slurm_partitions, parse_memory

    n_workers = site.n_workers if n_workers is None else n_workers
    timeout = site.timeout if timeout is None else timeout
    interactive_wait = site.interactive_wait if interactive_wait is None else interactive_wait
    mem_cushion = site.mem_cushion if mem_cushion is None else mem_cushion
    found = _running_client_or_local(site, interactive, interactive_wait, start_client)
    if found is not None:
        return found
    processes_per_worker = kwargs.pop("processes_per_worker", 1)
    host_arch = platform.machine()
    partitions, _ = get_slurm_partitions()
    if partition == "auto":
        partition = _auto_partition(site, mem_per_worker, partitions, mem_cushion, host_arch)
        mem_per_worker = "auto"
    else:
        site.check_partition(partition, partitions)
        site.check_arch(partition, host_arch)
    if mem_per_worker is None or mem_per_worker == "auto":
        mem_mb = None
    else:
        mem_mb = parse_memory(mem_per_worker)
    if mem_mb is None and host_arch in site.foreign_default_mem:
        mem_mb = site.foreign_default_mem[host_arch]
    if cores_per_worker is None:
        cores_per_worker = site.derive_cores(partition, mem_mb)
        log.debug(f"Derived core-count from partition: `cores_per_worker={cores_per_worker}`")
    cores_per_worker = dask_setup.check_int("cores_per_worker", cores_per_worker, 1)
    job_extra = site.job_extra(job_extra, kwargs.get("log_directory"))
    return dask_setup.slurm_cluster_setup(
        partition, n_cores=cores_per_worker, n_workers=n_workers,
        processes_per_worker=processes_per_worker,
        mem_per_worker=None if mem_mb is None else f"{mem_mb}MB",
        n_workers_startup=n_workers_startup, timeout=timeout, interactive=interactive,
        interactive_wait=interactive_wait, start_client=start_client, job_extra=job_extra,
        avail_partitions=partitions, invalid_partitions=list(site.invalid_partitions),
        mem_cushion=mem_cushion, reuse=False, **kwargs)


def _running_client_or_local(site: Site, interactive: bool, interactive_wait: float,
                             start_client: bool) -> Any:
    """A running client with workers (ACME: used as it is, or its cluster; one without
    workers is stopped first), or without SLURM a local client (asked first when
    ``interactive``); else None: start SLURM workers."""
    from acme_dask import setup as dask_setup

    prefix = f"<{site.setup_name}>"
    client = dask_setup.running_client()
    if client is not None:
        if dask_setup.count_online_workers(client) > 0:
            log.info(f"Found existing parallel computing client {client}. Not starting new "
                     f"cluster.")
            return client if start_client else client.cluster
        log.debug(f"No active workers detected in {client}")
        dask_setup.cluster_cleanup(client)
    ok, why = slurm_available()
    if ok:
        return None
    host = socket.gethostname()
    if interactive:
        answer = dask_setup.user_input(
            f"{prefix} SLURM does not seem to be installed on this machine ({host}). Do you "
            f"want to start a local multi-processing computing client instead? [y/N]",
            "yn", "n", interactive_wait)
        start_local = answer == "y"
    else:
        start_local = True
        log.warning(f"{prefix} SLURM is not available on {host} ({why}); starting a local "
                    f"multi-processing computing client instead.")
    if start_local:
        return dask_setup.local_cluster_setup(interactive=False)
    raise OSError(f"{prefix} Cannot access SLURM queuing system from node {host}: {why}")


def _auto_partition(site: Site, mem_per_worker: Any, partitions: list[str], mem_cushion: int,
                    host_arch: str) -> str:
    """``partition="auto"``: the smallest partition that holds the memory estimate ParallelMap
    passed as ``mem_per_worker="estimate_memuse:<GB>"`` plus the headroom."""
    estimate = estimate_from_marker(mem_per_worker)
    if estimate is None:
        raise OSError(f"<{site.setup_name}> Cannot auto-select partition without first invoking "
                      f"memory estimation in `ParallelMap`.")
    log.info("Automatically selecting SLURM partition...")
    partition, _mem = site.choose_partition(estimate * 1024 * HEADROOM, partitions, 1,
                                            mem_cushion, host_arch)
    log.info(f"Picked partition {partition} based on estimated memory consumption of "
             f"{estimate:g} GB")
    return partition
