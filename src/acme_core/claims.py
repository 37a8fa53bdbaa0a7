"""Claims on a shared file system: at most one live process holds a key at a time.

A claim is a file created with ``O_CREAT | O_EXCL`` (atomic on local file systems and on
NFS v3 and later) holding its owner's host, pid and process start time. It is stale when
its owner is gone: on the same host, when the pid is dead or belongs to a newer process;
on another host, when its heartbeat (the file's modification time, refreshed every
``HEARTBEAT`` seconds while held) is older than ``STALE_AFTER`` seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from typing import Any

#: Seconds between refreshes of a held claim; a claim older than STALE_AFTER is stale.
HEARTBEAT = 20.0
STALE_AFTER = 120.0


def take(path: str) -> bool:
    """Claim ``path`` for this process; False when another process holds it.

    Examples
    --------
    >>> from acme_core import claims
    >>> path = str(tmp_path / "claim")
    >>> claims.take(path), claims.take(path)
    (True, False)
    >>> claims.break_if_stale(path)  # this process is alive
    False
    >>> claims.release(path)
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(_owner(), fh)
    _heartbeat.hold(path)
    return True


def release(path: str) -> None:
    """Give up this process's claim ``path``."""
    _heartbeat.drop(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def break_if_stale(path: str) -> bool:
    """Remove the claim ``path`` when its owner is gone; True when no claim is left."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        age = time.time() - os.path.getmtime(path)
    except FileNotFoundError:
        return True
    if not _stale(text, age):
        return False
    aside = f"{path}.stale-{uuid.uuid4().hex}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True
    with open(aside, encoding="utf-8") as fh:
        if fh.read() != text:  # re-claimed between our look and the rename: give it back
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
    os.unlink(aside)
    return True


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux), to tell a reused pid from its owner."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _start_time(pid),
            "time": time.time()}


def _stale(text: str, age: float) -> bool:
    try:
        owner = json.loads(text)
    except ValueError:
        return age > STALE_AFTER  # being written, or torn: only old ones are stale
    if owner.get("host") != socket.gethostname():
        return age > STALE_AFTER
    pid = int(owner.get("pid", 0))
    if pid <= 0:
        return age > STALE_AFTER
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return owner.get("start") is not None and _start_time(pid) != owner.get("start")


class _Heartbeat:
    """Refreshes the claims this process holds, so other hosts see their owner alive."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, path: str) -> None:
        with self._lock:
            self._held.add(path)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._beat, name="acme-store-claims",
                                                daemon=True)
                self._thread.start()

    def drop(self, path: str) -> None:
        with self._lock:
            self._held.discard(path)

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT)
            with self._lock:
                held = list(self._held)
            for path in held:
                with contextlib.suppress(OSError):
                    os.utime(path)


_heartbeat = _Heartbeat()
