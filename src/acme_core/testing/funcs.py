"""Functions the conformance suite maps: importable wherever a backend's workers run."""

from __future__ import annotations

import os
import signal
import time

import numpy as np


def f(x, y, z=3):
    """The seed example."""
    return (x + y) * z


def scaled_row(x, array):
    """An array scaled by ``x`` (the array is broadcast to every call)."""
    return np.asarray(array) * x


def finish_out_of_order(x):
    """Later calls finish first."""
    time.sleep(0.02 * (5 - x % 5))
    return x


def fail_on(x, bad):
    """Raise for ``x == bad``."""
    if x == bad:
        raise ValueError(f"bad value {x}")
    return 10 * x


def fail_until_marker(x, marker_dir, bad):
    """Raise for ``x == bad`` until ``marker_dir/fixed`` exists; count executions."""
    open(os.path.join(marker_dir, f"ran_{x}_{time.perf_counter_ns()}"), "w").close()
    if x == bad and not os.path.exists(os.path.join(marker_dir, "fixed")):
        raise RuntimeError("not fixed yet")
    return x + 1


def kill_worker_once(x, marker_dir, victim):
    """SIGKILL the worker process running call ``victim``, the first time only."""
    marker = os.path.join(marker_dir, f"killed_{x}")
    if x == victim and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def nap(x, seconds):
    """Sleep, then return ``x``."""
    time.sleep(seconds)
    return x
