"""A small process that cleans up after a run whose process was killed.

Some of what a run starts does not end with the process that started it: SLURM jobs keep
running (or waiting in the queue) when their submitter is SIGKILLed, e.g. by the OOM
killer. A plugin that starts such things hands a :class:`Reaper` the commands that end
them (``scancel <job>``); the reaper is a child process in its own session, so a signal to
the run's process group does not reach it, and it runs those commands as soon as its
parent is gone: it notices at once through the end of the pipe the parent holds (the
kernel closes it whatever killed the parent), and within :data:`CHECK_SECONDS` through
its parent pid should the pipe have leaked into a forked child. When the run ends
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
from typing import IO

#: Seconds between two checks that the parent process still lives.
CHECK_SECONDS = 0.5


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

    def add(self, command: list[str], *items: str) -> None:
        """Run ``command + items`` if this process dies; items added to the same
        ``command`` later are joined into one run of it (one ``scancel`` for every job)."""
        self._send({"command": list(command), "items": list(items)})

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


def _commands(messages: list[dict[str, list[str]]]) -> list[list[str]]:
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
        joined.setdefault(tuple(message["command"]), []).extend(message["items"])
    return [[*command, *items] for command, items in joined.items()]


def watch(parent: int, stream: IO[bytes]) -> list[list[str]]:
    """Read the parent's messages until it says it is done (return nothing to run) or it
    is gone (return the commands to run)."""
    messages: list[dict[str, list[str]]] = []
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
    return _commands(messages)


def main(argv: list[str]) -> int:
    """Entry point: ``python -m acme_core.reaper <parent pid>``."""
    for command in watch(int(argv[0]), sys.stdin.buffer):
        try:
            subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
    return 0


if __name__ == "__main__":  # pragma: no cover - runs as its own process
    sys.exit(main(sys.argv[1:]))
