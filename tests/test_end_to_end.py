"""ParallelMap end to end: the README's first example on disk and in memory, in this process
(debug) and in worker processes, a failed and a killed call, the output directory."""

from __future__ import annotations

import glob
import os
import re

import h5py
import numpy as np
import psutil
import pytest

from acme_core import ParallelComputationError, ParallelMap
from tests.helpers.funcs import broken_while_flagged, f, fail_on_3, where
from tests.helpers.scripts import run_code

BACKENDS = ["joblib", "threads"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_readme_example_writes_one_file_per_call_and_a_container(backend):
    with ParallelMap(f, [2, 4, 6, 8], 4, backend=backend) as pmap:
        paths = pmap.compute()
    assert [os.path.basename(p) for p in paths] == [f"f_{i}.h5" for i in range(4)]
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in paths)
    with h5py.File(pmap.results_container, "r") as h5:
        assert h5["comp_0"]["result_0"][()].tolist() == [18]
        assert [h5[f"comp_{i}"]["result_0"][0] for i in range(4)] == [18, 24, 30, 36]


@pytest.mark.parametrize("backend", BACKENDS)
def test_readme_example_in_memory_returns_the_results(backend):
    pmap = ParallelMap(f, [2, 4, 6, 8], 4, write_worker_results=False, backend=backend)
    assert pmap.compute() == [18, 24, 30, 36]  # also without `with` (ACME returned None)


def test_debug_runs_every_call_in_this_process():
    results = ParallelMap(where, [1, 2, 3], write_worker_results=False).compute(debug=True)
    assert results == [os.getpid()] * 3


def test_debug_lets_the_original_exception_propagate():
    pmap = ParallelMap(fail_on_3, [1, 2, 3, 4], write_worker_results=False)
    with pytest.raises(ValueError, match="boom on 3"):
        pmap.compute(debug=True)


def test_debug_stores_each_call_before_the_next_so_a_parallel_resume_runs_only_the_rest(
        tmp_path):
    """A debug run is the same run with its calls made here: what finished before the
    exception is stored and recorded, and the parallel compute() after the fix runs only
    the failed and the missing calls."""
    from collections import Counter

    from acme_core import load

    flags, counts, out = tmp_path / "flags", tmp_path / "counts", str(tmp_path / "run")
    flags.mkdir()
    counts.mkdir()
    (flags / "broken").touch()
    call = (broken_while_flagged, list(range(20)), str(flags), str(counts))
    with pytest.raises(ArithmeticError, match="bad input 17"):
        ParallelMap(*call, output_dir=out, verbose=False).compute(debug=True)
    ran = Counter(int(name.split("_")[0]) for name in os.listdir(counts))
    assert ran == Counter(range(18))  # one by one, in order, up to the failing call
    (flags / "broken").unlink()
    ParallelMap(*call, output_dir=out, n_workers=2, verbose=False).compute()
    ran = Counter(int(name.split("_")[0]) for name in os.listdir(counts))
    assert ran == Counter({**dict.fromkeys(range(20), 1), 17: 2})
    assert [int(r[0]) for r in load(out)] == [x * x for x in range(20)]


def test_joblib_runs_calls_in_other_processes():
    pids = ParallelMap(where, list(range(8)), write_worker_results=False, n_workers=2).compute()
    assert os.getpid() not in pids


def test_joblib_pool_is_reused_across_runs():
    first = set(ParallelMap(where, list(range(6)), write_worker_results=False, n_workers=2).compute())
    # one worker may take every batch of a run, so the two runs' pids need not overlap; a
    # reused pool means both runs ran in processes that were alive before the second began
    alive = {child.pid for child in psutil.Process().children(recursive=True)}
    assert first <= alive
    second = set(ParallelMap(where, list(range(6)), write_worker_results=False, n_workers=2).compute())
    assert second <= alive


def test_functions_from_main_closures_and_lambdas_run_on_joblib(tmp_path):
    code = """
        from acme_core import ParallelMap

        def g(x):
            return x + 1

        def make(k):
            return lambda x: x * k

        if __name__ == "__main__":
            print(ParallelMap(g, [1, 2], write_worker_results=False, verbose=False).compute())
            print(ParallelMap(make(10), [1, 2], write_worker_results=False, verbose=False).compute())
    """
    result = run_code(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[2, 3]", "[10, 20]"]


def test_function_from_a_local_module_runs_on_joblib(tmp_path):
    (tmp_path / "mymod.py").write_text("def triple(x):\n    return 3 * x\n")
    code = """
        import sys
        from acme_core import ParallelMap
        from mymod import triple
        if __name__ == "__main__":
            print(ParallelMap(triple, [1, 2], write_worker_results=False, verbose=False).compute())
    """
    result = run_code(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[3, 6]"


def test_failed_call_does_not_lose_the_others(tmp_path):
    pmap = ParallelMap(fail_on_3, [1, 2, 3, 4], output_dir=str(tmp_path / "out"))
    with pytest.raises(ParallelComputationError) as info:
        pmap.compute()
    message = str(info.value)
    assert message.startswith("Parallel computation failed: 1/4 tasks failed")
    assert "ValueError: boom on 3" in message and "[2]" in message
    assert isinstance(info.value, RuntimeError)
    assert info.value.failures.indices == [2] == pmap.failures.indices
    row = pmap.failures[0]
    assert (row.exc_type, row.kind, row.arguments) == ("ValueError", "error", "x=3")
    assert "fail_on_3" in row.traceback
    with h5py.File(pmap.results_container, "r") as h5:
        assert [h5[f"comp_{i}"]["result_0"][0] for i in (0, 1, 3)] == [2, 4, 8]


def test_killed_worker_loses_no_result(tmp_path):
    from tests.helpers.funcs import kill_once

    pmap = ParallelMap(kill_once, list(range(6)), str(tmp_path), write_worker_results=False,
                       n_workers=2)
    assert pmap.compute() == [100, 101, 102, 103, 104, 105]
    assert (tmp_path / "killed_2").exists()  # the worker really died once


def test_default_output_dir_is_a_timestamped_folder_in_the_cwd(tmp_path):
    with ParallelMap(f, [2, 4], 4) as pmap:
        pmap.compute()
    (out,) = tmp_path.glob("ACME_*")
    assert pmap.output_dir == str(out)
    assert re.fullmatch(r"ACME_\d{8}-\d{6}-\d{6}", out.name)
    assert pmap.results_container == str(out / "f.h5")


def test_output_dir_layout_has_only_acme_entries_and_our_marker(tmp_path):
    with ParallelMap(f, [2, 4], 4, output_dir=str(tmp_path / "run")) as pmap:
        pmap.compute()
    names = sorted(os.listdir(tmp_path / "run"))
    # a listing shows ACME's three entries (ACME's test_simple_filter counts glob.glob("*"));
    # our bookkeeping is hidden (.acme_replay: what replaying a call needs)
    assert names[:3] == [".acme_manifest.jsonl", ".acme_replay", ".acme_run.json"]
    assert names[4:] == ["f.h5", "f_payload"]
    visible = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "run" / "*")))
    assert visible == names[3:]
    assert names[3].startswith("ACME_f_") and names[3].endswith(".log")
    log_text = (tmp_path / "run" / names[3]).read_text()
    assert "This is acme-core v." in log_text and "SUCCESS!" in log_text


def test_existing_non_empty_output_dir_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        ParallelMap(f, [2, 4], 4, output_dir=str(tmp_path / "data"))
    assert os.listdir(tmp_path / "data") == ["precious.txt"]


def test_result_shape_stacks_in_memory_and_on_disk(tmp_path):
    arr = ParallelMap(f, [2, 4, 6, 8], 4, write_worker_results=False,
                      result_shape=(None,)).compute()
    assert isinstance(arr, np.ndarray) and arr.tolist() == [18.0, 24.0, 30.0, 36.0]
    with ParallelMap(f, [2, 4, 6, 8], 4, result_shape=(None,), output_dir=str(tmp_path / "o")) as p:
        p.compute()
    with h5py.File(p.results_container, "r") as h5:
        assert list(h5.keys()) == ["result_0"] and h5["result_0"].is_virtual
        assert h5["result_0"][()].tolist() == [18.0, 24.0, 30.0, 36.0]


def test_joblib_parallel_keeps_working_beside_our_pool():
    from joblib import Parallel, delayed

    assert ParallelMap(f, [1, 2], 3, write_worker_results=False).compute() == [12, 15]
    assert Parallel(n_jobs=2)(delayed(f)(x, 3) for x in [1, 2]) == [12, 15]
    assert ParallelMap(f, [1, 2], 3, write_worker_results=False, n_workers=1).compute() == [12, 15]
    assert Parallel(n_jobs=2)(delayed(f)(x, 3) for x in [1, 2]) == [12, 15]
