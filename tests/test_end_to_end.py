"""ParallelMap end to end: the seed README's examples, backends by name, life cycle."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from acme_core import ParallelComputationError, ParallelMap
from tests.helpers.funcs import f, fail_on_3, where

BACKENDS = ["joblib", "threads"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_example_on_disk(backend):
    with ParallelMap(f, [2, 4, 6, 8], 4, backend=backend) as pmap:
        paths = pmap.compute()
    assert [os.path.basename(p) for p in paths] == [f"f_{i}.h5" for i in range(4)]
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in paths)
    with h5py.File(pmap.results_container, "r") as h5:
        assert h5["comp_0"]["result_0"][()].tolist() == [18]
        assert [h5[f"comp_{i}"]["result_0"][0] for i in range(4)] == [18, 24, 30, 36]


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_example_in_memory(backend):
    pmap = ParallelMap(f, [2, 4, 6, 8], 4, write_worker_results=False, backend=backend)
    assert pmap.compute() == [18, 24, 30, 36]  # also without `with` (ACME returned None)


def test_debug_runs_every_call_in_this_process():
    results = ParallelMap(where, [1, 2, 3], write_worker_results=False).compute(debug=True)
    assert results == [os.getpid()] * 3


def test_debug_lets_the_original_exception_propagate():
    pmap = ParallelMap(fail_on_3, [1, 2, 3, 4], write_worker_results=False)
    with pytest.raises(ValueError, match="boom on 3"):
        pmap.compute(debug=True)


def test_joblib_runs_calls_in_other_processes():
    pids = ParallelMap(where, list(range(8)), write_worker_results=False, n_workers=2).compute()
    assert os.getpid() not in pids


def test_joblib_pool_is_reused_across_runs():
    first = set(ParallelMap(where, list(range(6)), write_worker_results=False, n_workers=2).compute())
    second = set(ParallelMap(where, list(range(6)), write_worker_results=False, n_workers=2).compute())
    assert first & second


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown backend 'nope'.*'joblib'.*'threads'"):
        ParallelMap(f, [1, 2], 3, backend="nope")


def test_unknown_storage_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown storage 'nope'.*'hdf5'.*'memory'"):
        ParallelMap(f, [1, 2], 3, storage="nope")


def _run(code: str, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_plugins_command_lists_backends_and_storages(tmp_path):
    out = subprocess.run([sys.executable, "-m", "acme_core", "plugins"], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    for name, dist in (("joblib", "acme-joblib"), ("threads", "acme-threads-test-plugin"),
                       ("memory", "acme-core"), ("hdf5", "acme-core")):
        assert any(line.split()[:2] == [name, dist] for line in out.splitlines()), out


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
    result = _run(code, tmp_path)
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
    result = _run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[3, 6]"


def test_plugin_selection_by_environment(tmp_path):
    code = """
        from acme_core import plugins
        print(sorted(plugins.executors()), sorted(plugins.storages()))
    """
    everything = _run(code, tmp_path).stdout.strip()
    builtin_storages = everything[everything.index("] [") + 2:]
    assert "'hdf5'" in builtin_storages and "'memory'" in builtin_storages
    env = {**os.environ, "ACME_CORE_PLUGINS": "threads"}
    assert _run(code, tmp_path, env).stdout.strip() == f"['threads'] {builtin_storages}"
    env["ACME_CORE_PLUGINS"] = ""
    # built-ins always load
    assert _run(code, tmp_path, env).stdout.strip() == f"[] {builtin_storages}"


def test_without_any_backend_the_error_says_how_to_install_one(tmp_path):
    code = """
        from acme_core import ParallelMap
        try:
            ParallelMap(abs, [1, 2])
        except Exception as exc:
            print(type(exc).__name__, exc)
    """
    out = _run(code, tmp_path, {**os.environ, "ACME_CORE_PLUGINS": ""}).stdout
    assert out.startswith("PluginError") and "pip install acme-joblib" in out
    assert not list(tmp_path.glob("ACME_*"))


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
    assert names[1:] == ["acme_manifest.jsonl", "acme_replay", "acme_run.json", "f.h5",
                         "f_payload"]  # acme_replay: what replaying a call needs
    assert names[0].startswith("ACME_f_") and names[0].endswith(".log")
    log_text = (tmp_path / "run" / names[0]).read_text()
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
