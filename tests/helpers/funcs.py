"""Functions the tests map; an importable module, as ACME's docs recommend."""

from __future__ import annotations

import os
import signal
import time

import numpy as np


def f(x, y, z=3):
    """The README's first example: f(x, y, z=3) = (x + y) * z."""
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


# ---- argument contract (tests/test_arguments.py, test_validation.py, test_dryrun.py) ----

def show(x):
    """Return the one argument as received."""
    return x


def two(x, y):
    """Return both arguments as received."""
    return (x, y)


def list_default(x, w=[0, 0]):  # noqa: B006 - the list default is the point
    """ACME's ``g``: a keyword whose default is a list."""
    return w


def array_default(x, w=np.zeros(2)):  # noqa: B008 - the array default is the point
    """ACME's ``h``: a keyword whose default is an array."""
    return w


def varargs(x, *args, **kwargs):
    """Return what arrived in each part of the signature."""
    return (x, args, kwargs)


def keyword_only(x, *, scale, shift=0):
    """A required keyword-only parameter."""
    return x * scale + shift


def with_task_id(x, taskID=None):  # noqa: N803 - ACME's name
    """ACME's taskID pattern."""
    return (x, taskID)


def task_id_writer(x, out_dir, taskID=None):  # noqa: N803 - ACME's name
    """Save this call's own output under its taskID (SyNCoPy's pattern); return taskID."""
    with open(os.path.join(out_dir, f"task_{taskID}"), "w") as fh:
        fh.write(repr(x))
    return taskID


def task_id_then(x, taskID=None, z=3):  # noqa: N803 - ACME's name
    """taskID between two other parameters."""
    return (x, taskID, z)


def count_each(x, counter_dir):
    """Leave one uniquely named file per execution (safe with threads and processes)."""
    import uuid

    open(os.path.join(counter_dir, f"{x}_{uuid.uuid4().hex}"), "w").close()
    return x


def apply(x, fn):
    """Call a function passed as an argument."""
    return fn(x)


def plus_sum(x, values):
    """x plus the sum of a broadcast array."""
    return x + float(np.sum(values))


def size_of_arg(x, data):
    """Return the size of a (large) argument."""
    return int(np.size(data))


class PickleCounter:
    """Counts, per instance, how often it was pickled in this process."""

    def __init__(self, value):
        self.value = value
        self.pickled = 0

    def __reduce__(self):
        self.pickled += 1
        return (PickleCounter, (self.value,))


def counter_value(item, counter):
    """The sum of two PickleCounters' values."""
    return item.value + counter.value


# ---- storage tests (how return values map to datasets)
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
    """Four return values (``lowpass_medium`` style)."""
    return (np.full(3, float(x)), x, 2 * x, np.ones((2, 2)) * x)


def three_values(x, m=2, n=3):
    """A stacked first value and two extras."""
    return (np.full((m, n), float(x)), x, -x)


def as_dict(x):
    return {"a": x}


def nothing(x):
    return None


def dict_or_array(x):
    """Dicts for even inputs, arrays for odd ones (mixed emergency pickling)."""
    return {"a": x} if x % 2 == 0 else np.full(2, x)


def ones_of_length(n):
    """Ragged per-call lengths."""
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


def positional_only(a, b, /, c=1):
    """Parameters that cannot be given by name."""
    return a + b + c


# ---- backend "slurm-esi" (tests/test_slurm_esi.py) ----

def allocate_gib(x, gib):
    """Hold ``gib`` GiB of touched memory (every page written once), return ``x``."""
    block = np.empty(max(1, int(gib * 2**30) // 8))
    block[::512] = 1.0                 # one write per 4 KiB page: all of it is resident
    return x + float(block[0]) - 1.0


def slurm_job_of(x):
    """``(x, the SLURM job id the call ran in, or None)``."""
    return (x, os.environ.get("SLURM_JOB_ID"))


def row_or_fail(x, bad="(3,)"):
    """A row of three values; raises for the inputs ``bad`` names (missing calls)."""
    if str(x) in bad:
        raise ValueError(f"no row for {x}")
    return np.full(3, x)


def dict_or_row(x):
    """A dict for even inputs (emergency pickling), a row of three for odd ones."""
    return {"a": x} if x % 2 == 0 else np.full(3, float(x))


def row_after(x, n=64, seconds=0.02):
    """``np.full(n, x)`` after a pause that varies from call to call (0 to ``seconds``)."""
    time.sleep(seconds * ((x * 7919) % 10) / 9)
    return np.full(n, float(x))


def column_sum(data, column):
    """Sum one column of a 2-D array-like (an h5py dataset in ACME's examples)."""
    return float(data[:, column].sum())
