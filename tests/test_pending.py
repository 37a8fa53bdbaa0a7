"""The run loop's compact bookkeeping: pending calls as runs of indices, batches in flight."""

from __future__ import annotations

import random
from collections import deque

from acme_core.pending import InFlight, Pending


def _take_one_by_one(todo: deque, size: int, alone: set[int]) -> tuple[list[int], int]:
    """The loop's rule with one (index, attempt) entry per call."""
    index, attempt = todo.popleft()
    chosen = [index]
    size = 1 if index in alone else size
    while len(chosen) < size and todo and todo[0][1] == attempt and todo[0][0] not in alone:
        chosen.append(todo.popleft()[0])
    return chosen, attempt


def test_batches_are_those_of_one_entry_per_call_with_retries_and_lone_calls():
    rng = random.Random(1)
    for _ in range(2000):
        indices = sorted(rng.sample(range(60), rng.randint(1, 40)))
        compact, plain = Pending(indices), deque((i, 1) for i in indices)
        alone = set(rng.sample(range(60), rng.randint(0, 4)))
        while plain:
            if rng.random() < 0.3:  # a retry or a free re-run, appended at the end
                index, attempt = rng.randint(0, 59), rng.randint(1, 3)
                compact.append(index, attempt)
                plain.append((index, attempt))
            size = rng.randint(1, 7)
            assert compact.take(size, alone) == _take_one_by_one(plain, size, alone)
            assert len(compact) == len(plain)
            assert list(compact) == [i for i, _ in plain]


def test_a_million_pending_calls_are_one_entry():
    todo = Pending(range(10**6))
    assert len(todo._runs) == 1 and len(todo) == 10**6
    assert todo.take(3, set()) == ([0, 1, 2], 1) and len(todo._runs) == 1


def test_a_batch_back_in_parts_leaves_flight_only_when_every_call_is_back():
    out = InFlight()
    out.add((0, 1, 2, 3))
    out.add((7, 8))
    out.back((1, 3))            # a backend reported two calls apart (a lost worker)
    assert len(out) == 2 and out.calls() == {0, 2, 7, 8}
    out.back((7, 8))            # whole
    out.back((0, 2))
    assert len(out) == 0 and out.calls() == set()
