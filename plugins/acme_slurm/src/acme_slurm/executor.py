"""Backend ``"slurm-array"``: calls run in SLURM job arrays; no scheduler, no open port.

How it works
------------
The parent pickles the run's program once into the run's state folder
(``<output_dir>/.acme_slurm``; for in-memory results a private folder it removes at the
end, see :mod:`acme_slurm.layout`). Calls go out in *chunks*: each array task runs one
chunk (``python -m acme_slurm.task``) through :func:`acme_core.calls.run_batch`, so every
storage's worker-side writer works as on any backend, and writes its outcomes to small
files. The parent follows those files, and asks ``squeue`` once per ``poll_interval`` for
every task of the run at once, to notice tasks that died.

Batches and array tasks: the run loop hands over batches one at a time, as it does to
every backend. This executor reports every call of the run as able to run at once
(``n_workers`` is the run's size: SLURM holds the queue, ``max_jobs`` bounds what runs),
so the run loop submits all of its calls straight away; the executor only buffers them
and cuts the chunks itself, at the next ``collect``, after a short linger (so retries
coming back one by one leave together). Chunk sizes come from measured call time: a
first, small *pilot* array (4 tasks of 2 calls) measures it (unless ``calls_per_task`` is
given), then the rest goes out in as many tasks as give each about ``task_minutes`` of
work, but at least as many as there are slots (``max_jobs``, ``n_workers``, or the
partition's CPUs). A group of more tasks than ``MaxArraySize`` allows goes out as several
arrays with index offsets; ``MaxJobCount`` caps how many tasks a run makes. So a run makes
a handful of ``sbatch`` calls: the pilot, the main arrays, and one per round of
escalations or retries.

Failures: a task that leaves SLURM's running states without having written outcomes for
its whole chunk is looked up once (``scontrol show job``, ``sacct`` only when accounting
is on) and, with its heartbeat, classified (:mod:`acme_slurm.escalation`). The call it was
running gets the kind and, as the :class:`~acme_slurm.escalation.EscalationPolicy` says,
a bigger request or a final failure of that kind; the calls it had not started go back
to be run, never counted as failures. A function that raised comes back as ``error``
through its outcome, and the run loop retries it as ``retries=`` says.

Surviving the caller: the arrays are plain SLURM jobs. By default (``on_interrupt=
"cancel"``) a reaper process (:mod:`acme_core.reaper`) cancels them when the parent dies,
whatever killed it; with ``on_interrupt="detach"`` they keep running. A new ParallelMap on the same ``output_dir`` finds the state folder, takes the
results of tasks that finished since, waits for the calls live tasks still hold, and
submits only the rest. Ctrl-C cancels the run's tasks, or with
``on_interrupt="detach"`` leaves them running for such a re-run.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from acme_core.calls import BatchOutcome, CallBatch, Failure
from acme_core.executor import Executor, ExecutorSettings, RunContext
from acme_core.reaper import Reaper
from acme_core.stale import owned_directory

from . import layout, slurmctl
from .escalation import LOST, EscalationPolicy, Limits, Request, TaskEnd, classify
from .options import ArrayOptions

log = logging.getLogger("acme_slurm")

#: Seconds the buffer of submitted calls waits for more before it goes out (at most
#: ``LINGER_MAX`` after the first one).
LINGER, LINGER_MAX = 0.5, 10.0
#: Tasks of the pilot array and calls in each: they measure call time (a task's second
#: call tells the time of a call without the first one's imports).
PILOT_TASKS, PILOT_CALLS = 4, 2
#: Seconds between listings of the run's outcome files (one listing per group).
SCAN_SECONDS = 0.5
#: A group's task count is kept under this share of ``MaxJobCount`` (other users' jobs).
JOB_SHARE = 0.5


@dataclass
class Chunk:
    """One array task's calls and what the parent knows of it."""

    group: str
    number: int
    indices: tuple[int, ...]
    request: Request
    generation: str
    job: str = ""                      # "<array job id>_<task id>" once submitted
    covered: set[int] = field(default_factory=set)
    parts_read: set[str] = field(default_factory=set)
    settled: bool = False
    missing: int = 0
    state: str = ""
    first_seen: bool = False           # its task's first call (imports, file opens) was read


class ArrayExecutor(Executor):
    """Runs calls in SLURM job arrays (see the module docstring).

    Parameters
    ----------
    settings : ExecutorSettings
        ``partition``, ``n_workers`` (throttle), ``mem_per_worker`` and ``backend_options``
        (``acme_slurm.plugin.OPTIONS``).

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> ParallelMap(abs, [-1, -2], write_worker_results=False, backend="slurm-array",
    ...             verbose=False).compute()                         # doctest: +SKIP
    [1, 2]
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        super().__init__(settings)
        self.opts = ArrayOptions.from_settings(settings)
        self.policy: EscalationPolicy = self.opts.policy
        self._started = False
        self._n_calls = 0

    @property
    def n_workers(self) -> int:
        return max(1, self._n_calls) if self._started else self.opts.slots_hint()

    # ------------------------------------------------------------------ start
    def start(self, run: RunContext) -> None:
        assert run.program_bytes is not None
        self._run, self._run_id, self._n_calls = run, run.info.run_id, run.n_calls
        self._limits = slurmctl.site_limits()
        self._base = self.opts.base_request(run)
        self._partitions: dict[str, slurmctl.Partition] = {}
        self._slots = self.opts.slots(self._partition(self._base.partition))
        self._private = run.output_dir is None
        if run.output_dir is None:
            # with its owner's pid: the folder of a killed run goes at the next start
            self.state = owned_directory(self.opts.work_dir, "run_")
        else:
            self.state = os.path.join(run.output_dir, layout.STATE_DIR_NAME)
        for sub in ("programs", "logs"):
            os.makedirs(os.path.join(self.state, sub), exist_ok=True)
        self._program = os.path.join(self.state, "programs", f"{self._run_id}.pickle")
        layout.atomic_write(self._program, run.program_bytes)
        self._script = os.path.join(self.state, "task.sh")
        layout.atomic_write(self._script, f'#!/bin/sh\nexec "{sys.executable}" -m '
                                          f'acme_slurm.task "$@"\n'.encode())
        self._chunks: list[Chunk] = []
        self._wanted: dict[int, int] = {}          # call -> attempt the run loop waits for
        self._split: dict[int, Any] = {}           # call -> its split values (or blob)
        self._pickled = False
        self._pending: dict[int, None] = {}        # calls waiting for a chunk
        self._escalated: list[tuple[int, Request]] = []
        self._held: dict[int, Chunk] = {}          # call -> the live chunk that will run it
        self._available: dict[int, BatchOutcome] = {}   # call -> earlier run's part
        self._asked: list[int] = []                       # of those, submitted again
        self._ready: list[BatchOutcome] = []
        self._sys_attempts: Counter[int] = Counter()
        self._request_of: dict[int, Request] = {}
        self._seconds, self._count = 0.0, 0                 # calls after a task's first
        self._first_seconds, self._first_count = 0.0, 0     # a task's first calls
        self._pilot_at: float | None = None
        self._first_added = self._last_added = 0.0
        self._last_poll = self._last_scan = time.monotonic()
        self._groups = 0
        self._interrupted = False
        self._started = True
        # cancels the run's arrays should this process die (SIGKILL, the OOM killer), unless
        # they are meant to outlive it (on_interrupt="detach")
        self._reaper = Reaper() if self.opts.on_interrupt == "cancel" else None
        self._reattach()

    def _partition(self, name: str) -> slurmctl.Partition:
        if name not in self._partitions:
            self._partitions[name] = slurmctl.partition(name)
        return self._partitions[name]

    # ------------------------------------------------------------------ re-attach
    def _reattach(self) -> None:
        """Adopt the chunks an earlier ParallelMap on this folder left (see module doc)."""
        old = [name for name in os.listdir(self.state) if name.startswith("g")
               and os.path.isfile(os.path.join(self.state, name, "meta.pickle"))]
        self._groups = 1 + max((int(n[1:]) for n in old), default=-1)
        chunks = []
        for group in old:
            meta = layout.read_pickle(os.path.join(self.state, group, "meta.pickle"))
            for job, offset, count in meta["arrays"]:
                for task in range(count):
                    chunks.append(Chunk(group, offset + task, meta["chunks"][offset + task],
                                        meta["request"], meta["run_id"], f"{job}_{task}"))
        if not chunks:
            return
        states = slurmctl.squeue_states(sorted({c.job.split("_")[0] for c in chunks}))
        live = 0
        self._scan_all(chunks)
        for chunk in chunks:
            chunk.state = states.get(chunk.job, "")
            if chunk.state in slurmctl.LIVE_STATES and not chunk.settled:
                live += 1
                self._chunks.append(chunk)
                self._held.update((i, chunk) for i in chunk.indices if i not in chunk.covered)
        if self._reaper is not None:   # adopted: this process cancels them should it die
            for array in self._live_arrays():
                self._reaper.add(["scancel"], array)
        held = len(self._held)
        log.info(f"slurm-array: re-attached to {self.state}: {len(self._available)} results "
                 f"of earlier tasks, {live} tasks still queued or running ({held} calls)")

    # ------------------------------------------------------------------ submit
    def submit(self, batch: CallBatch) -> None:
        now = time.monotonic()
        splits = batch.split or (None,) * len(batch.indices)
        self._pickled = batch.pickled
        for index, split in zip(batch.indices, splits, strict=True):
            self._wanted[index] = batch.attempt
            if batch.split is not None:
                self._split[index] = split
            if index in self._available:
                self._asked.append(index)
            elif index not in self._held:
                if not self._pending:
                    self._first_added = now
                self._pending[index] = None
                self._last_added = now

    def collect(self, timeout: float | None) -> list[BatchOutcome]:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        self._hand_over_available()
        while True:
            self._send()
            if time.monotonic() - self._last_scan >= SCAN_SECONDS:
                self._last_scan = time.monotonic()
                self._scan_all(self._chunks)
            if time.monotonic() - self._last_poll >= self.opts.poll_interval:
                self._poll()
            self._chunks = [c for c in self._chunks if not c.settled]
            if self._ready or time.monotonic() >= deadline:
                ready, self._ready = self._ready, []
                return ready
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    # ------------------------------------------------------------------ chunks out
    def _mean(self) -> float | None:
        """Measured seconds per call (None: nothing measured yet)."""
        if self._count:
            return self._seconds / self._count
        return self._first_seconds / self._first_count if self._first_count else None

    def _send(self) -> None:
        """Submit escalated calls at once, and buffered ones once the linger is over."""
        if self._escalated:
            by_request: dict[Request, list[int]] = {}
            for index, request in self._escalated:
                by_request.setdefault(request, []).append(index)
            self._escalated = []
            for request, calls in by_request.items():
                self._submit_group(calls, 1, request, self._mean())
        calls = [i for i in self._pending if i in self._wanted and i not in self._held]
        if not calls:
            self._pending.clear()
            return
        now = time.monotonic()
        if now - self._last_added < LINGER and now - self._first_added < LINGER_MAX:
            return
        mean, fixed = self._mean(), self.opts.calls_per_task
        if mean is None and fixed is None:
            if self._pilot_at is None:
                pilot = calls[:PILOT_TASKS * PILOT_CALLS]
                for index in pilot:
                    del self._pending[index]
                self._pilot_at = now
                per_task = max(1, math.ceil(len(pilot) / PILOT_TASKS))
                self._submit_group(pilot, per_task, self._base, None)
                return
            mean = self._pilot_lower_bound()
            if mean is None:
                return
        self._pending.clear()
        size = fixed or self._chunk_size(len(calls), mean or 0.0)
        self._submit_group(calls, size, self._base, mean)

    def _pilot_lower_bound(self) -> float | None:
        """While the pilot runs: None, or after ``probe_wait`` s of the first pilot task
        running without a result, that time (calls take at least this long)."""
        starts = [layout.read_json(os.path.join(layout.task_dir(self.state, c.group, c.number),
                                                "start.json")) for c in self._chunks]
        times = [s["time"] for s in starts if s]
        if not times:
            return None
        running = time.time() - min(times)
        return running if running >= self.opts.probe_wait else None

    def _chunk_size(self, n: int, mean: float) -> int:
        """Calls per task: about ``task_minutes`` of work each, at least one task per slot
        (tasks rounded up to a multiple of the slots), within ``MaxJobCount``."""
        target = 60 * self.opts.task_minutes
        by_time = max(1, int(target / max(mean, 1e-6)))
        tasks = max(math.ceil(n / by_time), min(n, self._slots))
        if tasks > self._slots:
            tasks = min(n, self._slots * math.ceil(tasks / self._slots))
        tasks = max(1, min(tasks, int(JOB_SHARE * self._limits.max_job_count)))
        return math.ceil(n / tasks)

    def _minutes(self, request: Request, size: int, mean: float | None) -> Request:
        """``request`` with a time limit for ``size`` calls of ``mean`` s (unless given)."""
        if self.opts.walltime is not None or request is not self._base:
            return request
        expected = size * (mean or 0.0)
        minutes = max(2 * self.opts.task_minutes, 3 * expected / 60) + 5
        cap = self._partition(request.partition).max_minutes
        return Request(request.partition, request.mem_mb,
                       int(min(math.ceil(minutes), cap or math.inf)), request.cores)

    def _submit_group(self, calls: list[int], size: int, request: Request,
                      mean: float | None) -> None:
        request = self._minutes(request, size, mean)
        group = f"g{self._groups}"
        self._groups += 1
        os.makedirs(layout.group_dir(self.state, group))
        pieces = [tuple(calls[k:k + size]) for k in range(0, len(calls), size)]
        for number, indices in enumerate(pieces):
            split = (tuple(self._split[i] for i in indices) if self._split else None)
            attempt = min(self._wanted.get(i, 1) for i in indices)
            layout.write_pickle(layout.chunk_file(self.state, group, number),
                                CallBatch(self._run_id, indices, split, self._pickled, attempt))
        meta = {"program": self._program, "run_id": self._run_id,
                "sys_path": self._run.sys_path, "minutes": request.minutes,
                "call_seconds": mean, "request": request, "chunks": pieces, "arrays": [],
                "timeout": self.settings.timeout}
        chunks = [Chunk(group, n, idx, request, self._run_id) for n, idx in enumerate(pieces)]
        for chunk in chunks:
            self._held.update((i, chunk) for i in chunk.indices)
            self._request_of.update((i, request) for i in chunk.indices)
        self._chunks += chunks
        per_array = self._limits.max_array_size
        offsets = range(0, len(pieces), per_array)
        throttle = self.opts.max_jobs
        if throttle is not None:
            throttle = max(1, throttle // len(offsets))
        for offset in offsets:
            count = min(per_array, len(pieces) - offset)
            job = self._sbatch(group, offset, count, throttle, request)
            for task in range(count):
                chunks[offset + task].job = f"{job}_{task}"
            meta["arrays"].append((job, offset, count))
            layout.write_pickle(os.path.join(self.state, group, "meta.pickle"), meta)

    def _sbatch(self, group: str, offset: int, count: int, throttle: int | None,
                request: Request) -> str:
        array = f"0-{count - 1}" + (f"%{throttle}" if throttle else "")
        args = [f"--array={array}", f"--job-name={self.opts.job_name}",
                f"--output={os.path.join(self.state, 'logs', '%A_%a.out')}",
                "--open-mode=append", *request.sbatch_args(), *self.opts.job_extra]
        if self._reaper is not None:
            args = self._reaper.tag_slurm_jobs(args)
        job = slurmctl.sbatch(args, self._script, [self.state, group, str(offset)])
        if self._reaper is not None:
            self._reaper.add(["scancel"], job)
        with open(os.path.join(self.state, "submissions.log"), "a") as fh:
            fh.write(f"{job} {group} offset={offset} tasks={count} {' '.join(args)}\n")
        log.info(f"slurm-array: submitted array {job} ({count} tasks, {group}, "
                 f"{' '.join(request.sbatch_args())})")
        return job

    # ------------------------------------------------------------------ outcomes in
    def _scan_all(self, chunks: list[Chunk]) -> None:
        """Read the new part files of ``chunks``: one directory listing per group."""
        by_group: dict[str, dict[int, Chunk]] = {}
        for chunk in chunks:
            by_group.setdefault(chunk.group, {})[chunk.number] = chunk
        for group, members in by_group.items():
            folder = layout.group_dir(self.state, group)
            for number, names in layout.group_parts(folder).items():
                if number in members:
                    self._read_parts(members[number], folder, names)
            for chunk in members.values():
                if chunk.covered.issuperset(chunk.indices):
                    self._settle(chunk)

    def _scan(self, chunk: Chunk) -> None:
        """:meth:`_scan_all` of one chunk."""
        self._scan_all([chunk])

    def _read_parts(self, chunk: Chunk, folder: str, names: list[str]) -> None:
        """Hand over what the run loop waits for from the chunk's parts not read yet."""
        for name in names:
            if name in chunk.parts_read:
                continue
            try:
                part: BatchOutcome = layout.read_pickle(os.path.join(folder, name))
            except Exception as exc:  # noqa: BLE001 - a part must be whole (renamed into place)
                log.warning(f"slurm-array: unreadable outcome file {folder}/{name}: {exc}")
                chunk.parts_read.add(name)
                continue
            chunk.parts_read.add(name)
            chunk.covered.update(part.indices)
            self._take(chunk, part)

    def _take(self, chunk: Chunk, part: BatchOutcome) -> None:
        """Outcomes of this run's chunks go to the run loop; an earlier run's successful
        ones wait in ``_available`` until the run loop asks for their calls, its failed
        ones are dropped (those calls run again)."""
        current = chunk.generation == self._run_id
        keep = set()
        for index in part.indices:
            if current:
                if index in self._wanted:
                    keep.add(index)
            elif index in part.failures:
                if self._held.get(index) is chunk:
                    self._back(index)
            elif index in self._wanted:
                keep.add(index)
            else:
                self._available[index] = part
        first = None
        if not chunk.first_seen:
            chunk.first_seen, first = True, part.indices[0]
        self._measure(part, first)
        if keep:
            self._deliver(part, keep)

    def _measure(self, part: BatchOutcome, first: int | None) -> None:
        """Add the part's successful call times to the estimate; a task's first call pays
        for imports and opening files, so it counts only while nothing else is known."""
        for index, duration in zip(part.indices, part.durations, strict=True):
            if index in part.failures:
                continue
            if index == first:
                self._first_seconds += duration
                self._first_count += 1
            else:
                self._seconds += duration
                self._count += 1

    def _hand_over_available(self) -> None:
        """Deliver the earlier run's results of calls the run loop submitted, per part."""
        by_part: dict[int, tuple[BatchOutcome, set[int]]] = {}
        for index in self._asked:
            part = self._available.pop(index)
            by_part.setdefault(id(part), (part, set()))[1].add(index)
        self._asked = []
        for part, keep in by_part.values():
            self._deliver(part, keep)

    def _deliver(self, part: BatchOutcome, keep: set[int]) -> None:
        """Hand the calls ``keep`` of ``part`` to the run loop, each at its wanted attempt."""
        if keep != set(part.indices):
            part = part.without(set(part.indices) - keep)
        by_attempt: dict[int, set[int]] = {}
        for index in part.indices:
            by_attempt.setdefault(self._wanted.pop(index), set()).add(index)
            if self._held.get(index) is not None:
                del self._held[index]
            self._pending.pop(index, None)
        for attempt, indices in by_attempt.items():
            out = part if len(by_attempt) == 1 else part.without(set(part.indices) - indices)
            out.attempt = attempt
            for failure in out.failures.values():
                failure.attempts = attempt
            self._ready.append(out)

    def _back(self, index: int) -> None:
        """Call ``index`` goes back to be run (its task ended before it ran)."""
        if index in self._wanted:
            self._held.pop(index, None)
            if not self._pending:
                self._first_added = time.monotonic()
            self._pending[index] = None
            self._last_added = time.monotonic()

    def _settle(self, chunk: Chunk) -> None:
        chunk.settled = True
        for index in chunk.indices:
            if self._held.get(index) is chunk:
                del self._held[index]

    # ------------------------------------------------------------------ dead tasks
    def _poll(self) -> None:
        """One ``squeue`` for every task of the run; bury those that died."""
        self._last_poll = time.monotonic()
        active = [c for c in self._chunks if not c.settled and c.job]
        if not active:
            return
        states = slurmctl.squeue_states(sorted({c.job.split("_")[0] for c in active}))
        records: dict[str, dict[str, dict[str, str]]] = {}
        for chunk in active:
            chunk.state = states.get(chunk.job, "")
            if chunk.state in slurmctl.LIVE_STATES:
                chunk.missing = 0
                continue
            if not chunk.state and chunk.missing == 0:
                chunk.missing = 1       # just submitted, or a controller hiccup: next time
                continue
            self._scan(chunk)
            if not chunk.settled:
                self._bury(chunk, records)

    def _bury(self, chunk: Chunk, records: dict[str, dict[str, dict[str, str]]]) -> None:
        folder = layout.task_dir(self.state, chunk.group, chunk.number)
        self._settle(chunk)
        left = [i for i in chunk.indices if i not in chunk.covered and i in self._wanted
                and i not in self._held]
        if not left:
            return
        ended = layout.read_json(os.path.join(folder, "end.json"))
        started = layout.read_json(os.path.join(folder, "start.json"))
        if ended is not None or started is None:
            # it stopped by itself (walltime, SIGTERM) or never ran: nothing failed
            why = f"stopped ({ended['reason']})" if ended else "never started"
            log.info(f"slurm-array: task {chunk.job} {why}, SLURM state "
                     f"{chunk.state or 'unknown'}: its {len(left)} unstarted calls go back "
                     f"to be run (not counted as failures).")
            for index in left:
                if started is None:
                    self._sys_attempts[index] += 1
                if started is None and self._sys_attempts[index] > self.policy.max_attempts:
                    self._fail(index, chunk, LOST, "its task never started "
                               f"({self._sys_attempts[index]} times)")
                else:
                    self._back(index)
            return
        culprit, rest = left[0], left[1:]
        for index in rest:
            self._back(index)
        end = self._task_end(chunk, folder, records)
        kind = classify(end)
        self._sys_attempts[culprit] += 1
        self._escalate(culprit, chunk, kind, end)

    def _task_end(self, chunk: Chunk, folder: str,
                  records: dict[str, dict[str, dict[str, str]]]) -> TaskEnd:
        array = chunk.job.split("_")[0]
        if array not in records:
            records[array] = slurmctl.job_records(array)
            if any(k not in records[array] for k in (chunk.job,)):
                records[array].update(slurmctl.sacct_records(array))
        fields = records[array].get(chunk.job, {})
        beat = layout.read_json(os.path.join(folder, "heartbeat.json")) or {}
        request = chunk.request
        mem = request.mem_mb or self._partition(request.partition).default_mem(request.cores)
        return TaskEnd(fields.get("JobState", chunk.state), fields.get("ExitCode", ""),
                       fields.get("Reason", ""), beat.get("peak_mb"), mem,
                       self._log_tail(chunk))

    def _log_tail(self, chunk: Chunk) -> str:
        path = os.path.join(self.state, "logs", f"{chunk.job}.out")
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(path) - 4000))
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def _escalate(self, index: int, chunk: Chunk, kind: str, end: TaskEnd) -> None:
        request = self._request_of.get(index, chunk.request)
        part = self._partition(request.partition)
        mem_limit = part.mem_limit(request.cores)
        if getattr(self.policy, "larger_partition", None) and part.max_mem_per_cpu:
            mem_limit = part.max_mem_per_cpu * request.cores   # a ladder: rungs, not more CPUs
        limits = Limits(mem_limit, part.max_minutes, part.default_mem(request.cores))
        attempt = self._sys_attempts[index]
        new = self.policy.next_request(kind, request, limits, attempt)
        what = (f"call {index}: task {chunk.job} ended {end.state or 'unknown'} "
                f"ExitCode={end.exit_code or '?'} (peak RSS {end.peak_mb} MB of {end.mem_mb} MB)"
                f": {kind}")
        if new is None:
            self._fail(index, chunk, kind, f"{what}; attempt {attempt} of at most "
                       f"{self.policy.max_attempts}, no larger request possible or allowed")
            return
        change = " ".join(a for a in new.sbatch_args() if a not in request.sbatch_args())
        log.warning(f"slurm-array: {what}; re-submitting {change or 'as it was'} "
                    f"(attempt {attempt + 1} of {self.policy.max_attempts}).")
        self._request_of[index] = new
        self._escalated.append((index, new))

    def _fail(self, index: int, chunk: Chunk, kind: str, message: str) -> None:
        worker = f"slurm-{chunk.job}"
        failure = Failure(index, kind, "SlurmTaskDied", message, "", worker)
        out = BatchOutcome((index,), [None], [0.0], {index: failure}, worker)
        self._deliver(out, {index})

    # ------------------------------------------------------------------ end of run
    def status(self) -> dict[str, int]:
        if not self._started:
            return {}
        return {"queued": sum(1 for c in self._chunks if c.state == "PENDING")}

    def _live_arrays(self) -> list[str]:
        return sorted({c.job.split("_")[0] for c in self._chunks if not c.settled and c.job})

    def cancel(self) -> None:
        """Ctrl-C: cancel the run's array tasks, or leave them (``on_interrupt="detach"``)."""
        if not self._started:
            return
        self._interrupted = True
        arrays = self._live_arrays()
        if self.opts.on_interrupt == "detach":
            where = ("" if self._private else f"; create the same ParallelMap with output_dir="
                     f"{os.path.dirname(self.state)!r} to collect their results")
            log.warning(f"slurm-array: leaving arrays {', '.join(arrays) or '(none)'} running"
                        + where + ".")
            return
        slurmctl.scancel(arrays)
        log.info(f"slurm-array: cancelled arrays {', '.join(arrays) or '(none)'}.")

    def close(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._reaper is not None:
            self._reaper.close()
        detached = self._interrupted and self.opts.on_interrupt == "detach"
        if detached:
            return
        if self._private:
            shutil.rmtree(self.state, ignore_errors=True)
            return
        if not self._live_arrays():
            # nothing left to re-attach to: drop programs and chunks, keep logs
            for name in os.listdir(self.state):
                if name.startswith("g") or name == "programs":
                    shutil.rmtree(os.path.join(self.state, name), ignore_errors=True)
