"""Results read back as a user reads them: the list ``compute()`` returns for in-memory
runs, ``acme_core.load(output_dir)`` for stored ones."""

from __future__ import annotations

import numpy as np

from acme_core import ParallelMap, load


def run_and_read_back(func, *args, storage: str, output_dir: str, **kwargs) -> list:
    """Run ``ParallelMap(func, *args, ...)`` with ``storage`` and return its results: stored
    under ``output_dir`` and loaded, or returned by ``compute()`` for ``"memory"``."""
    on_disk = storage != "memory"
    pmap = ParallelMap(func, *args, storage=storage, write_worker_results=on_disk,
                       output_dir=output_dir if on_disk else None, **kwargs)
    returned = pmap.compute()
    return load(output_dir) if on_disk else returned


def assert_same_results(got: list, expected: list, n_calls: int) -> None:
    """``got`` and ``expected`` both hold ``n_calls`` results, equal value by value."""
    assert len(got) == len(expected) == n_calls
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def first_values(output_dir: str, kind=float) -> list:
    """The first number of each call's first result in ``output_dir``, as ``kind``."""
    return [kind(np.ravel(r)[0]) for r in load(output_dir)]
