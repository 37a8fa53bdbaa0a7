"""Functions tests/test_slurm_array*.py map on SLURM array tasks (an importable module)."""

from __future__ import annotations

import os
import time

import numpy as np


def tiny(x):
    """A call of a few microseconds."""
    return 3.0 * x + 1.0


def counted(x, folder, seconds):
    """Leave one file per execution (``ran_<x>_<task>_<ns>``), sleep, return 2 x."""
    task = f"{os.environ.get('SLURM_ARRAY_JOB_ID', '')}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    open(os.path.join(folder, f"ran_{x}_{task}_{time.perf_counter_ns()}"), "w").close()
    time.sleep(seconds)
    return 2 * x


def runs_of(folder):
    """``{call: executions}`` from the files :func:`counted` left."""
    from collections import Counter

    return Counter(int(n.split("_")[1]) for n in os.listdir(folder) if n.startswith("ran_"))


def grow(x, victim, megabytes):
    """Call ``victim`` allocates ``megabytes`` MB over about 3 s and holds them 3 s."""
    if x != victim:
        return float(x)
    blocks = []
    for _ in range(30):
        block = np.ones(megabytes * 1024**2 // 30 // 8)
        blocks.append(block)
        time.sleep(0.1)
    time.sleep(3)
    return float(sum(b[-1] for b in blocks)) * 0 + float(x)


def slow_one(x, victim, seconds):
    """Call ``victim`` sleeps ``seconds``; every call returns x + 1."""
    if x == victim:
        time.sleep(seconds)
    return x + 1


def raise_on(x, bad, folder):
    """Count the execution; raise for ``x == bad``."""
    open(os.path.join(folder, f"ran_{x}_{time.perf_counter_ns()}"), "w").close()
    if x == bad:
        raise ValueError(f"bad value {x}")
    return x
