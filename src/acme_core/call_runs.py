"""Sets of call indices as runs of consecutive calls: how the manifest writes a done record's
calls (``[first, count, first, count, ...]``), how status names the missing calls, and how a
record's argument digests take its calls' values by slices; and :class:`CallSet`, the done
calls a storage's ``damaged()`` is asked about."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Set
from typing import Any

import numpy as np

#: Calls :class:`CallSet` turns into Python ints at once when iterated.
_INT_CHUNK = 1 << 16


class CallSet(Set[int]):
    """Sorted, distinct call indices in one int64 array (:attr:`array`) that read as a set of
    Python ints: iteration (in order, as often as asked), ``in``, ``len`` and the set
    operators (which return a ``set``). The done calls of 10^6 as a ``set`` were 84 MB of a
    resumed run's peak; this holds 8 bytes a call.

    Examples
    --------
    >>> import numpy as np
    >>> from acme_core.call_runs import CallSet
    >>> calls = CallSet(np.array([1, 3, 5]))
    >>> len(calls), 3 in calls, 4 in calls, calls - {3}, list(calls) == [1, 3, 5]
    (3, True, False, {1, 5}, True)
    """

    def __init__(self, calls: np.ndarray) -> None:
        self.array = np.asarray(calls, dtype=np.int64)

    @classmethod
    def _from_iterable(cls, values: Iterable[Any]) -> set[Any]:
        return set(values)

    def __len__(self) -> int:
        return len(self.array)

    def __iter__(self) -> Iterator[int]:
        for start in range(0, len(self.array), _INT_CHUNK):
            yield from self.array[start:start + _INT_CHUNK].tolist()

    def __contains__(self, value: object) -> bool:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, (int, np.integer)):
            return False
        at = int(np.searchsorted(self.array, value))
        return at < len(self.array) and int(self.array[at]) == value


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
