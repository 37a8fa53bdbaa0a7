"""Every way a call can die costs only that call; Ctrl-C, SIGTERM and a killed parent leave
nothing running (joblib backend, real processes)."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from acme_core import ParallelComputationError, ParallelMap
from tests.fault_funcs import generator_for, lock_for, poison, raise_bad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runs(marker_dir) -> Counter:
    """How often each call ran (one marker file per execution)."""
    return Counter(int(name.split("_")[0]) for name in os.listdir(marker_dir))


def _wait_for(predicate, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _poison_run(tmp_path, how):
    markers = tmp_path / f"markers-{how}"
    markers.mkdir()
    pmap = ParallelMap(poison, list(range(40)), str(markers), how, write_worker_results=False,
                       n_workers=2, verbose=False)
    with pytest.raises(ParallelComputationError) as err:
        pmap.compute()
    return err.value.failures, markers


# ------------------------------------------------------------------ calls that kill their worker
@pytest.mark.parametrize("how", ["sigkill", "segfault", "exit"])
def test_a_call_that_kills_its_worker_every_time_fails_alone(tmp_path, how):
    failures, markers = _poison_run(tmp_path, how)
    rows = list(failures)
    assert [r.index for r in rows] == [7]
    assert rows[0].kind == "killed-worker" and rows[0].attempts == 4
    assert "killed its worker 4 times" in rows[0].message
    executed = runs(markers)
    assert executed[7] == 4  # charged four attempts, each alone in its batch
    assert set(executed) == set(range(40))


def test_sigkill_poison_among_forty_keeps_thirty_nine_results_on_disk(tmp_path):
    from acme_core import load

    markers, out = tmp_path / "m", str(tmp_path / "run")
    markers.mkdir()
    pmap = ParallelMap(poison, list(range(40)), str(markers), "sigkill", output_dir=out,
                       n_workers=2, verbose=False)
    with pytest.raises(ParallelComputationError) as err:
        pmap.compute()
    assert [(r.index, r.kind) for r in err.value.failures] == [(7, "killed-worker")]
    results = load(out)
    assert [i for i, r in enumerate(results) if r is None] == [7]
    assert [int(r[0]) for i, r in enumerate(results) if i != 7] == [10 * i for i in range(40)
                                                                    if i != 7]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["segfault", "exit"])
def test_poison_ten_runs_of_forty_each_cost_exactly_one_call(tmp_path, how):
    for attempt in range(10):
        (tmp_path / str(attempt)).mkdir()
        failures, _ = _poison_run(tmp_path / str(attempt), how)
        assert [(r.index, r.kind) for r in failures] == [(7, "killed-worker")], attempt


# ------------------------------------------------------------------ what cannot travel back
def test_an_unpicklable_return_value_fails_only_its_call():
    pmap = ParallelMap(lock_for, list(range(300)), write_worker_results=False, n_workers=2,
                       verbose=False)
    with pytest.raises(ParallelComputationError) as err:
        pmap.compute()
    rows = list(err.value.failures)
    assert [(r.index, r.kind, r.attempts) for r in rows] == [(150, "unpicklable", 1)]
    assert "lock" in rows[0].message and "cannot be pickled" in rows[0].message


def test_a_generator_return_value_fails_only_its_call():
    with pytest.raises(ParallelComputationError) as err:
        ParallelMap(generator_for, list(range(10)), write_worker_results=False, n_workers=2,
                    verbose=False).compute()
    rows = list(err.value.failures)
    assert [(r.index, r.kind) for r in rows] == [(3, "unpicklable")]
    assert "generator" in rows[0].message


def test_exceptions_that_cannot_be_printed_or_pickled_fail_only_their_call():
    with pytest.raises(ParallelComputationError) as err:
        ParallelMap(raise_bad, list(range(8)), write_worker_results=False, n_workers=2,
                    verbose=False).compute()
    rows = {r.index: r for r in err.value.failures}
    assert sorted(rows) == [2, 3]
    assert all(r.kind == "error" and r.attempts == 1 for r in rows.values())
    assert rows[2].exc_type == "BadStr" and "__str__ failed" in rows[2].message
    assert "raise BadStr()" in rows[2].traceback
    assert rows[3].exc_type == "Unpicklable" and rows[3].message == "bad 3"
