"""Sets of call indices as runs of consecutive calls: how the manifest writes a done record's
calls (``[first, count, first, count, ...]``), how status names the missing calls, and how a
record's argument digests take its calls' values by slices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def index_runs(indices: Sequence[int] | np.ndarray) -> list[int]:
    """``indices`` as runs of consecutive ones, ``[first, count, first, count, ...]``.

    Examples
    --------
    >>> from acme_core.call_runs import expand_runs, index_runs
    >>> index_runs([0, 1, 2, 7, 5, 6]), expand_runs([0, 3, 7, 1, 5, 2]).tolist()
    ([0, 3, 7, 1, 5, 2], [0, 1, 2, 7, 5, 6])
    """
    values = np.asarray(indices, dtype=np.int64)
    if not values.size:
        return []
    cuts = np.flatnonzero(np.diff(values) != 1) + 1
    firsts = values[np.concatenate(([0], cuts))]
    counts = np.diff(np.concatenate(([0], cuts, [values.size])))
    return np.column_stack((firsts, counts)).ravel().tolist()


def expand_runs(runs: list[int]) -> np.ndarray:
    """The indices of :func:`index_runs`' ``runs``, in order."""
    pairs = np.asarray(runs, dtype=np.int64).reshape(-1, 2)
    if not len(pairs):
        return np.zeros(0, dtype=np.int64)
    firsts, counts = pairs[:, 0], pairs[:, 1]
    total = int(counts.sum())
    # position k of run r is firsts[r] + k: offset every element by its run's start
    offsets = np.repeat(firsts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return np.arange(total, dtype=np.int64) + offsets
