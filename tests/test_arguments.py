"""ACME's argument contract: which inputs are split over calls and which go whole to every
call (docs/guide/arguments.md), with ACME's bugs tested as fixed.

Most cases run on the in-process "threads" backend, where the function receives the very
objects the plan hands out; the cases where process boundaries matter run on "joblib".
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import psutil
import pytest

from acme_core import ParallelMap, UnknownKeywordError, load
from acme_core.arguments import ArgumentMismatchError, build_call_plan
from tests.helpers import funcs
from tests.helpers.funcs import f, show, two

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEM = {"write_worker_results": False, "verbose": False, "backend": "threads"}
MEM_JOBLIB = {"write_worker_results": False, "verbose": False, "backend": "joblib",
              "n_workers": 2}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """On-disk runs write their ACME_* directory into a fresh working directory."""
    monkeypatch.chdir(tmp_path)


def run(func, *args, **kwargs):
    """In-memory results of one ParallelMap (threads backend unless given)."""
    return ParallelMap(func, *args, **{**MEM, **kwargs}).compute()


def _types(values):
    return [type(v) for v in values]


# ---------------------------------------------------------------- ACME's documented examples

def test_readme_example_returns_the_values_in_call_order():
    result = run(f, [2, 4, 6, 8], 4)
    assert result == [18, 24, 30, 36]
    assert _types(result) == [int] * 4


@pytest.mark.parametrize("given", [
    pytest.param((([2, 4, 6, 8],), {"y": 4}), id="y-by-name"),
    pytest.param(((), {"x": [2, 4, 6, 8], "y": 4}), id="both-by-name"),
    pytest.param(((), {"y": 4, "x": [2, 4, 6, 8]}), id="both-by-name-reversed"),
])
def test_positional_parameters_may_be_given_by_name(given):
    args, kwargs = given
    assert run(f, *args, **kwargs) == [18, 24, 30, 36]


def test_a_keyword_list_is_split_like_a_positional_one():
    assert run(f, 0, 4, z=[3, 4, 5, 6]) == [12, 16, 20, 24]


def test_two_lists_of_equal_length_are_zipped():
    assert run(f, [1, 2, 3], [4, 5, 6]) == [15, 21, 27]


def test_lists_of_different_lengths_need_n_inputs():
    with pytest.raises(ValueError, match="automatic input distribution failed: found 2 objects "
                                         "containing 3 to 4 elements"):
        ParallelMap(f, [2, 4, 6, 8], np.ones(3) * 4, **MEM)
    result = run(f, [2, 4, 6, 8], np.ones(3) * 4, n_inputs=4)
    assert [r.tolist() for r in result] == [[18.0] * 3, [24.0] * 3, [30.0] * 3, [36.0] * 3]


@pytest.mark.parametrize("backend", ["joblib", "threads"])
def test_replicated_scalars_run_every_call(backend, tmp_path):
    """ACME ran identical calls once and copied the result (dask key de-duplication)."""
    assert run(f, 2, 3, n_inputs=4, backend=backend) == [15, 15, 15, 15]
    counter = tmp_path / "calls"
    counter.mkdir()
    assert run(funcs.count_each, 2, str(counter), n_inputs=4, backend=backend) == [2] * 4
    assert len(os.listdir(counter)) == 4


def test_mismatching_lengths_are_refused_unless_n_inputs_picks_one():
    with pytest.raises(ValueError, match="found 2 objects containing 2 to 4 elements"):
        ParallelMap(f, [2, 4, 6, 8], [2, 2], **MEM)
    with pytest.raises(ValueError, match="No object has required length of 3 matching `n_inputs`"):
        ParallelMap(f, [2, 4, 6, 8], [2, 2], n_inputs=3, **MEM)
    # n_inputs=2: y is split, x goes whole to both calls
    assert run(two, [2, 4, 6, 8], [2, 2], n_inputs=2) == [([2, 4, 6, 8], 2), ([2, 4, 6, 8], 2)]


def test_too_few_or_too_many_arguments_name_the_signature():
    with pytest.raises(ValueError, match=r"f expects 2 positional arguments \('x', 'y'\), found 1"):
        ParallelMap(f, 4, **MEM)
    with pytest.raises(ValueError, match=r"f accepts at maximum 1 keyword arguments \('z'\), "
                                         r"found 2"):
        ParallelMap(f, 4, 4, z=3, w=4, **MEM)


@pytest.mark.parametrize(("n_inputs", "calls"), [(1, 1), (2.0, 2), (np.int64(3), 3)])
def test_n_inputs_accepts_integral_numbers(n_inputs, calls):
    assert run(f, 2, 3, n_inputs=n_inputs) == [15] * calls


def test_ranges_arrays_and_columns_split_other_objects_go_whole():
    assert run(show, range(3)) == [0, 1, 2]
    assert _types(run(show, range(3))) == [int] * 3
    result = run(show, np.arange(3))
    assert result == [0, 1, 2] and _types(result) == [np.int64] * 3
    column = run(show, np.arange(3).reshape(3, 1))
    assert [c.shape for c in column] == [(1,)] * 3 and [c[0] for c in column] == [0, 1, 2]
    for whole in ("abc", {"a": 1}, {1, 2}, np.ones((2, 2))):
        with pytest.raises(ValueError, match="found 0 objects containing 0 to 0 elements"):
            ParallelMap(show, whole, **MEM)
        got = run(show, whole, n_inputs=2)
        assert len(got) == 2 and all(g is whole for g in got)


def test_a_one_element_list_is_one_call_or_goes_whole():
    assert run(show, [7]) == [7]
    assert run(show, [7], n_inputs=3) == [[7], [7], [7]]


def test_task_id_lets_a_function_save_its_own_output(tmp_path):
    out = tmp_path / "own"
    out.mkdir()
    assert run(funcs.task_id_writer, [10, 20, 30], str(out)) is None  # func saves its own output
    assert sorted(os.listdir(out)) == ["task_0", "task_1", "task_2"]
    assert [(out / f"task_{i}").read_text() for i in range(3)] == ["10", "20", "30"]


# ---------------------------------------------------------------- what is split, what goes whole

TABLE = [
    pytest.param(show, (range(3),), {}, [0, 1, 2], id="range"),
    pytest.param(show, ((1, 2, 3),), {}, [1, 2, 3], id="tuple"),
    pytest.param(show, ("abc",), {"n_inputs": 2}, ["abc", "abc"], id="str-n2"),
    pytest.param(show, (["a", "bb"],), {}, ["a", "bb"], id="list-of-str"),
    pytest.param(show, ({"a": 1},), {"n_inputs": 2}, [{"a": 1}, {"a": 1}], id="dict-n2"),
    pytest.param(show, (7,), {"n_inputs": 3}, [7, 7, 7], id="scalar-n3"),
    pytest.param(show, ([7],), {}, [7], id="one-element"),
    pytest.param(show, ([7],), {"n_inputs": 3}, [[7]] * 3, id="one-element-n3"),
    pytest.param(two, ([1, 2], [4, 5, 6]), {"n_inputs": 3},
                 [([1, 2], 4), ([1, 2], 5), ([1, 2], 6)], id="two-n3"),
    pytest.param(two, ([1, 2, 3], [4, 5, 6]), {}, [(1, 4), (2, 5), (3, 6)], id="two-zip"),
    pytest.param(show, ([[1, 2], [3, 4]],), {}, [[1, 2], [3, 4]], id="nested-list"),
    pytest.param(funcs.list_default, ([1, 2],), {"w": [5, 6]}, [5, 6], id="list-default-split"),
    pytest.param(funcs.array_default, ([1, 2],), {"w": [5, 6]}, [5, 6],
                 id="list-for-array-default-split"),
]


@pytest.mark.parametrize(("func", "args", "kwargs", "expected"), TABLE)
def test_what_is_split_and_what_goes_whole(func, args, kwargs, expected):
    assert run(func, *args, **kwargs) == expected


@pytest.mark.parametrize(("func", "args", "kwargs", "expected"), TABLE[:6] + TABLE[8:10])
def test_what_is_split_and_what_goes_whole_across_processes(func, args, kwargs, expected):
    assert run(func, *args, backend="joblib", n_workers=2, **kwargs) == expected


def test_inputs_that_cannot_be_split_without_n_inputs_are_refused():
    with pytest.raises(ValueError, match="found 0 objects containing 0 to 0 elements"):
        ParallelMap(show, "abc", **MEM)
    with pytest.raises(ValueError, match="found 2 objects containing 2 to 3 elements"):
        ParallelMap(two, [1, 2, 3], [4, 5], **MEM)
    with pytest.raises(ValueError, match="found 0 objects containing 0 to 0 elements"):
        ParallelMap(show, np.ones((2, 2)), **MEM)


def test_array_keyword_with_array_default_is_broadcast():
    w = np.array([5, 6])
    got = run(funcs.array_default, [1, 2], w=w)
    assert len(got) == 2 and all(g is w for g in got)


def test_list_keyword_with_same_length_list_default_does_not_count():
    # w (length 2, like its default) is not counted: x alone sets 3 calls, w goes whole
    assert run(funcs.list_default, [1, 2, 3], w=[5, 6]) == [[5, 6]] * 3
    with pytest.raises(ValueError, match="found 0 objects"):
        ParallelMap(funcs.list_default, 7, w=[5, 6], **MEM)


def test_list_keyword_of_other_length_than_default_counts():
    assert run(funcs.list_default, 7, w=[5, 6, 8]) == [5, 6, 8]


def test_row_vector_sets_n_inputs_but_is_broadcast():
    """ACME: a (1, n) array counts n for inference, but its first axis has length 1, so
    every call receives the whole array (observed, kept)."""
    row = np.arange(3).reshape(1, 3)
    got = run(show, row)
    assert len(got) == 3 and all(g is row for g in got)


def test_zero_d_and_single_element_arrays_are_broadcast():
    for value in (np.array(5), np.array([5])):
        with pytest.raises(ValueError, match="found 0 objects"):
            ParallelMap(show, value, **MEM)
        assert all(g is value for g in run(show, value, n_inputs=2))


def test_split_objects_are_not_copied_on_threads():
    items = [object(), object()]
    assert run(show, items) == items


# ---------------------------------------------------------------- signature handling (FIX)

def test_var_positional_are_not_required_and_are_distributed():
    assert run(funcs.varargs, [1, 2]) == [(1, (), {}), (2, (), {})]
    assert run(funcs.varargs, [1, 2], [3, 4], 5) == [(1, (3, 5), {}), (2, (4, 5), {})]


def test_var_keyword_accepts_any_keyword_and_splits_it():
    assert run(funcs.varargs, [1, 2], q=[6, 7], r=8) == [(1, (), {"q": 6, "r": 8}),
                                                          (2, (), {"q": 7, "r": 8})]


def test_keyword_only_parameters():
    assert run(funcs.keyword_only, [1, 2], scale=[10, 20], shift=1) == [11, 41]


def test_optional_positional_given_positionally():
    assert run(f, [1, 2], 1, [2, 3]) == [4, 9]


def test_unknown_keyword_is_type_error_naming_it():
    with pytest.raises(TypeError, match="unexpected keyword argument 'zz'.*accepts 'x', 'y', 'z'"):
        ParallelMap(f, [1, 2], 3, zz=1, **MEM)
    with pytest.raises(UnknownKeywordError):
        ParallelMap(f, [1, 2], 3, zz=1, **MEM)


def test_too_many_positionals_says_what_is_accepted():
    with pytest.raises(ArgumentMismatchError, match=r"at most 3 positional arguments \('x', 'y', "
                                                    r"'z'\), found 4"):
        ParallelMap(f, 1, 2, 3, 4, **MEM)


def test_builtin_without_introspectable_signature():
    assert run(max, [1, 5], [4, 2]) == [4, 5]


def test_other_kinds_of_callables():
    assert run(np.add, [1, 2], 3) == [4, 5]  # a ufunc: no signature
    assert run(functools.partial(f, z=10), [1, 2], 3) == [40, 50]
    assert run(complex, [1, 2], [3, 4]) == [1 + 3j, 2 + 4j]
    assert run("{}-{}".format, [1, 2], "a") == ["1-a", "2-a"]
    assert run(funcs.positional_only, [1, 2], 3, c=[10, 20]) == [14, 25]


# ---------------------------------------------------------------- taskID

def test_task_id_on_disk_is_passed_too():
    """ACME kept the default (None) in on-disk mode; every call now gets its index."""
    with ParallelMap(funcs.with_task_id, [10, 20, 30], verbose=False, backend="threads") as pmap:
        pmap.compute()
    with h5py.File(pmap.results_container, "r") as h5:
        assert [h5[f"comp_{i}"]["result_0"][()].tolist() for i in range(3)] == [
            [10, 0], [20, 1], [30, 2]]


def test_task_id_on_disk_on_joblib(tmp_path):
    out = tmp_path / "own"
    out.mkdir()
    with ParallelMap(funcs.task_id_writer, [10, 20], str(out), verbose=False,
                     backend="joblib", n_workers=2) as pmap:
        pmap.compute()
    assert sorted(os.listdir(out)) == ["task_0", "task_1"]


def test_given_task_id_is_ignored_with_a_warning(tmp_path, caplog):
    out = tmp_path / "own"
    out.mkdir()
    with caplog.at_level(logging.WARNING, logger="acme_core"):
        run(funcs.task_id_writer, [10, 20], str(out), taskID=99)
    assert "`taskID` of task_id_writer is set by ParallelMap" in caplog.text
    assert sorted(os.listdir(out)) == ["task_0", "task_1"]


def test_task_id_given_positionally_does_not_clash():
    """A value in taskID's position is ignored; later positionals travel by name."""
    with ParallelMap(funcs.task_id_then, [1, 2], 5, 7, verbose=False, backend="threads") as pmap:
        pmap.compute()
    with h5py.File(pmap.results_container, "r") as h5:
        assert [h5[f"comp_{i}"]["result_0"][()].tolist() for i in range(2)] == [[1, 0, 7],
                                                                               [2, 1, 7]]


def test_required_task_id_is_an_ordinary_argument():
    def needs(x, taskID):  # noqa: N803
        return (x, taskID)

    assert run(needs, [1, 2], ["a", "b"]) == [(1, "a"), (2, "b")]


# ---------------------------------------------------------------- callables, generators

def test_callable_argument_is_broadcast_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="acme_core"):
        assert run(funcs.apply, [1, -2], abs) == [1, 2]
    assert "Found a single callable object in positional argument 1 ('fn') of apply" in caplog.text


def test_callable_given_by_name_is_broadcast_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="acme_core"):
        assert run(funcs.apply, [1, -2], fn=abs) == [1, 2]
    assert "single callable" not in caplog.text


def test_callables_cross_process_boundaries():
    assert run(funcs.apply, [1, -2], abs, backend="joblib", n_workers=2) == [1, 2]
    assert run(funcs.apply, [1, 2], lambda v: v * 10, backend="joblib", n_workers=2) == [10, 20]


def test_list_of_callables_is_split():
    assert run(funcs.apply, -3, [abs, str]) == [3, "-3"]


def test_generator_is_rejected_with_the_fix():
    with pytest.raises(TypeError, match=r"positional argument 0 \('x'\) is a generator.*"
                                        r"Pass list\(\.\.\.\) of it instead"):
        ParallelMap(show, (i for i in range(3)), **MEM)


# ---------------------------------------------------------------- large arguments

@pytest.mark.parametrize("as_keyword", [False, True], ids=["positional", "keyword"])
def test_large_argument_warning(monkeypatch, caplog, as_keyword):
    monkeypatch.setattr(ParallelMap, "_maxArgSize", 1)
    big = np.ones((1000, 1000))
    with caplog.at_level(logging.WARNING, logger="acme_core"):
        if as_keyword:
            result = run(funcs.size_of_arg, [1, 2], data=big)
        else:
            result = run(funcs.size_of_arg, [1, 2], big)
    assert result == [10**6, 10**6]  # still runs
    label = "keyword argument 'data'" if as_keyword else "positional argument 1 ('data')"
    assert f"{label} of size_of_arg: argument size 7.63 MB exceeds recommended limit of 1 MB" \
        in caplog.text


def test_no_large_argument_warning_below_the_limit(caplog):
    with caplog.at_level(logging.WARNING, logger="acme_core"):
        run(funcs.size_of_arg, [1, 2], np.ones((1000, 1000)))
    assert "exceeds recommended limit" not in caplog.text


# ---------------------------------------------------------------- every call runs (FIX)

@pytest.mark.parametrize("backend", ["joblib", "threads"])
def test_counter_identical_calls_all_execute(backend, tmp_path):
    """Must show: ParallelMap(f, 1, n_inputs=6, write_worker_results=False) calls f six times
    (ACME ran it once and returned six copies)."""
    counter = tmp_path / "calls"
    counter.mkdir()
    pmap = ParallelMap(funcs.count_calls if backend == "joblib" else funcs.count_each, 1,
                       str(counter), n_inputs=6, write_worker_results=False, backend=backend,
                       verbose=False)
    assert pmap.compute() == [1] * 6
    assert len(os.listdir(counter)) == 6


def test_counter_on_disk(tmp_path):
    counter = tmp_path / "calls"
    counter.mkdir()
    with ParallelMap(funcs.count_calls, 1, str(counter), n_inputs=6, verbose=False,
                     backend="joblib", n_workers=2) as pmap:
        assert len(pmap.compute()) == 6
    assert len(os.listdir(counter)) == 6


# ---------------------------------------------------------------- one pool, many runs (FIX)

def test_two_hundred_runs_on_one_pool_with_the_same_broadcast_argument():
    """ACME failed from the second run on ("computation on lost data")."""
    values = np.arange(100.0)
    expected = [1 + 4950.0, 2 + 4950.0]
    def one_run():
        return run(funcs.plus_sum, [1, 2], values, n_inputs=2, **MEM_JOBLIB)

    assert one_run() == expected  # warm the pool
    workers = {p.pid for p in psutil.Process().children(recursive=True)}
    results = [one_run() for _ in range(200)]
    assert results == [expected] * 200
    assert {p.pid for p in psutil.Process().children(recursive=True)} - workers == set()


# ---------------------------------------------------------------- pickling once

def test_each_argument_is_pickled_once():
    """Small arguments, split or broadcast, travel inside the run's program: pickled once
    per run, and those bytes are what reaches the workers; batches carry only indices."""
    shared = funcs.PickleCounter(100)
    items = [funcs.PickleCounter(1), funcs.PickleCounter(2), funcs.PickleCounter(3)]
    pmap = ParallelMap(funcs.counter_value, items, shared, **MEM_JOBLIB)
    assert shared.pickled == 1 and [i.pickled for i in items] == [1, 1, 1]
    assert pmap._payloads.batch([0, 2], 1).split is None
    assert pmap.compute() == [101, 102, 103]
    assert shared.pickled == 1 and [i.pickled for i in items] == [1, 1, 1]


def test_large_split_arguments_are_pickled_once_per_call(monkeypatch):
    """Split arguments too large to send to every worker travel per call: each call's
    values are pickled once, and those bytes are what the batches ship."""
    from acme_core import payloads

    monkeypatch.setattr(payloads, "INLINE_SPLIT_BYTES", 0)
    shared = funcs.PickleCounter(100)
    items = [funcs.PickleCounter(1), funcs.PickleCounter(2), funcs.PickleCounter(3)]
    pmap = ParallelMap(funcs.counter_value, items, shared, **MEM_JOBLIB)
    assert shared.pickled == 1 and [i.pickled for i in items] == [1, 1, 1]
    batch = pmap._payloads.batch([0, 2], 1)
    assert batch.pickled and batch.split[0] is pmap._payloads.call_blobs[0]
    assert batch.split[1] is pmap._payloads.call_blobs[2]
    assert pmap.compute() == [101, 102, 103]
    assert shared.pickled == 1 and [i.pickled for i in items] == [1, 1, 1]


def test_nothing_is_pickled_for_in_process_backends():
    shared = funcs.PickleCounter(100)
    assert run(funcs.counter_value, [funcs.PickleCounter(1), funcs.PickleCounter(2)], shared) == [101, 102]
    assert shared.pickled == 0


def test_plan_keeps_the_users_objects():
    x = [1, 2, 3]
    plan = build_call_plan(f, (x, 4), {}, "auto", 1024)
    assert plan.split_arguments[0].value is x
    assert [plan.split_values(i) for i in range(3)] == [(1,), (2,), (3,)]


def test_function_and_objects_from_a_notebook_namespace_run_on_joblib():
    namespace = {"__name__": "notebook_cell_7"}  # like a notebook: not an importable module
    exec(textwrap.dedent("""
        class Point:
            def __init__(self, v):
                self.v = v

        def scaled(p, k):
            return p.v * k
    """), namespace)
    points = [namespace["Point"](1), namespace["Point"](2)]
    assert run(namespace["scaled"], points, 10, backend="joblib", n_workers=2) == [10, 20]


def test_function_defined_in_main_runs_on_joblib(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from acme_core import ParallelMap

        class Box:
            def __init__(self, v):
                self.v = v

        def double(box, k):
            return box.v * k

        if __name__ == "__main__":
            print(ParallelMap(double, [Box(1), Box(2)], 3, backend="joblib",
                              write_worker_results=False, verbose=False,
                              n_workers=2).compute())
    """))
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[3, 6]"


def test_large_split_arguments_of_plain_scalars_travel_as_values_and_replay(monkeypatch,
                                                                            tmp_path):
    """Large split arguments of plain scalars are not pickled per call ahead (the parent
    keeps no bytes per call): a batch carries its calls' values, and the replay file,
    written from a stream, still gives every call's arguments."""
    from acme_core import payloads, replay

    monkeypatch.setattr(payloads, "INLINE_SPLIT_BYTES", 0)
    out = str(tmp_path / "run")
    pmap = ParallelMap(f, [1, 2, 3], np.array([4.0, 5.0, 6.0]), output_dir=out, verbose=False,
                       backend="joblib", n_workers=2)
    assert pmap._payloads.call_blobs is None
    batch = pmap._payloads.batch([0, 2], 1)
    assert not batch.pickled and tuple(batch.split) == ((1, 4.0), (3, 6.0))
    assert batch.split.columns == ((1, 3), (4.0, 6.0))  # one tuple per argument
    pmap.compute()
    assert [float(np.ravel(v)[0]) for v in load(out)] == [15.0, 21.0, 27.0]
    assert replay(out, 2) == f(3, 6.0) == 27.0


def test_a_batch_of_plain_numbers_ships_columns_that_read_as_per_call_tuples(monkeypatch):
    """A large batch of plain numbers travels as one tuple per split argument (fewer
    pickled objects than a tuple per call) and reads, for executors that look into it, as
    the per-call tuples: len(), iteration, [k], truth, a pickle round trip."""
    import pickle

    from acme_core import payloads
    from acme_core.records import SplitColumns

    monkeypatch.setattr(payloads, "INLINE_SPLIT_BYTES", 0)
    xs, ys = list(range(1000)), np.arange(1000.0)
    pmap = ParallelMap(f, xs, ys, **MEM_JOBLIB)
    batch = pmap._payloads.batch(list(range(10, 510)), 1)
    assert isinstance(batch.split, SplitColumns) and batch.split
    per_call = tuple((x, ys[x]) for x in range(10, 510))
    assert len(batch.split) == 500 and batch.split[3] == (13, 13.0)
    assert tuple(batch.split) == per_call
    assert type(batch.split[0][1]) is type(per_call[0][1])  # the same value types as before
    shipped = pickle.loads(pickle.dumps(batch))
    assert shipped == batch and tuple(shipped.split) == per_call
    assert len(pickle.dumps(batch.split)) < len(pickle.dumps(per_call))
    assert pmap.compute() == [f(x, y) for x, y in zip(xs, ys, strict=True)]


def test_split_columns_refuse_columns_of_different_lengths():
    from acme_core.records import SplitColumns

    with pytest.raises(ValueError, match="one length"):
        SplitColumns(((1, 2), (3,)))
    with pytest.raises(ValueError, match="at least one column"):
        SplitColumns(())
