"""What a worker process tells its parent without sending a message, and its exit when the
parent is gone.

Each worker keeps a small record file (``<pid>.rec`` in a folder its parent chose), mapped
into memory: the call it is running, when that call started, and a heartbeat a thread
refreshes every half second. The parent reads these files to find the call a dead worker
was running, a call over its time limit, or a worker that stopped (SIGSTOP, a hung node)
and so no longer beats. Writing the record costs two memory stores per call, no system
call, so tiny calls stay cheap. The same thread ends the worker when its parent process
dies (whatever killed it), so no worker outlives its run.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass

from .calls import CallMarks

#: call index (-1: none), the call's start (``time.monotonic()``, the host's clock) and the
#: last heartbeat (``time.time()``), in native byte order (the worker writes the first two
#: through typed memory views)
_LAYOUT = struct.Struct("=qdd")
_BEAT = struct.Struct("=d")
#: Seconds between two heartbeats (and two checks that the parent lives).
BEAT_SECONDS = 0.5


@dataclass(frozen=True)
class WorkerState:
    """One worker's record as its parent reads it.

    Examples
    --------
    >>> from acme_core.worker_watch import WorkerState
    >>> WorkerState(pid=12, index=-1, started=0.0, beat=5.0).running
    False
    """

    pid: int
    index: int
    started: float
    beat: float

    @property
    def running(self) -> bool:
        """True while the worker runs a call."""
        return self.index >= 0


class RecordFile:
    """The worker's side: a :class:`~acme_core.calls.CallRecord` in ``folder/<pid>.rec``.

    Examples
    --------
    >>> import os, tempfile
    >>> from acme_core.worker_watch import RecordFile, read_states
    >>> folder = tempfile.mkdtemp()
    >>> record = RecordFile(folder)
    >>> marks = record.marks()
    >>> marks.start[0] = 100.0; marks.index[0] = 7   # what the call loop writes per call
    >>> [(s.index, s.started) for s in read_states(folder)]
    [(7, 100.0)]
    >>> record.idle()
    >>> read_states(folder)[0].running
    False
    """

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, f"{os.getpid()}.rec")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, _LAYOUT.size)
            self._map = mmap.mmap(fd, _LAYOUT.size)
        finally:
            os.close(fd)
        _LAYOUT.pack_into(self._map, 0, -1, 0.0, time.time())
        # typed views of the map, which the call loop writes once per call: one store each
        view = memoryview(self._map)
        self._marks = CallMarks(view[0:8].cast("q"), view[8:16].cast("d"))

    def marks(self) -> CallMarks:
        """The call marks, in the mapped file."""
        return self._marks

    def idle(self) -> None:
        """No call is running."""
        self._marks.index[0] = -1

    def beat(self) -> None:
        """The worker is alive."""
        _BEAT.pack_into(self._map, 16, time.time())


def read_states(folder: str) -> list[WorkerState]:
    """Every record in ``folder`` (the parent's side); unreadable ones are skipped."""
    states = []
    for name in os.listdir(folder):
        if not name.endswith(".rec"):
            continue
        state = read_state(folder, int(name[:-4]))
        if state is not None:
            states.append(state)
    return states


def read_state(folder: str, pid: int) -> WorkerState | None:
    """The record of worker ``pid``, or None when it has none (yet)."""
    try:
        with open(os.path.join(folder, f"{pid}.rec"), "rb") as fh:
            data = fh.read(_LAYOUT.size)
    except OSError:
        return None
    if len(data) < _LAYOUT.size:
        return None
    return WorkerState(pid, *_LAYOUT.unpack(data))


def start_watch(record: RecordFile, parent: int) -> threading.Thread:
    """Beat into ``record`` every :data:`BEAT_SECONDS`; end this process when its parent
    ``parent`` is gone (its parent pid changes: it was re-parented to init)."""
    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            record.beat()
            time.sleep(BEAT_SECONDS)

    thread = threading.Thread(target=watch, name="acme-worker-watch", daemon=True)
    thread.start()
    return thread
