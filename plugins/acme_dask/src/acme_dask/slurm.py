"""What a SLURM cluster offers, asked through ``sinfo`` and ``scontrol`` only.

ACME needs SLURM accounting (``sacctmgr``) to start at all; these queries work on any SLURM.
Accounting is asked only for a partition that names a QoS, and only as an extra limit.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
from dataclasses import dataclass

log = logging.getLogger("acme_dask")

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(MB|GB)\s*$", re.IGNORECASE)
_SLURM_MEM = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)$")
_UNITS = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2, "P": 1024**3}


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def get_slurm_partitions() -> tuple[list[str], str | None]:
    """The cluster's partitions (``sinfo -h -o %P``) and its default partition.

    Returns
    -------
    partitions : list of str
        Partition names, in ``sinfo``'s order, without the ``*`` of the default one.
    default : str or None
        The partition marked ``*``, or None when the cluster has no default.

    Raises
    ------
    OSError
        ACME's "Error fetching SLURM partition setup" when ``sinfo`` is missing or fails.

    Examples
    --------
    >>> from acme_dask.slurm import get_slurm_partitions
    >>> parts, default = get_slurm_partitions()  # doctest: +SKIP
    >>> default                                  # doctest: +SKIP
    '8GBS'
    """
    where = f"<_get_slurm_partitions> Error fetching SLURM partition setup from node {socket.gethostname()}"
    try:
        proc = _run(["sinfo", "-h", "-o", "%P"])
    except (OSError, subprocess.SubprocessError) as exc:
        raise OSError(f"{where}: {exc}") from exc
    if proc.returncode != 0:
        detail = proc.stderr.strip() or f"sinfo exited with code {proc.returncode}"
        raise OSError(f"{where}: {detail}")
    partitions: list[str] = []
    default = None
    for line in proc.stdout.split():
        name = line.strip()
        if name.endswith("*"):
            name = name[:-1]
            default = default or name
        if name and name not in partitions:
            partitions.append(name)
    return partitions, default


#: Seconds a ``sinfo`` answer is reused by :func:`known_partitions`.
PARTITIONS_TTL = 60.0
_partitions_seen: dict[str, tuple[float, tuple[list[str], str | None]]] = {}


def known_partitions() -> tuple[list[str], str | None]:
    """:func:`get_slurm_partitions`, asked at most once a minute (what the ParallelMap
    constructor checks ``partition=`` against: many ParallelMaps, one ``sinfo``).

    Examples
    --------
    >>> from acme_dask.slurm import known_partitions
    >>> known_partitions()[1]                    # doctest: +SKIP
    '8GBS'
    """
    import time

    now = time.monotonic()
    seen = _partitions_seen.get("sinfo")
    if seen is None or now - seen[0] > PARTITIONS_TTL:
        seen = _partitions_seen["sinfo"] = (now, get_slurm_partitions())
    return seen[1]


def parse_memory(value: str) -> int:
    """ACME's memory specifier (``"8GB"``, ``"12000MB"``) in MB (GB counts 1000 MB, as in ACME).

    Examples
    --------
    >>> from acme_dask.slurm import parse_memory
    >>> parse_memory("8GB"), parse_memory("1500MB"), parse_memory("0.5 gb")
    (8000, 1500, 500)
    """
    if not isinstance(value, str):
        raise TypeError(f"`mem_per_worker` has to be a valid memory specifier (e.g., '8GB', "
                        f"'12000MB'), not {value!r} ({type(value).__name__}).")
    match = _MEMORY.match(value)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"`mem_per_worker` has to be a valid memory specifier (e.g., '8GB', "
                         f"'12000MB'), not {value!r}.")
    number = float(match.group(1))
    return int(round(number * (1000 if match.group(2).upper() == "GB" else 1)))


def _slurm_mb(text: str) -> int | None:
    """``8192``, ``64G``, ``65536+`` (SLURM's MB) in MB; None for UNLIMITED/unknown."""
    text = text.strip().rstrip("+")
    match = _SLURM_MEM.match(text.upper())
    if match is None:
        return None
    mb = int(float(match.group(1)) * _UNITS[match.group(2)])
    return mb if mb > 0 else None


@dataclass(frozen=True)
class PartitionMemory:
    """Memory settings of one partition, in SLURM's MB; None where the partition sets none.

    Examples
    --------
    >>> from acme_dask.slurm import PartitionMemory
    >>> m = PartitionMemory("8GBS", def_per_cpu=8192, max_per_cpu=8192, node_mb=65536)
    >>> m.limit(cores=2), m.default(cores=1)
    (16384, 8192)
    """

    partition: str
    def_per_cpu: int | None = None
    max_per_cpu: int | None = None
    def_per_node: int | None = None
    max_per_node: int | None = None
    node_mb: int | None = None
    qos_mb: int | None = None

    def limit(self, cores: int) -> int | None:
        """The most a job of ``cores`` CPUs may ask for (None: no known limit)."""
        candidates = [self.max_per_cpu * cores if self.max_per_cpu else None,
                      self.max_per_node, self.node_mb, self.qos_mb]
        known = [c for c in candidates if c]
        return min(known) if known else None

    def default(self, cores: int) -> int | None:
        """What SLURM gives a job of ``cores`` CPUs that asks for nothing."""
        if self.def_per_cpu:
            value = self.def_per_cpu * cores
        elif self.def_per_node:
            value = self.def_per_node
        else:
            value = self.limit(cores)
        limit = self.limit(cores)
        return min(value, limit) if value and limit else value


def partition_memory(partition: str) -> PartitionMemory:
    """Ask ``scontrol`` (and, only if the partition names a QoS, ``sacctmgr``) for its memory.

    Raises
    ------
    OSError
        ACME's "Cannot fetch available memory per CPU in SLURM" when ``scontrol`` fails.

    Examples
    --------
    >>> from acme_dask.slurm import partition_memory
    >>> partition_memory("8GBS").max_per_cpu  # doctest: +SKIP
    8192
    """
    try:
        proc = _run(["scontrol", "-o", "show", "partition", partition])
    except (OSError, subprocess.SubprocessError) as exc:
        raise OSError(f"Cannot fetch available memory per CPU in SLURM for partition "
                      f"{partition!r}: {exc}") from exc
    if proc.returncode != 0 or "PartitionName=" not in proc.stdout:
        raise OSError(f"Cannot fetch available memory per CPU in SLURM for partition "
                      f"{partition!r}: {proc.stderr.strip() or proc.stdout.strip()}")
    fields = dict(tok.split("=", 1) for tok in proc.stdout.split() if "=" in tok)
    node_mb = None
    with _suppress():
        nodes = _run(["sinfo", "-h", "-p", partition, "-o", "%m"])
        sizes = [_slurm_mb(x) for x in nodes.stdout.split()] if nodes.returncode == 0 else []
        sizes = [s for s in sizes if s]
        node_mb = min(sizes) if sizes else None
    qos_mb = None
    qos = fields.get("QoS", "N/A")
    if qos not in ("N/A", "", "(null)"):
        with _suppress():
            acct = _run(["sacctmgr", "-n", "-P", "show", "qos", f"name={qos}", "format=MaxTRES"])
            found = re.search(r"mem=(\d+[KMGTP]?)", acct.stdout) if acct.returncode == 0 else None
            qos_mb = _slurm_mb(found.group(1)) if found else None
            if acct.returncode != 0:
                log.debug(f"sacctmgr is not available ({acct.stderr.strip()}); QoS {qos} ignored.")
    return PartitionMemory(
        partition=partition,
        def_per_cpu=_slurm_mb(fields.get("DefMemPerCPU", "")),
        max_per_cpu=_slurm_mb(fields.get("MaxMemPerCPU", "")),
        def_per_node=_slurm_mb(fields.get("DefMemPerNode", "")),
        max_per_node=_slurm_mb(fields.get("MaxMemPerNode", "")),
        node_mb=node_mb,
        qos_mb=qos_mb,
    )


def idle_cpus(partition: str) -> int | None:
    """CPUs of ``partition`` that are idle right now (``sinfo -o %C``), None if unknown.

    Examples
    --------
    >>> from acme_dask.slurm import idle_cpus
    >>> idle_cpus("8GBS")  # doctest: +SKIP
    8
    """
    try:
        proc = _run(["sinfo", "-h", "-p", partition, "-o", "%C"], timeout=10)
        allocated, idle, other, total = (int(x) for x in proc.stdout.split()[0].split("/"))
    except Exception:  # noqa: BLE001 - only a sizing hint
        return None
    return idle


class _suppress:
    """Like contextlib.suppress(Exception), but logs what it swallowed at DEBUG."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if exc is not None and isinstance(exc, Exception):
            log.debug(f"SLURM query failed: {exc!r}")
            return True
        return False
