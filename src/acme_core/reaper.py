"""A small process that cleans up after a run whose process was killed.

Some of what a run starts does not end with the process that started it: SLURM jobs keep
running (or waiting in the queue) when their submitter is SIGKILLed, e.g. by the OOM
killer. A plugin that starts such things hands a :class:`Reaper` the commands that end
them (``scancel <job>``); the reaper is a child process in its own session, so a signal to
the run's process group does not reach it, and it runs those commands as soon as its
parent is gone: it notices at once through the end of the pipe the parent holds (the
kernel closes it whatever killed the parent), and within :data:`CHECK_SECONDS` through
its parent pid should the pipe have leaked into a forked child. A job whose
``sbatch`` was still running when the parent died gets its id only after that, so SLURM
plugins also tag their jobs (``--comment``, :meth:`Reaper.tag_slurm_jobs`) and the reaper
sweeps the queue for the tag, at once and twice more within seconds. When the run ends
normally the parent says so and the reaper exits without running anything.

It holds none of the parent's terminal or output pipes (its stdout and stderr are
``/dev/null``), so a caller reading the run's output sees its end when the run ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import IO, Any

#: Seconds between two checks that the parent process still lives.
CHECK_SECONDS = 0.5
#: Pauses before the sweeps after the first (a submission the dead parent had started
#: may finish after it died).
SWEEP_AGAIN = (2.0, 3.0)


class Reaper:
    """The parent's handle on its reaper process (see the module docstring).

    Examples
    --------
    >>> from acme_core.reaper import Reaper
    >>> reaper = Reaper()
    >>> reaper.add(["true"], "argument")      # runs `true argument` if this process dies
    >>> reaper.close()                        # this process did not die: nothing runs
    >>> reaper.wait(timeout=30)
    0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "acme_core.reaper", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
        self._pipe: IO[bytes] | None = self._proc.stdin
        self._swept = False

    def add(self, command: list[str], *items: str) -> None:
        """Run ``command + items`` if this process dies; items added to the same
        ``command`` later are joined into one run of it (one ``scancel`` for every job)."""
        self._send({"command": list(command), "items": list(items)})

    def add_sweep(self, listing: list[str], marker: str, command: list[str]) -> None:
        """If this process dies: run ``listing``, and ``command`` with the first word of
        every line of its output that contains ``marker`` (e.g. the jobs tagged with this
        run's marker, one of which a submission this process started may have made after
        it died); again :data:`SWEEP_AGAIN` seconds later for such late ones."""
        self._send({"sweep": list(listing), "marker": marker, "command": list(command)})

    def tag_slurm_jobs(self, extra: list[str]) -> list[str]:
        """``extra`` (sbatch options) with a ``--comment`` that marks the jobs of this run
        (unless ``extra`` has a comment of its own), and a sweep that cancels the jobs so
        marked should this process die, one submitted while it died included."""
        if any(option.startswith("--comment") for option in extra):
            return list(extra)
        marker = slurm_marker(self._proc.pid)
        if not self._swept:
            self._swept = True
            self.add_sweep(["squeue", "-h", "-u", str(os.getuid()), "-o", "%i %k"], marker,
                           ["scancel"])
        return [*extra, f"--comment={marker}"]

    def close(self) -> None:
        """The things to end have ended (or are kept on purpose): the reaper exits and runs
        nothing. Safe to call more than once."""
        with self._lock:
            pipe, self._pipe = self._pipe, None
            if pipe is None:
                return
            try:
                pipe.write(b'{"done": true}\n')
                pipe.close()
            except OSError:
                pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)     # it exits at once; no zombie, no warning

    def wait(self, timeout: float | None = None) -> int:
        """The reaper's exit code, once it has exited."""
        return self._proc.wait(timeout)

    def _send(self, message: dict[str, object]) -> None:
        with self._lock:
            if self._pipe is None:
                raise RuntimeError("this reaper was closed")
            self._pipe.write(json.dumps(message).encode() + b"\n")
            self._pipe.flush()


def slurm_marker(reaper_pid: int) -> str:
    """A SLURM ``--comment`` that tags the jobs of one run, for :meth:`Reaper.tag_slurm_jobs`.

    Examples
    --------
    >>> from acme_core.reaper import slurm_marker
    >>> slurm_marker(123).startswith("acme-reaper-")
    True
    """
    import socket

    return f"acme-reaper-{socket.gethostname()}-{reaper_pid}"


def _swept(message: dict[str, Any]) -> list[str]:
    """The command of a sweep message with the items its listing found (empty: none)."""
    try:
        out = subprocess.run(message["sweep"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [*message["command"], *found] if (found := tagged(out, message["marker"])) else []


def tagged(listing: str, marker: str) -> list[str]:
    """The first words (job ids) of the lines of ``listing`` whose second word is exactly
    ``marker``: another run's marker may contain this one (pid 12 in pid 123).

    Examples
    --------
    >>> from acme_core.reaper import tagged
    >>> tagged("7 acme-reaper-n1-12\\n8 acme-reaper-n1-123\\n9 (null)", "acme-reaper-n1-12")
    ['7']
    """
    return [words[0] for words in (line.split(None, 1) for line in listing.splitlines())
            if len(words) == 2 and words[1].strip() == marker]


def _commands(messages: list[dict[str, Any]]) -> list[list[str]]:
    """The commands to run, one per distinct command with all of its items.

    Examples
    --------
    >>> from acme_core.reaper import _commands
    >>> _commands([{"command": ["scancel"], "items": ["1"]},
    ...            {"command": ["scancel"], "items": ["2", "3"]}])
    [['scancel', '1', '2', '3']]
    """
    joined: dict[tuple[str, ...], list[str]] = {}
    for message in messages:
        if "sweep" in message:
            continue
        joined.setdefault(tuple(message["command"]), []).extend(message["items"])
    return [[*command, *items] for command, items in joined.items()]


def watch(parent: int, stream: IO[bytes]) -> list[dict[str, Any]]:
    """Read the parent's messages until it says it is done (return nothing to do) or it is
    gone (return its messages)."""
    messages: list[dict[str, Any]] = []
    buffered = b""
    fd = stream.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], CHECK_SECONDS)
        if not ready:
            if os.getppid() != parent:
                break                  # re-parented: the parent died (the pipe leaked)
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break                      # the pipe's end: the parent died
        buffered += chunk
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if message.get("done"):
                return []
            messages.append(message)
    return messages


def _run(command: list[str]) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=False)


def main(argv: list[str]) -> int:
    """Entry point: ``python -m acme_core.reaper <parent pid>``."""
    messages = watch(int(argv[0]), sys.stdin.buffer)
    for command in _commands(messages):
        _run(command)
    sweeps = [m for m in messages if "sweep" in m]
    for delay in (0.0, *SWEEP_AGAIN) if sweeps else ():
        time.sleep(delay)
        for sweep in sweeps:
            command = _swept(sweep)
            if command:
                _run(command)
    return 0


if __name__ == "__main__":  # pragma: no cover - runs as its own process
    sys.exit(main(sys.argv[1:]))
