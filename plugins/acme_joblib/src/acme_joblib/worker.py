"""What runs in each loky worker process before its first batch."""

from __future__ import annotations

import signal

from acme_core.calls import set_call_record
from acme_core.worker_watch import RecordFile, start_watch


def init_worker(record_folder: str, parent: int) -> None:
    """Ignore Ctrl-C (the parent handles it, for the whole process group a terminal signals),
    note each call's start in a record file the parent reads, beat, and exit when the
    parent process ``parent`` dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the parent blocks SIGINT while it starts workers, so none dies before this point
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    record = RecordFile(record_folder)
    set_call_record(record)
    start_watch(record, parent)
