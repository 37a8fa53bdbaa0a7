"""Functions the tests map; an importable module, as ACME's docs recommend."""

from __future__ import annotations

import os
import signal
import time

import numpy as np


def f(x, y, z=3):
    """The seed example."""
    return (x + y) * z


def where(x):
    """Return the process id the call ran in."""
    return os.getpid()


def fail_on_3(x):
    if x == 3:
        raise ValueError(f"boom on {x}")
    return 2 * x


def fail_every_100(x):
    if x % 100 == 17:
        raise ArithmeticError(f"bad input {x}")
    return x * x


def kill_once(x, marker_dir):
    """SIGKILL the worker running call x == 2, the first time only."""
    marker = os.path.join(marker_dir, f"killed_{x}")
    if x == 2 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 100


def count_calls(x, counter_dir):
    """Leave one file per call so tests can count executions."""
    path = os.path.join(counter_dir, f"{x}_{os.getpid()}_{time.perf_counter_ns()}")
    open(path, "w").close()
    return x


def arrays(x, n=1000):
    return np.full(n, float(x))


def sleepy(x, seconds=0.01):
    time.sleep(seconds)
    return x


def _count(counter_dir, x):
    open(os.path.join(counter_dir, f"{x}_{os.getpid()}_{time.perf_counter_ns()}"), "w").close()


def broken_while_flagged(x, flag_dir, counter_dir):
    """Counts each execution; raises for x % 100 == 17 while ``flag_dir/broken`` exists."""
    _count(counter_dir, x)
    if x % 100 == 17 and os.path.exists(os.path.join(flag_dir, "broken")):
        raise ArithmeticError(f"bad input {x}")
    return x * x


def slow_count(x, counter_dir, seconds=0.1):
    """Counts each execution, then sleeps ``seconds``."""
    _count(counter_dir, x)
    time.sleep(seconds)
    return x + 1000


def fail_first_attempt(x, marker_dir):
    """Raises the first time it runs for each x, succeeds afterwards."""
    marker = os.path.join(marker_dir, f"tried_{x}")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError(f"transient failure for {x}")
    return x
