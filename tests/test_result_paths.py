"""What ``compute()`` returns for per-call files above ``LIST_LIMIT`` calls: a sequence that
builds each path on access, holds the same paths as the list and reads back alike."""

from __future__ import annotations

import os
import pickle

import h5py
import pytest

import acme_core.result_paths as result_paths_module
from acme_core import ParallelComputationError, ParallelMap, load
from acme_core.result_paths import ResultPaths
from tests.helpers.funcs import dict_or_array, f, fail_on_3

J = {"backend": "joblib", "n_workers": 2, "verbose": False}


@pytest.fixture
def small_limit(monkeypatch):
    """Runs of more than 3 calls get the lazy sequence (10^5 calls would take minutes)."""
    monkeypatch.setattr(result_paths_module, "LIST_LIMIT", 3)


@pytest.mark.parametrize("storage, suffix", [("hdf5", ".h5"), ("pickle", ".pickle")])
def test_paths_above_the_limit_are_the_list_of_the_files_written(tmp_path, small_limit,
                                                                 storage, suffix):
    out = tmp_path / "run"
    with ParallelMap(f, [1, 2, 3, 4, 5], 2, output_dir=str(out), storage=storage,
                     **J) as pmap:
        paths = pmap.compute()
    assert isinstance(paths, ResultPaths)
    folder = str(out / "f_payload") if storage == "hdf5" else str(out)
    expected = [os.path.join(folder, f"f_{i}{suffix}") for i in range(5)]
    assert paths == expected and expected == paths and list(paths) == expected
    assert len(paths) == 5 and paths[-1] == expected[4] and paths[1:3] == expected[1:3]
    assert expected[2] in paths and paths.index(expected[2]) == 2
    assert all(os.path.isfile(p) for p in paths)
    assert [int(v[0]) if storage == "hdf5" else v for v in load(paths)] == [9, 12, 15, 18, 21]
    assert pickle.loads(pickle.dumps(paths)) == expected
    with pytest.raises(IndexError):
        paths[5]


def test_runs_up_to_the_limit_get_a_plain_list(tmp_path, small_limit):
    with ParallelMap(f, [1, 2, 3], 2, output_dir=str(tmp_path / "run"), **J) as pmap:
        paths = pmap.compute()
    assert type(paths) is list and len(paths) == 3


def test_a_pickled_result_moves_every_file_up_as_a_list(tmp_path, small_limit):
    # one value HDF5 cannot hold: ACME's emergency pickling moves every file into output_dir
    with ParallelMap(dict_or_array, [0, 1, 2, 3], output_dir=str(tmp_path / "run"),
                     **J) as pmap:
        paths = pmap.compute()
    assert all(os.path.dirname(p) == str(tmp_path / "run") for p in paths)
    assert sorted(p.rsplit(".", 1)[1] for p in paths).count("pickle") >= 1
    assert all(os.path.isfile(p) for p in paths)


def test_a_failed_call_keeps_its_path_and_the_others_read_back(tmp_path, small_limit):
    out = tmp_path / "run"
    pmap = ParallelMap(fail_on_3, [0, 1, 2, 3, 4], output_dir=str(out), **J)
    with pytest.raises(ParallelComputationError):
        pmap.compute()
    # a second compute() with the call fixed: the lazy paths point at every file
    with ParallelMap(fail_on_3, [0, 1, 2, 30, 4], output_dir=str(out), **J) as again:
        paths = again.compute()
    assert isinstance(paths, ResultPaths) and all(os.path.isfile(p) for p in paths)
    with h5py.File(paths[3], "r") as h5:
        assert int(h5["result_0"][()][0]) == 60


def test_repr_is_short_for_a_million_paths():
    paths = ResultPaths("/out/f_payload", "f", 10**6)
    assert len(repr(paths)) < 200 and "1,000,000 paths" in repr(paths)
    assert paths[999_999] == "/out/f_payload/f_999999.h5"
    assert "/out/f_payload/f_1000000.h5" not in paths and "/out/f_payload/f_01.h5" not in paths
