"""The few SLURM commands the array backend runs, and what it reads from them.

Every query here is one process for the whole run (never one per task): ``sbatch`` once
per array, ``squeue`` once per poll interval for all of the run's arrays, ``scontrol show
job`` only when a task ended without saying so itself, ``sacct`` only when accounting is on.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger("acme_slurm")

#: SLURM states of a task that may still run its chunk.
LIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED",
                         "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED",
                         "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"})


class SlurmError(OSError):
    """A SLURM command failed; the message holds the command and what it printed."""


def run(cmd: list[str], timeout: float = 60) -> str:
    """Run a SLURM command and return its stdout; :class:`SlurmError` when it fails."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SlurmError(f"`{' '.join(cmd)}` could not run: {exc}") from exc
    if proc.returncode != 0:
        raise SlurmError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def key_values(text: str) -> dict[str, str]:
    """``Key=Value`` tokens of ``scontrol -o`` output.

    Examples
    --------
    >>> from acme_slurm.slurmctl import key_values
    >>> key_values("JobId=7 JobState=FAILED ExitCode=0:9")["ExitCode"]
    '0:9'
    """
    return dict(tok.split("=", 1) for tok in text.split() if "=" in tok)


def minutes(text: str) -> int | None:
    """SLURM's ``[days-]hh:mm:ss`` / ``mm:ss`` / ``UNLIMITED`` in whole minutes (None: no limit).

    Examples
    --------
    >>> from acme_slurm.slurmctl import minutes
    >>> minutes("08:00:00"), minutes("1-00:00:00"), minutes("UNLIMITED")
    (480, 1440, None)
    """
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "NONE", "INFINITE", "N/A"):
        return None
    days, _, rest = text.rpartition("-")
    try:
        parts = [int(p) for p in rest.split(":")]
        days_n = int(days or 0)
    except ValueError:
        return None
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts
    return days_n * 1440 + h * 60 + m + (1 if s else 0)


def hhmmss(mins: float) -> str:
    """Minutes as SLURM's ``[days-]hh:mm:00``.

    Examples
    --------
    >>> from acme_slurm.slurmctl import hhmmss
    >>> hhmmss(90), hhmmss(1500)
    ('01:30:00', '1-01:00:00')
    """
    total = max(1, int(round(mins)))
    days, rest = divmod(total, 1440)
    text = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{text}" if days else text


_MB = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)B?$", re.IGNORECASE)
_UNITS = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2, "P": 1024**3}


def mb(text: str) -> int | None:
    """SLURM memory (``8192``, ``64G``, ``954M``, ``65536+``) in MB; None when unknown.

    Examples
    --------
    >>> from acme_slurm.slurmctl import mb
    >>> mb("64G"), mb("954M"), mb("UNLIMITED")
    (65536, 954, None)
    """
    match = _MB.match(text.strip().rstrip("+"))
    if match is None:
        return None
    value = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    return value or None


@dataclass(frozen=True)
class SiteLimits:
    """The controller's limits on arrays: ``MaxArraySize`` (largest index + 1) and
    ``MaxJobCount`` (every array task counts as a job)."""

    max_array_size: int = 1001
    max_job_count: int = 10000


def site_limits() -> SiteLimits:
    """``MaxArraySize`` and ``MaxJobCount`` from ``scontrol show config``."""
    fields: dict[str, str] = {}
    for line in run(["scontrol", "show", "config"]).splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    return SiteLimits(int(fields.get("MaxArraySize", 1001)), int(fields.get("MaxJobCount", 10000)))


@dataclass(frozen=True)
class Partition:
    """What a task may ask of one partition (MB and minutes; None: no limit set)."""

    name: str
    max_minutes: int | None
    def_mem_per_cpu: int | None
    max_mem_per_cpu: int | None
    node_mb: int | None
    cpus: int

    def mem_limit(self, cores: int) -> int | None:
        """The most memory a task of ``cores`` CPUs can get: a node's memory (SLURM adds
        CPUs when a request passes ``MaxMemPerCPU``, so that is no hard cap)."""
        return self.node_mb

    def default_mem(self, cores: int) -> int | None:
        """What a task gets without ``--mem``."""
        return self.def_mem_per_cpu * cores if self.def_mem_per_cpu else self.node_mb


def default_partition() -> str:
    """The partition ``sinfo`` marks with ``*``."""
    for name in run(["sinfo", "-h", "-o", "%P"]).split():
        if name.endswith("*"):
            return name[:-1]
    raise SlurmError("this SLURM cluster has no default partition; pass partition=...")


def partitions() -> list[str]:
    """Every partition's name."""
    return list(dict.fromkeys(n.rstrip("*") for n in run(["sinfo", "-h", "-o", "%P"]).split()))


def partition(name: str) -> Partition:
    """``scontrol show partition`` and ``sinfo``'s node memory for partition ``name``."""
    try:
        fields = key_values(run(["scontrol", "-o", "show", "partition", name]))
    except SlurmError as exc:
        raise ValueError(f"partition={name!r} is not a partition of this cluster; it has "
                         f"{', '.join(partitions())}.") from exc
    sizes = [mb(x) for x in run(["sinfo", "-h", "-p", name, "-o", "%m"]).split()]
    known = [s for s in sizes if s]
    return Partition(name, minutes(fields.get("MaxTime", "")),
                     mb(fields.get("DefMemPerCPU", "")), mb(fields.get("MaxMemPerCPU", "")),
                     min(known) if known else None, int(fields.get("TotalCPUs", 0) or 0))


def sbatch(args: list[str], script: str, script_args: list[str]) -> str:
    """Submit ``script script_args...`` with the options ``args``; returns the (array) job
    id. A controller that is busy ("temporarily unavailable") is asked again, 3 times."""
    import time

    for attempt in range(4):
        try:
            out = run(["sbatch", "--parsable", *args, script, *script_args])
            return out.strip().split(";")[0]
        except SlurmError as exc:
            if "temporarily" not in str(exc).lower() or attempt == 3:
                raise
            time.sleep(2 * (attempt + 1))
    raise AssertionError("unreachable")


def squeue_states(job_ids: list[str]) -> dict[str, str]:
    """``<array id>_<task>`` -> state, for every task of ``job_ids`` SLURM still lists
    (finished ones for ``MinJobAge``): one ``squeue`` for the whole run."""
    if not job_ids:
        return {}
    try:
        out = run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(job_ids),
                   "-o", "%i|%T"])
    except SlurmError as exc:
        if "Invalid job id" in str(exc):   # every id purged from the controller
            return {}
        raise
    states = {}
    for line in out.splitlines():
        task, _, state = line.strip().partition("|")
        if task:
            states[task] = state.strip()
    return states


def job_records(array_id: str) -> dict[str, dict[str, str]]:
    """``scontrol show job`` of every task of array ``array_id`` (``<id>_<task>`` ->
    fields); ``sacct`` fills in tasks the controller has forgotten, when accounting is on."""
    records: dict[str, dict[str, str]] = {}
    try:
        out = run(["scontrol", "-o", "show", "job", array_id])
    except SlurmError:
        out = ""
    for line in out.splitlines():
        fields = key_values(line)
        if "ArrayJobId" in fields and "ArrayTaskId" in fields:
            records[f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"] = fields
    return records


def sacct_records(array_id: str) -> dict[str, dict[str, str]]:
    """Like :func:`job_records` from accounting; empty when ``sacct`` is absent or off."""
    if shutil.which("sacct") is None:
        return {}
    try:
        out = run(["sacct", "-n", "-P", "-X", "-j", array_id, "-o", "JobID,State,ExitCode"])
    except SlurmError:
        return {}
    records = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and "_" in parts[0] and "[" not in parts[0]:
            records[parts[0]] = {"JobState": parts[1].split()[0], "ExitCode": parts[2],
                                 "Reason": ""}
    return records


def scancel(job_ids: list[str]) -> None:
    """Cancel ``job_ids`` (arrays or single tasks); already-finished ones are fine."""
    if job_ids:
        try:
            run(["scancel", *job_ids])
        except SlurmError as exc:
            log.debug(f"scancel: {exc}")
