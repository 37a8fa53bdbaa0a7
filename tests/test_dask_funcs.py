"""Functions the dask and SLURM tests map (an importable module, as ACME's docs recommend).

Kept apart from ``tests/funcs.py`` so that this backend's tests own their helpers.
"""

from __future__ import annotations

import os
import time


def node_of(x, seconds=0.0):
    """``(x, SLURM node name)``: tells the virtual nodes n1/n2 apart (hostnames are equal)."""
    time.sleep(seconds)
    return x, os.environ.get("SLURMD_NODENAME", "")


def worker_address(x):
    """The address of the dask worker running the call."""
    from distributed import get_worker

    return get_worker().address


def with_broadcast(x, table):
    """x plus the sum of a broadcast list."""
    return x + sum(table)


def triple_sum(x, y):
    """Deterministic, with an array result: ``[x, y, x * y]``."""
    import numpy as np

    return np.array([x, y, x * y], dtype=float)
