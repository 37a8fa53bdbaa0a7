"""Why an array task died, and what the calls it held get next time.

:func:`classify` turns what SLURM says about a task that vanished (state, exit code,
reason; ``sacct`` only when accounting is on) plus the task's own heartbeat (peak RSS)
into a failure kind. :class:`EscalationPolicy` decides, per kind, the request the call
that was running gets when it is submitted again, or that it has failed for good. A site
plugin replaces the policy with ``backend_options={"policy": MyPolicy(...)}``.

Kinds (strings, as every failure kind of acme-core): ``out-of-memory``, ``timeout``,
``preempted``, ``node-fail``, ``cancelled``, ``lost`` (nothing tells why); a call whose
function raised comes back as ``error`` through its normal outcome and is retried only as
``retries=`` says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

OUT_OF_MEMORY, TIMEOUT, PREEMPTED = "out-of-memory", "timeout", "preempted"
NODE_FAIL, CANCELLED, LOST = "node-fail", "cancelled", "lost"
#: Kinds of task deaths the system caused: re-submitted without using ``retries``.
SYSTEM_KINDS = frozenset({PREEMPTED, NODE_FAIL, CANCELLED, LOST})

#: What SLURM prints into a task's output when its memory poller kills it (no cgroups).
MEMORY_MESSAGES = ("exceeded memory limit", "out of memory", "oom-kill", "oom_kill")
#: A SIGKILLed task whose heartbeat saw this share of its memory request was a memory kill.
RSS_NEAR_REQUEST = 0.7


@dataclass(frozen=True)
class TaskEnd:
    """What is known about a task that ended without finishing its chunk."""

    state: str                    # SLURM's JobState ("" when SLURM forgot the task)
    exit_code: str = ""           # "code:signal"
    reason: str = ""
    peak_mb: float | None = None  # the task's last heartbeat
    mem_mb: int | None = None     # its memory request
    log_tail: str = ""            # the end of its SLURM output


def classify(end: TaskEnd) -> str:
    """The failure kind of a task that died.

    Examples
    --------
    >>> from acme_slurm.escalation import TaskEnd, classify
    >>> classify(TaskEnd("FAILED", "0:9", peak_mb=240, mem_mb=256))
    'out-of-memory'
    >>> classify(TaskEnd("FAILED", "0:9", peak_mb=40, mem_mb=256))
    'lost'
    >>> classify(TaskEnd("TIMEOUT", "0:15")), classify(TaskEnd("CANCELLED", "0:15"))
    ('timeout', 'cancelled')
    """
    state = end.state.split()[0] if end.state else ""
    direct = {"OUT_OF_MEMORY": OUT_OF_MEMORY, "TIMEOUT": TIMEOUT, "DEADLINE": TIMEOUT,
              "PREEMPTED": PREEMPTED, "NODE_FAIL": NODE_FAIL, "BOOT_FAIL": NODE_FAIL}
    if state in direct:
        return direct[state]
    text = end.log_tail.lower()
    if any(m in text for m in MEMORY_MESSAGES):
        return OUT_OF_MEMORY
    if state == "CANCELLED":
        return CANCELLED
    signal = end.exit_code.partition(":")[2]
    if (signal == "9" and end.mem_mb and end.peak_mb is not None
            and end.peak_mb >= RSS_NEAR_REQUEST * end.mem_mb):
        return OUT_OF_MEMORY
    return LOST


@dataclass(frozen=True)
class Request:
    """What one array task asks SLURM for.

    Examples
    --------
    >>> from acme_slurm.escalation import Request
    >>> Request("8GBS", mem_mb=512, minutes=30).sbatch_args()
    ['--partition=8GBS', '--cpus-per-task=1', '--time=00:30:00', '--mem=512M']
    """

    partition: str
    mem_mb: int | None = None     # None: the partition's default
    minutes: int = 30
    cores: int = 1

    def sbatch_args(self) -> list[str]:
        """The request as ``sbatch`` options."""
        from .slurmctl import hhmmss

        args = [f"--partition={self.partition}", f"--cpus-per-task={self.cores}",
                f"--time={hhmmss(self.minutes)}"]
        if self.mem_mb is not None:
            args.append(f"--mem={self.mem_mb}M")
        return args


@dataclass(frozen=True)
class Limits:
    """What the partition of a request allows: the memory of a task (MB) and its time
    (minutes), None when unlimited; ``default_mem_mb`` is what a task gets without
    ``--mem``."""

    mem_mb: int | None
    minutes: int | None
    default_mem_mb: int | None = None


@dataclass(frozen=True)
class EscalationPolicy:
    """Per failure kind, what the call a dead task was running asks for next.

    Parameters
    ----------
    max_attempts : int
        Submissions of one call for system reasons (memory, time, preemption, node
        failure, cancellation, loss) before it fails for good with that kind.
    memory_factor : float
        ``out-of-memory``: the memory request is multiplied by this, up to the limit.
    time_factor : float
        ``timeout``: the time limit is multiplied by this, up to the partition's MaxTime.
    larger_partition : callable, optional
        ``larger_partition(partition) -> str | None``: where a call goes once its
        partition's memory is exhausted (a site's partition ladder); None: nowhere.

    Examples
    --------
    >>> from acme_slurm.escalation import EscalationPolicy, Limits, Request
    >>> policy = EscalationPolicy()
    >>> policy.next_request("out-of-memory", Request("8GBS", 256), Limits(65536, 480), 1)
    Request(partition='8GBS', mem_mb=512, minutes=30, cores=1)
    >>> policy.next_request("timeout", Request("8GBS", 256, 300), Limits(65536, 480), 1)
    Request(partition='8GBS', mem_mb=256, minutes=480, cores=1)
    >>> policy.next_request("timeout", Request("8GBS", 256, 480), Limits(65536, 480), 1) is None
    True
    """

    max_attempts: int = 4
    memory_factor: float = 2.0
    time_factor: float = 2.0
    larger_partition: Callable[[str], str | None] | None = None

    def next_request(self, kind: str, request: Request, limits: Limits,
                     attempt: int) -> Request | None:
        """The request for the next attempt of a call whose task died with ``kind``
        (``attempt`` submissions so far), or None: the call has failed for good."""
        if attempt >= self.max_attempts:
            return None
        if kind == OUT_OF_MEMORY:
            return self._more_memory(request, limits)
        if kind == TIMEOUT:
            if limits.minutes is not None and request.minutes >= limits.minutes:
                return None
            more = int(request.minutes * self.time_factor + 0.999)
            return dataclasses.replace(request, minutes=min(more, limits.minutes or more))
        if kind in SYSTEM_KINDS:
            return request
        return None

    def _more_memory(self, request: Request, limits: Limits) -> Request | None:
        current = request.mem_mb or limits.default_mem_mb
        if current is None:
            return None
        wanted = int(current * self.memory_factor)
        if limits.mem_mb is None or current < limits.mem_mb:
            return dataclasses.replace(request, mem_mb=min(wanted, limits.mem_mb or wanted))
        larger = self.larger_partition(request.partition) if self.larger_partition else None
        if larger is None:
            return None
        return dataclasses.replace(request, partition=larger, mem_mb=None)
