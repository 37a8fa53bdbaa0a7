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


# ---- storage tests (return-value mapping, inventory §6.3, §15 S17-S29)
def one_point_five(x):
    return 1.5


def pair(x):
    return (x, x + 1)


def array_and_scalar(x):
    return (np.arange(3) * x, x)


def text(x):
    return "ab"


def ones23(x):
    return np.ones((2, 3))


def four_values(x):
    """Four return values (``lowpass_medium`` style, S18)."""
    return (np.full(3, float(x)), x, 2 * x, np.ones((2, 2)) * x)


def three_values(x, m=2, n=3):
    """A stacked first value and two extras (S27)."""
    return (np.full((m, n), float(x)), x, -x)


def as_dict(x):
    return {"a": x}


def nothing(x):
    return None


def dict_or_array(x):
    """Dicts for even inputs, arrays for odd ones (mixed emergency pickling)."""
    return {"a": x} if x % 2 == 0 else np.full(2, x)


def ones_of_length(n):
    """Ragged per-call lengths (S25)."""
    return np.ones(n)


def column(x, n=5):
    return np.arange(n) + x


def square(x):
    return x * x


def finish_below(x, k, release):
    """Calls x < k return at once; the others wait for the file ``release`` (up to 120 s),
    so a test can kill the parent while they are outstanding."""
    if x >= k:
        deadline = time.monotonic() + 120
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.05)
    return np.full(4, float(x))


def index_and_pid(x):
    """A tiny result that says which call it is and which process ran it."""
    return (x, os.getpid())
