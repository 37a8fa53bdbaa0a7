"""The calls of a run still to submit, and those submitted, without an entry per call.

A run of 10^6 calls starts with one entry (``range(10**6)`` at attempt 1) instead of 10^6
``(index, attempt)`` tuples in the parent; re-runs are appended as entries of their own.
A batch in flight is its tuple of indices; a batch that comes back whole (the common case)
is recognised by its first index and dropped in one step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np


class Pending:
    """Call indices waiting to run, in order, each with the attempt it runs as.

    Examples
    --------
    >>> from acme_core.pending import Pending
    >>> todo = Pending([0, 1, 2, 5, 6])
    >>> todo.take(4, alone=set())
    ([0, 1, 2, 5], 1)
    >>> todo.append(1, attempt=2)
    >>> len(todo), todo.take(10, alone=set()), list(todo)
    (2, ([6], 1), [1])
    """

    def __init__(self, indices: Sequence[int]) -> None:
        #: [first, stop, attempt] of consecutive indices run as the same attempt
        self._runs: deque[list[int]] = deque()
        self._n = 0
        if isinstance(indices, range) and indices.step == 1:
            if len(indices):
                self._add(indices.start, indices.stop, 1)
            return
        values = np.asarray(indices, dtype=np.int64)
        if not values.size:
            return
        cuts = np.flatnonzero(np.diff(values) != 1) + 1
        for part in np.split(values, cuts):
            self._add(int(part[0]), int(part[-1]) + 1, 1)

    def _add(self, first: int, stop: int, attempt: int) -> None:
        last = self._runs[-1] if self._runs else None
        if last is not None and last[1] == first and last[2] == attempt:
            last[1] = stop
        else:
            self._runs.append([first, stop, attempt])
        self._n += stop - first

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[int]:
        for first, stop, _ in self._runs:
            yield from range(first, stop)

    def append(self, index: int, attempt: int) -> None:
        """Run call ``index`` (again) as attempt ``attempt``, after the others."""
        self._add(index, index + 1, attempt)

    def take(self, size: int, alone: set[int]) -> tuple[list[int], int]:
        """The next calls to submit together: up to ``size`` of the same attempt, in order;
        a call of ``alone`` goes in a batch of its own. Returns ``(indices, attempt)``."""
        first, stop, attempt = self._runs[0]
        if first in alone:
            size = 1
        chosen: list[int] = []
        while self._runs and len(chosen) < size:
            first, stop, run_attempt = self._runs[0]
            if run_attempt != attempt:
                break
            end = min(stop, first + size - len(chosen))
            if alone and size > 1:  # stop before the next call that runs alone
                end = min((i for i in alone if first < i < end or (chosen and i == first)),
                          default=end)
                if end == first:
                    break
            chosen.extend(range(first, end))
            if end == stop:
                self._runs.popleft()
            else:
                self._runs[0][0] = end
        self._n -= len(chosen)
        return chosen, attempt


class InFlight:
    """The batches submitted to the executor and not (entirely) back yet.

    Examples
    --------
    >>> from acme_core.pending import InFlight
    >>> out = InFlight()
    >>> out.add((0, 1, 2)); out.add((3,))
    >>> out.back((0, 1, 2)); len(out)
    1
    >>> out.add((4, 5)); out.back((5,)); sorted(out.calls())
    [3, 4]
    """

    def __init__(self) -> None:
        self._batches: dict[int, tuple[int, ...]] = {}  # first index -> the batch's calls
        self._left: dict[int, set[int]] = {}  # first index -> calls still out (partial ones)

    def __len__(self) -> int:
        return len(self._batches)

    def add(self, indices: tuple[int, ...]) -> None:
        """Batch ``indices`` was submitted."""
        self._batches[indices[0]] = indices

    def back(self, indices: tuple[int, ...]) -> None:
        """An outcome for ``indices`` came back: the whole batch, or part of one (a backend
        that reports some calls of a batch apart)."""
        if not indices:
            return
        whole = self._batches.get(indices[0])
        if whole is not None and whole == indices and indices[0] not in self._left:
            del self._batches[indices[0]]
            return
        returned = set(indices)
        for first in list(self._batches):
            left = self._left.get(first)
            if left is None:
                left = self._left[first] = set(self._batches[first])
            left -= returned
            if not left:
                del self._batches[first], self._left[first]

    def calls(self) -> set[int]:
        """Every call still out."""
        out: set[int] = set()
        for first, indices in self._batches.items():
            out.update(self._left.get(first, indices))
        return out
