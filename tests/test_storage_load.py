"""``acme_core.load``: every layout reads back in call order, as in-memory results would."""

from __future__ import annotations

import os

import numpy as np
import pytest

from acme_core import MissingResultsWarning, ParallelComputationError, ParallelMap, load
from tests.helpers.funcs import (
    array_and_scalar,
    dict_or_array,
    f,
    fail_on_3,
    ones_of_length,
    text,
    three_values,
)

J = {"backend": "joblib", "n_workers": 2, "verbose": False}
HDF5_STORAGES = ["hdf5", "hdf5-single", "hdf5-shards"]


def run(func, *args, out, **kwargs):
    with ParallelMap(func, *args, output_dir=str(out), **{**J, **kwargs}) as pmap:
        result = pmap.compute()
    return pmap, result


@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_output_dir_container_and_returned_paths_read_the_same(tmp_path, storage):
    pmap, result = run(array_and_scalar, [1, 2, 3, 4], out=tmp_path / "o", storage=storage)
    for source in (str(tmp_path / "o"), pmap.results_container, result):
        values = load(source)
        assert len(values) == 4
        for x, (arr, scalar) in zip([1, 2, 3, 4], values, strict=True):
            assert arr.tolist() == [0, x, 2 * x] and int(scalar) == x


def test_pickles_read_back_as_the_raw_values(tmp_path):
    pmap, paths = run(array_and_scalar, [1, 2], out=tmp_path / "o", write_pickle=True)
    for source in (str(tmp_path / "o"), paths):
        values = load(source)
        assert isinstance(values[1], tuple) and values[1][0].tolist() == [0, 2, 4]


def test_scalars_read_back_as_acme_stores_them(tmp_path):
    run(f, [2, 4, 6, 8], 4, out=tmp_path / "o")
    assert [v.tolist() for v in load(tmp_path / "o")] == [[18], [24], [30], [36]]


def test_strings_read_back_as_str(tmp_path):
    run(text, [1, 2], out=tmp_path / "o")
    assert [v.tolist() for v in load(tmp_path / "o")] == [["ab"], ["ab"]]


@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_stacked_results_read_back_like_in_memory_results(tmp_path, storage):
    memory = ParallelMap(three_values, [1, 2, 3], result_shape=(None, 2, 3),
                         write_worker_results=False, **J).compute()
    run(three_values, [1, 2, 3], out=tmp_path / "o", result_shape=(None, 2, 3), storage=storage)
    loaded = load(tmp_path / "o")
    assert np.array_equal(loaded[0], memory[0])
    assert [int(v) for v in loaded[1:]] == memory[1:]


@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_unlimited_stacking_reads_back_zero_padded(tmp_path, storage):
    run(ones_of_length, [2, 3, 4], out=tmp_path / "o", result_shape=(None, np.inf),
        storage=storage)
    assert load(tmp_path / "o").tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]


def test_emergency_pickles_are_unwrapped_and_keep_call_order(tmp_path):
    _, paths = run(dict_or_array, [0, 1, 2, 3], out=tmp_path / "o")
    for source in (str(tmp_path / "o"), paths):
        values = load(source)
        assert values[0] == {"a": 0} and values[2] == {"a": 2}
        assert values[1].tolist() == [1, 1] and values[3].tolist() == [3, 3]


@pytest.mark.parametrize("storage", ["hdf5", "hdf5-single", "hdf5-shards", "pickle"])
def test_failed_calls_read_back_as_none(tmp_path, storage):
    with pytest.raises(ParallelComputationError):
        run(fail_on_3, [1, 2, 3, 4], out=tmp_path / "o", storage=storage)
    with pytest.warns(MissingResultsWarning, match=r"1 of 4 calls have no result .*: call 2\."):
        values, missing = load(tmp_path / "o", return_missing=True)
    assert values[2] is None and missing == [2]
    assert [int(np.ravel(v)[0]) for i, v in enumerate(values) if i != 2] == [2, 4, 8]


def test_load_refuses_what_is_not_a_run(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="no acme-core run"):
        load(tmp_path / "x")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.h5")
    assert not os.path.exists(tmp_path / "nope.h5")
