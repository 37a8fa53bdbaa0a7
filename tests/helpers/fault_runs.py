"""Runs and checks the fault tests of several backends share: how often each call ran, a
worker process that is gone, and a run whose one call never returns."""

from __future__ import annotations

import os
import time
from collections import Counter

import psutil
import pytest

from acme_core import ParallelComputationError, ParallelMap
from tests.helpers.fault_funcs import hang_on


def runs(marker_dir) -> Counter:
    """How often each call ran (one marker file per execution)."""
    return Counter(int(name.split("_")[0]) for name in os.listdir(marker_dir))


def process_gone(pid: int) -> bool:
    """True when process ``pid`` has ended (a zombie counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def run_with_a_hung_call(markers, within: float = 60, **options) -> list:
    """12 calls with ``timeout=3``, of which call 3 never returns: only it fails, with kind
    "timeout", after one attempt, and every other call ran once. Returns the failures."""
    pmap = ParallelMap(hang_on, list(range(12)), str(markers), write_worker_results=False,
                       n_workers=2, timeout=3, verbose=False, **options)
    start = time.monotonic()
    with pytest.raises(ParallelComputationError) as err:
        pmap.compute()
    assert time.monotonic() - start < within
    rows = list(err.value.failures)
    assert [(r.index, r.kind, r.attempts) for r in rows] == [(3, "timeout", 1)]
    assert "timeout=3 s" in rows[0].message
    assert runs(markers)[3] == 1 and set(runs(markers)) == set(range(12))
    return rows
