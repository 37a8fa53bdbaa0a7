"""Ctrl-C and SIGTERM while calls run.

SIGTERM (a ``kill``, a session ending, a batch system stopping the job) ends a run as
Ctrl-C does. Once a run is interrupted, both are held back until the interruption has
been reported: a terminal sends Ctrl-C to every process of the group, users press twice,
and a second ``KeyboardInterrupt`` in the middle of the cleanup would lose the message
that says how to resume. Handlers are only touched in the main thread (the only one that
may set them).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

log = logging.getLogger("acme_core")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def terminate_as_interrupt() -> dict[int, Any]:
    """While calls run, SIGTERM (a ``kill``, a session ending, a batch system stopping the
    job) ends the run as Ctrl-C does: cancelled, cleaned up, finished results kept.
    Returns the handler to restore; an ignored SIGTERM stays ignored."""
    if not _main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        return {}
    return {signal.SIGTERM: signal.signal(signal.SIGTERM, _interrupt)}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def hold_back(terminate: dict[int, Any]) -> None:
    """Hold Ctrl-C and SIGTERM back until :func:`release`; ``terminate`` is what
    :func:`terminate_as_interrupt` returned (the SIGTERM handler from before the run)."""
    if not _main_thread() or _held:
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        _held[signum] = terminate.get(signum, signal.getsignal(signum))
        signal.signal(signum, _held_back)


def release() -> None:
    """Let Ctrl-C and SIGTERM act again after :func:`hold_back` (nothing otherwise).

    Examples
    --------
    >>> import signal
    >>> from acme_core import interrupts
    >>> before = signal.getsignal(signal.SIGINT)
    >>> interrupts.hold_back({})
    >>> interrupts.release()
    >>> signal.getsignal(signal.SIGINT) is before
    True
    """
    held = dict(_held)
    _held.clear()
    restore(held)


#: The handlers :func:`hold_back` replaced, by signal.
_held: dict[int, Any] = {}


def _held_back(signum: int, frame: Any) -> None:
    log.warning("Still stopping the run: its results are being kept; one moment.")


def restore(handlers: dict[int, Any]) -> None:
    """Put back ``handlers`` (as returned by the functions above).

    Examples
    --------
    >>> import signal
    >>> from acme_core import interrupts
    >>> before = signal.getsignal(signal.SIGTERM)
    >>> interrupts.restore(interrupts.terminate_as_interrupt())
    >>> signal.getsignal(signal.SIGTERM) is before
    True
    """
    for signum, handler in handlers.items():
        if handler is not None:  # None: set outside Python, cannot be put back
            signal.signal(signum, handler)
