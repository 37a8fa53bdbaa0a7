"""Measure the peak memory of sampled calls, for ``partition="auto"``.

The calls run one at a time, each in its own child process, on the submitting host. A
small helper process (``python -m acme_slurm_esi.probe``) loads the run's program once,
then forks one child per sampled call and reads the child's peak resident memory exactly
from ``os.wait4`` (``ru_maxrss``) when it ends. ACME sampled the RSS once a second and
missed short peaks; a fork from the caller itself would also count the caller's own
memory, since a forked child starts with its parent's resident pages.

The helper never calls the storage's writer, so probe calls write no result files (what
the function itself saves still happens, as in ACME). A call that runs longer than the
time cap is killed, and its peak so far counts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("acme_slurm_esi")


@dataclass(frozen=True)
class ProbeResult:
    """One measured call.

    Examples
    --------
    >>> from acme_slurm_esi.probe import ProbeResult
    >>> ProbeResult(index=3, peak_mb=2600.0, seconds=1.5, status="ok").peak_gb
    2.5390625
    """

    index: int
    peak_mb: float
    seconds: float
    status: str           # "ok", "error" (the call raised), "timeout", "killed by ..."

    @property
    def peak_gb(self) -> float:
        """The peak in GB (1024 MB, as SLURM and the partition names count)."""
        return self.peak_mb / 1024


def measure_calls(program_bytes: bytes, calls: list[tuple[int, Any]], time_cap: float,
                  sys_path: tuple[str, ...] = (), label: str = "call") -> list[ProbeResult]:
    """Run ``calls`` one after another in child processes; return each one's peak memory.

    Parameters
    ----------
    program_bytes : bytes
        The run's pickled :class:`~acme_core.calls.CallProgram`.
    calls : list of (int, object)
        Call index and its split values: None (the program carries them), the pickled
        bytes of the split tuple, or the tuple.
    time_cap : float
        Seconds one call may run before it is killed (its peak so far counts).
    sys_path : tuple of str
        Added to the helper's ``sys.path`` (the user's own modules).
    label : str
        The function's name, for the progress display.

    Returns
    -------
    list of ProbeResult
        In the order of ``calls``.

    Examples
    --------
    >>> import cloudpickle
    >>> from acme_core.calls import CallProgram
    >>> from acme_slurm_esi.probe import measure_calls
    >>> program = CallProgram("r", lambda n: len(b"x" * n), (("pos", "n", 0),), (), None,
    ...                       split=([200 * 2**20],))
    >>> [r] = measure_calls(cloudpickle.dumps(program), [(0, None)], time_cap=20)
    >>> r.status, 200 < r.peak_mb < 300       # 200 MB of bytes + the interpreter
    ('ok', True)
    """
    payload = pickle.dumps({"program": program_bytes, "sys_path": list(sys_path),
                            "calls": list(calls), "cap": float(time_cap)})
    proc = subprocess.Popen([sys.executable, "-m", "acme_slurm_esi.probe"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)
    lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    bar = _progress_bar(len(calls), label)
    try:
        assert proc.stdin is not None
        proc.stdin.write(payload)
        proc.stdin.close()
        results = _follow(lines, bar, len(calls), time_cap, label)
        proc.wait(timeout=30)
        if len(results) != len(calls):
            raise RuntimeError(f"The memory probe ended after {len(results)} of {len(calls)} "
                               f"calls (exit code {proc.returncode}).")
        return results
    finally:
        if bar is not None:
            bar.close()
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


def _follow(lines: queue.SimpleQueue[bytes | None], bar: Any, n_calls: int, time_cap: float,
            label: str) -> list[ProbeResult]:
    """The probe's results from its event lines, until its output ends."""
    results: list[ProbeResult] = []
    deadline = time.monotonic() + n_calls * (time_cap + 15) + 60
    current, started = None, time.monotonic()
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("The memory probe did not finish in time.")
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if bar is not None and current is not None:
                bar.set_postfix_str(f"call #{current}, {time.monotonic() - started:.0f}s")
            continue
        if line is None:
            return results
        event = json.loads(line)
        if event["event"] == "error":
            raise RuntimeError(f"The memory probe could not load the run's function and "
                               f"arguments in a new process: {event['message']}")
        if event["event"] == "start":
            current, started = event["index"], time.monotonic()
            if bar is not None:
                bar.set_description(f"Measuring memory of {label} call #{current}")
            continue
        result = ProbeResult(event["index"], event["maxrss_kib"] / 1024, event["seconds"],
                             event["status"])
        results.append(result)
        _report(result, len(results), n_calls, time_cap)
        if bar is not None:
            bar.update(1)


def _report(result: ProbeResult, k: int, n: int, time_cap: float) -> None:
    what = f"Memory probe {k}/{n}: call #{result.index} peaked at {result.peak_gb:.2f} GB " \
           f"in {result.seconds:.1f} s"
    if result.status == "ok":
        log.info(what)
    elif result.status == "timeout":
        log.warning(f"{what}: stopped at the time cap of {time_cap:g} s, so the estimate may "
                    f"be low.")
    elif result.status == "error":
        log.warning(f"{what}: the call raised (see its traceback above); its peak still counts.")
    else:
        log.warning(f"{what}: the process was killed ({result.status}); its peak still counts.")


def _progress_bar(total: int, label: str) -> Any:
    if sys.stderr is None or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, file=sys.stderr, desc=f"Measuring memory of {label}",
                bar_format="{desc}: {n}/{total} [{elapsed}{postfix}]")


# ---------------------------------------------------------------------------------- helper
def _emit(out: Any, **event: Any) -> None:
    out.write((json.dumps(event) + "\n").encode())
    out.flush()


def _run_child(program: Any, index: int, split: Any) -> None:
    """In the forked child: run one call, never store its result, never return."""
    code = 0
    try:
        os.dup2(2, 1)         # the function's prints must not mix with the protocol
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        args, kwargs = program.arguments(index, split)
        program.func(*args, **kwargs)
    except BaseException:  # noqa: BLE001 - reported through the exit code
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


def _wait(pid: int, cap: float, parent: int) -> tuple[str, Any]:
    deadline = time.monotonic() + cap
    delay = 0.005
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return ("ok" if code == 0 else "error" if code > 0 else f"killed by signal {-code}",
                    usage)
        if time.monotonic() > deadline or os.getppid() != parent:
            os.kill(pid, signal.SIGKILL)
            _, _, usage = os.wait4(pid, 0)
            return "timeout", usage
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def main() -> None:
    """The helper process: read the job from stdin, report one JSON line per event."""
    from acme_core.calls import PickledProgram, load_program

    parent = os.getppid()
    out = sys.stdout.buffer
    job = pickle.load(sys.stdin.buffer)
    try:
        program = load_program(PickledProgram(job["program"], "acme-memory-probe",
                                              tuple(job["sys_path"])))
    except Exception as exc:  # noqa: BLE001 - reported to the caller
        _emit(out, event="error", message=f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None
    for index, split in job["calls"]:
        if split is None:
            split = program.split_values(index)
        elif isinstance(split, bytes):
            split = pickle.loads(split)
        _emit(out, event="start", index=index)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _run_child(program, index, split)
        status, usage = _wait(pid, job["cap"], parent)
        if os.getppid() != parent:         # the caller is gone: nobody wants the rest
            os._exit(1)
        _emit(out, event="done", index=index, status=status, maxrss_kib=usage.ru_maxrss,
              seconds=round(time.monotonic() - start, 3))


if __name__ == "__main__":
    main()
