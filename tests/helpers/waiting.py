"""Waiting for an event (a file, a manifest line, a process state) instead of sleeping: the
machine running the tests may be loaded, so every wait polls with a generous deadline."""

from __future__ import annotations

import time

import pytest


def wait_for(predicate, timeout: float, interval: float = 0.05):
    """The first true value of ``predicate()`` within ``timeout`` seconds, else False."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return False


def wait_until(predicate, what: str, timeout: float = 120, interval: float = 0.1):
    """The first true value of ``predicate()``; fail the test naming ``what`` after
    ``timeout`` seconds."""
    value = wait_for(predicate, timeout, interval)
    if not value:
        pytest.fail(f"not within {timeout} s: {what}")
    return value
