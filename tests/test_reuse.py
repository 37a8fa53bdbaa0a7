"""reuse=DIR: calls computed once are taken by later runs, never stale, never twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from acme_core import ParallelMap
from acme_core.reuse import CLAIM, Store, call_keys, reused_calls
from tests.helpers.repro_funcs import grid_point, legacy_point, noisy_point, slow_point

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def computed(marks) -> int:
    return len(os.listdir(marks))


def grid(n_a: int, n_b: int) -> tuple[list[int], list[int]]:
    return ([a for a in range(n_a) for _ in range(n_b)], [b for _ in range(n_a) for b in range(n_b)])


@pytest.mark.slow
def test_extending_a_100x100_grid_to_100x120_computes_exactly_the_2000_new_calls(tmp_path):
    store, marks, fresh_marks = tmp_path / "store", tmp_path / "marks", tmp_path / "fresh"
    marks.mkdir()
    fresh_marks.mkdir()
    first = ParallelMap(grid_point, *grid(100, 100), str(marks), reuse=str(store), n_workers=2,
                        write_worker_results=False, verbose=False).compute()
    assert computed(marks) == 10_000 and len(first) == 10_000
    extended = ParallelMap(grid_point, *grid(100, 120), str(marks), reuse=str(store),
                           n_workers=2, write_worker_results=False, verbose=False).compute()
    assert computed(marks) == 12_000                       # exactly 2,000 more calls ran
    fresh = ParallelMap(grid_point, *grid(100, 120), str(fresh_marks), n_workers=2,
                        write_worker_results=False, verbose=False).compute()
    assert np.array_equal(np.array(extended), np.array(fresh))


def test_a_new_run_directory_takes_stored_results_and_says_where_they_came_from(tmp_path):
    store, marks = tmp_path / "store", tmp_path / "marks"
    marks.mkdir()
    ParallelMap(grid_point, *grid(3, 4), str(marks), reuse=str(store),
                output_dir=str(tmp_path / "one"), verbose=False).compute()
    pmap = ParallelMap(grid_point, *grid(3, 5), str(marks), reuse=str(store),
                       output_dir=str(tmp_path / "two"), write_pickle=True, verbose=False)
    pmap.compute()
    assert computed(marks) == 15
    reused = reused_calls(str(tmp_path / "two"))
    assert sorted(reused) == [i for i in range(15) if i % 5 != 4]
    assert {e["from"]["computed_in"] for e in reused.values()} == {str(tmp_path / "one")}
    from acme_core import load
    assert [list(v) for v in load(str(tmp_path / "two"))] == [
        [a * 1000 + b, a - b] for a, b in zip(*grid(3, 5), strict=True)]


def test_calls_that_drew_random_numbers_are_reused_only_with_the_same_stream(tmp_path):
    store, marks = str(tmp_path / "store"), tmp_path / "marks"
    marks.mkdir()

    def run(values, **kw):
        return ParallelMap(noisy_point, values, str(marks), reuse=store,
                           write_worker_results=False, verbose=False, **kw).compute()
    first = run([0, 1, 2, 3], seed=5)
    assert run([0, 1, 2, 3], seed=5) == first and computed(marks) == 4      # same streams
    assert run([0, 1, 2, 3], seed=6) != first and computed(marks) == 8      # other entropy
    assert run([9, 0, 1, 2, 3], seed=5)[1:] != first and computed(marks) == 13  # moved index
    for _ in range(2):                       # unseeded draws cannot be reproduced: not stored
        ParallelMap(legacy_point, [0, 1], str(marks), reuse=store, seed=False,
                    write_worker_results=False, verbose=False).compute()
    assert computed(marks) == 17


def test_two_runs_at_once_over_the_same_200_calls_compute_each_once(tmp_path):
    store, marks, go = tmp_path / "store", tmp_path / "marks", tmp_path / "go"
    marks.mkdir()
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {REPO!r})
        from acme_core import ParallelMap
        from tests.helpers.repro_funcs import slow_point
        # B takes the same 200 calls in the opposite order: runs in the same order trail each
        # other (a worker waits for the call the other run holds, then finds the next one
        # held too), so which one computes what would be timing
        points = list(range(200))[::1 if os.environ["RUN_TAG"] == "A" else -1]
        pmap = ParallelMap(slow_point, points, {str(marks)!r}, reuse={str(store)!r},
                           n_workers=2, write_worker_results=False, verbose=False)
        open(os.path.join({str(tmp_path)!r}, "ready_" + os.environ["RUN_TAG"]), "w").close()
        while not os.path.exists({str(go)!r}):   # both runs start computing together
            time.sleep(0.01)
        assert pmap.compute() == [a * a for a in points]
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "RUN_TAG": tag}) for tag in ("A", "B")]
    deadline = time.monotonic() + 300
    while not all((tmp_path / f"ready_{tag}").exists() for tag in ("A", "B")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in runs)
        time.sleep(0.05)
    go.touch()
    for proc in runs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    by_run = {tag: len([n for n in os.listdir(marks) if n.split("_")[2] == tag])
              for tag in ("A", "B")}
    print(f"two concurrent runs of 200 calls: computed {by_run} = {sum(by_run.values())}")
    assert min(by_run.values()) > 0               # they did share the work
    assert 200 <= computed(marks) <= 210          # at most 1.05 x 200 computed in all
    assert not [p for p in store.rglob(CLAIM)]    # every claim released


def _key_of_first_call(tmp_path):
    plan_pmap = ParallelMap(slow_point, [0], str(tmp_path), write_worker_results=False)
    return call_keys(slow_point, plan_pmap._plan)[0]


def test_a_claim_of_a_dead_process_is_broken_and_the_call_computed(tmp_path):
    store, marks = tmp_path / "store", tmp_path / "marks"
    marks.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    key = _key_of_first_call(marks)
    Store(str(store)).make()
    entry = Store(str(store)).entry(key)
    os.makedirs(entry)
    with open(os.path.join(entry, CLAIM), "w") as fh:
        json.dump({"host": os.uname().nodename, "pid": int(gone.stdout), "start": "1",
                   "time": time.time()}, fh)
    assert ParallelMap(slow_point, [0], str(marks), reuse=str(store),
                       write_worker_results=False, verbose=False).compute() == [0]
    assert computed(marks) == 1


def test_a_call_claimed_by_a_live_process_waits_for_its_result(tmp_path):
    store, marks = tmp_path / "store", tmp_path / "marks"
    marks.mkdir()
    key = _key_of_first_call(marks)
    owner = Store(str(store))
    owner.make()
    assert owner.claim(key)                     # this (live) process computes call 0 ...
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from acme_core import ParallelMap
        from tests.helpers.repro_funcs import slow_point
        print(ParallelMap(slow_point, [0, 1], {str(marks)!r}, reuse={str(store)!r},
                          write_worker_results=False, verbose=False).compute())
    """)
    waiting = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while computed(marks) < 1:                  # ... while the other run computes call 1
        assert time.monotonic() < deadline and waiting.poll() is None
        time.sleep(0.05)
    owner.put(key, None, 0, {"computed_in": "elsewhere"})
    owner.release(key)
    out, _ = waiting.communicate(timeout=300)
    assert out.strip() == "[0, 1]" and computed(marks) == 1   # call 0 was taken, not run


def test_reuse_must_be_a_store_directory(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("keep")
    with pytest.raises(ValueError, match="not an acme-core result store"):
        ParallelMap(slow_point, [0], ".", reuse=str(tmp_path / "data"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        ParallelMap(slow_point, [0], ".", reuse=str(tmp_path / "file"))


def test_results_stored_from_dask_workers_are_taken_by_a_joblib_run(tmp_path,
                                                                    no_dask_client_left):
    pytest.importorskip("acme_dask")
    store, marks = str(tmp_path / "store"), tmp_path / "marks"
    marks.mkdir()
    on_dask = ParallelMap(grid_point, *grid(4, 5), str(marks), reuse=store, backend="dask",
                          n_workers=2, write_worker_results=False, verbose=False).compute()
    on_joblib = ParallelMap(grid_point, *grid(4, 5), str(marks), reuse=store, backend="joblib",
                            write_worker_results=False, verbose=False).compute()
    assert computed(marks) == 20
    assert np.array_equal(np.array(on_dask), np.array(on_joblib))


def test_claims_of_live_owners_hold_and_of_reused_pids_or_silent_hosts_are_stale(tmp_path):
    from acme_core import claims

    path = str(tmp_path / "claim")

    def owned_by(**owner):
        with open(path, "w") as fh:
            json.dump({"host": os.uname().nodename, "pid": os.getpid(),
                       "start": claims._start_time(os.getpid()), **owner}, fh)
    owned_by()
    assert not claims.break_if_stale(path) and os.path.exists(path)   # we are alive
    owned_by(start="0")                        # our pid, but another (earlier) process
    assert claims.break_if_stale(path) and not os.path.exists(path)
    owned_by(host="elsewhere")                 # another host, fresh heartbeat: held
    assert not claims.break_if_stale(path)
    old = time.time() - claims.STALE_AFTER - 1
    os.utime(path, (old, old))                 # ... and after its heartbeat stopped: stale
    assert claims.break_if_stale(path) and not os.path.exists(path)


def test_a_worker_killed_while_holding_a_claim_leaves_nothing_stuck(tmp_path):
    from tests.helpers.repro_funcs import dies_once

    store, marks = tmp_path / "store", tmp_path / "marks"
    marks.mkdir()
    got = ParallelMap(dies_once, [5], str(marks), reuse=str(store), backend="joblib",
                      write_worker_results=False, verbose=False).compute()
    assert got == [6] and (marks / "killed").exists()   # re-submitted, claim broken, computed
    assert not [p for p in store.rglob(CLAIM)]
