"""What one array task runs: ``python -m acme_slurm.task <state dir> <group> <offset>``.

The task's chunk is ``<offset> + $SLURM_ARRAY_TASK_ID`` of the group. It runs the chunk's
calls through :func:`acme_core.calls.run_batch` (so results go through the run's storage
writer, as on every backend), a few at a time, and writes their outcomes to part files
at least every second. Beside them it keeps ``start.json``, ``heartbeat.json`` (with its
peak RSS, what tells a memory kill from other kills when SLURM has no cgroups) and
``end.json``.

It stops taking calls when its remaining walltime is below what the next call is
expected to need, and on SIGTERM (``scancel``, preemption, the time limit) after the
calls it is running: the calls it did not start have no outcome and go back to the run,
never counted as failures. A requeued task (same chunk again) skips the calls whose
outcomes it wrote before.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
import time
from typing import Any

from acme_core.calls import (
    TIMEOUT,
    BatchOutcome,
    CallBatch,
    CallMarks,
    Failure,
    ProgramFile,
    run_batch,
    set_call_record,
    worker_name,
)

from . import layout

#: Seconds between part files (outcomes) and between heartbeats.
PART_SECONDS = 1.0
HEARTBEAT_SECONDS = 1.0
#: Seconds of work one run_batch call holds (between checks of SIGTERM and walltime).
STEP_SECONDS = 0.25
#: Seconds kept free before the time limit for writing the last outcomes.
MARGIN_SECONDS = 10.0


def rss_mb() -> tuple[float, float]:
    """This process's (RSS, peak RSS) in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        now = pages * os.sysconf("SC_PAGE_SIZE") / 1024**2
    except (OSError, ValueError, IndexError):
        now = peak
    return now, peak


class CallTimer:
    """The call this task runs and since when (its :class:`~acme_core.calls.CallRecord`)."""

    def __init__(self) -> None:
        self._marks = CallMarks.new()

    def marks(self) -> CallMarks:
        return self._marks

    def idle(self) -> None:
        self._marks.index[0] = -1

    @property
    def current(self) -> tuple[int, float] | None:
        """``(call, start)`` (``time.monotonic()`` seconds) of the call running, or None."""
        return self._marks.running()


class Heartbeat(threading.Thread):
    """Writes ``heartbeat.json`` every ``HEARTBEAT_SECONDS`` until stopped, and calls
    ``check`` after each beat."""

    def __init__(self, path: str, done: list[int], check: Any = None) -> None:
        super().__init__(daemon=True, name="acme-slurm-heartbeat")
        self.path, self.done, self.stop = path, done, threading.Event()
        self.check = check

    def beat(self) -> None:
        now, peak = rss_mb()
        layout.write_json(self.path, {"time": time.time(), "rss_mb": round(now, 1),
                                      "peak_mb": round(peak, 1), "done": self.done[0]})

    def run(self) -> None:
        while not self.stop.wait(HEARTBEAT_SECONDS):
            self.beat()
            if self.check is not None:
                self.check()


def merge(outcomes: list[BatchOutcome]) -> BatchOutcome:
    """One BatchOutcome of several (same worker and attempt)."""
    first = outcomes[0]
    merged = BatchOutcome((), [], [], {}, first.worker, first.attempt)
    for out in outcomes:
        merged.indices += out.indices
        merged.values += out.values
        merged.durations += out.durations
        merged.failures.update(out.failures)
    return merged


def already_done(group_dir: str, chunk: int) -> set[int]:
    """Calls whose outcomes an earlier run of this task (before a requeue) wrote."""
    done: set[int] = set()
    for name in layout.group_parts(group_dir).get(chunk, []):
        try:
            done.update(layout.read_pickle(os.path.join(group_dir, name)).indices)
        except Exception:  # noqa: BLE001 - a torn part: its calls simply run again
            continue
    return done


def sub_batch(batch: CallBatch, positions: list[int]) -> CallBatch:
    """The calls at ``positions`` of ``batch``."""
    split = None if batch.split is None else tuple(batch.split[p] for p in positions)
    return CallBatch(batch.run_id, tuple(batch.indices[p] for p in positions), split,
                     batch.pickled, batch.attempt)


class Task:
    """One array task's run over its chunk (see the module docstring)."""

    def __init__(self, state: str, group: str, chunk: int) -> None:
        self.meta: dict[str, Any] = layout.read_pickle(os.path.join(state, group, "meta.pickle"))
        self.batch: CallBatch = layout.read_pickle(layout.chunk_file(state, group, chunk))
        self.folder = layout.task_dir(state, group, chunk)
        os.makedirs(self.folder, exist_ok=True)
        self.group_dir, self.chunk = layout.group_dir(state, group), chunk
        self.ref = ProgramFile(self.meta["program"], self.meta["run_id"], self.meta["sys_path"])
        self.deadline = time.time() + 60 * self.meta["minutes"] - MARGIN_SECONDS
        self.expected = float(self.meta.get("call_seconds") or 0.0)
        self.sigterm = False
        self.seq = len(layout.group_parts(self.group_dir).get(chunk, []))
        self.counter = [0]
        self.limit: float | None = self.meta.get("timeout")
        self.timer = CallTimer()
        self.buffer: list[BatchOutcome] = []

    def check_limit(self) -> None:
        """In the heartbeat thread: a call over ``timeout=`` fails with kind ``timeout``;
        the outcomes not written yet and that failure are written, and the task ends at
        once (its unstarted calls go back to the run, as after SIGTERM)."""
        current = self.timer.current
        if self.limit is None or current is None:
            return
        index, start = current
        if time.monotonic() - start <= self.limit:
            return
        where = worker_name()
        message = (f"the call ran longer than timeout={self.limit:g} s and its task "
                   f"{where} was ended")
        failure = Failure(index, TIMEOUT, "CallTimeout", message, "", where, self.batch.attempt)
        self.write_part([*self.buffer, BatchOutcome((index,), [None], [0.0], {index: failure},
                                                    where, self.batch.attempt)])
        layout.write_json(os.path.join(self.folder, "end.json"),
                          {"reason": "call-timeout", "ran": self.counter[0], "time": time.time()})
        print(f"acme_slurm task: call {index} over timeout={self.limit:g} s", flush=True)
        os._exit(0)

    def on_sigterm(self, signum: int, frame: Any) -> None:
        self.sigterm = True

    def write_start(self) -> None:
        env = os.environ
        layout.write_json(os.path.join(self.folder, "start.json"), {
            "job": f"{env.get('SLURM_ARRAY_JOB_ID', '')}_{env.get('SLURM_ARRAY_TASK_ID', '')}",
            "job_id": env.get("SLURM_JOB_ID", ""), "node": env.get("SLURMD_NODENAME", ""),
            "pid": os.getpid(), "time": time.time(),
            "restarts": int(env.get("SLURM_RESTART_COUNT", 0) or 0)})

    def write_part(self, outcomes: list[BatchOutcome]) -> None:
        path = os.path.join(self.group_dir, layout.part_name(self.chunk, self.seq))
        layout.write_pickle(path, merge(outcomes))   # pickling flushes hdf5 shards first
        self.seq += 1

    def stop_reason(self, started: bool) -> str | None:
        if self.sigterm:
            return "sigterm"
        if started and time.time() + self.expected > self.deadline:
            return "walltime"
        return None

    def run(self) -> str:
        skip = already_done(self.group_dir, self.chunk)
        todo = [p for p, i in enumerate(self.batch.indices) if i not in skip]
        self.write_start()
        set_call_record(self.timer)
        beat = Heartbeat(os.path.join(self.folder, "heartbeat.json"), self.counter,
                         self.check_limit)
        beat.beat()
        beat.start()
        buffer = self.buffer
        last_write, step, reason, ran = time.monotonic(), 1, "done", 0
        while todo:
            why = self.stop_reason(started=ran > 0)
            if why is not None:
                reason = why
                break
            chosen, todo = todo[:step], todo[step:]
            start = time.monotonic()
            buffer.append(run_batch(self.ref, sub_batch(self.batch, chosen)))
            took = (time.monotonic() - start) / len(chosen)
            ran += len(chosen)
            self.counter[0] = ran
            self.expected = max(took, 0.8 * self.expected) if self.expected else took
            step = max(1, min(10000, int(STEP_SECONDS / max(took, 1e-6))))
            if time.monotonic() - last_write >= PART_SECONDS:
                self.write_part(buffer)
                buffer.clear()
                last_write = time.monotonic()
        if buffer:
            self.write_part(buffer)
        beat.stop.set()
        layout.write_json(os.path.join(self.folder, "end.json"),
                          {"reason": reason, "ran": ran, "time": time.time()})
        return reason


def main(argv: list[str]) -> int:
    """Entry point of an array task."""
    state, group, offset = argv[0], argv[1], int(argv[2])
    chunk = offset + int(os.environ["SLURM_ARRAY_TASK_ID"])
    task = Task(state, group, chunk)
    signal.signal(signal.SIGTERM, task.on_sigterm)
    reason = task.run()
    print(f"acme_slurm task {group}/c{chunk}: {reason} after {task.counter[0]} calls",
          flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover - runs inside SLURM
    sys.exit(main(sys.argv[1:]))
