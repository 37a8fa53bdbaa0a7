"""Missing is never data: a call without a result reads as NaN (floats) or is reported
(every dtype), in every storage, through ``load`` and through plain h5py."""

from __future__ import annotations

import os
import pickle

import h5py
import numpy as np
import pytest

from acme_core import MissingResultsWarning, ParallelComputationError, ParallelMap, load
from acme_core.storage.base import StorageSettings
from acme_core.storage.memory import MemoryStorage
from tests.helpers.funcs import dict_or_row, nothing, row_or_fail, text

J = {"backend": "joblib", "n_workers": 2, "verbose": False}
HDF5 = ["hdf5", "hdf5-single", "hdf5-shards"]


def _failing_run(out, storage, dtype="float", bad=(1, 3)):
    pm = ParallelMap(row_or_fail, range(5), bad=str(bad), result_shape=(None, 3),
                     result_dtype=dtype, storage=storage, output_dir=str(out), **J)
    with pm, pytest.raises(ParallelComputationError):
        pm.compute()
    return pm


@pytest.mark.parametrize("storage", HDF5)
def test_missing_calls_of_a_stacked_float_run_are_nan_and_named(tmp_path, storage):
    pmap = _failing_run(tmp_path / "o", storage)
    with h5py.File(pmap.results_container, "r") as h5:  # plain h5py: NaN, not zeros
        rows = h5["result_0"][()]
    assert np.isnan(rows[[1, 3]]).all()
    assert rows[[0, 2, 4]].tolist() == [[0.0] * 3, [2.0] * 3, [4.0] * 3]
    for source in (tmp_path / "o", pmap.results_container):
        with pytest.warns(MissingResultsWarning, match=r"2 of 5 calls .*: calls 1, 3\. .*NaN"):
            values, missing = load(source, return_missing=True)
        assert missing == [1, 3]
        assert np.isnan(values[[1, 3]]).all() and values[4].tolist() == [4.0] * 3


@pytest.mark.parametrize("storage", HDF5)
def test_integer_results_without_nan_still_name_the_missing_calls(tmp_path, storage):
    _failing_run(tmp_path / "o", storage, dtype="int32", bad=(2,))
    with pytest.warns(MissingResultsWarning, match=r"call 2\. .*are 0 \(this dtype has no NaN"):
        values, missing = load(tmp_path / "o", return_missing=True)
    assert missing == [2] and values.dtype == np.int32
    assert values[:, 0].tolist() == [0, 1, 0, 3, 4]


def test_in_memory_stacking_fills_missing_calls_with_nan():
    storage = MemoryStorage(StorageSettings("f", 3, result_shape=(None, 2)))
    from acme_core.calls import CallOutcome

    storage.collect(CallOutcome(0, np.ones(2)))
    assert np.isnan(storage.finish()[1:]).all()
    ints = MemoryStorage(StorageSettings("f", 2, result_shape=(None, 2), result_dtype="int8"))
    assert ints.finish().tolist() == [[0, 0], [0, 0]]


def test_a_function_returning_none_has_a_result(tmp_path, recwarn):
    with ParallelMap(nothing, range(3), write_pickle=True, output_dir=str(tmp_path / "p"),
                     **J) as pmap:
        paths = pmap.compute()
    with open(paths[1], "rb") as fh:
        assert pickle.load(fh) is None
    assert load(tmp_path / "p", return_missing=True) == ([None, None, None], [])
    assert not [w for w in recwarn if issubclass(w.category, MissingResultsWarning)]


def test_strings_read_back_as_an_array_of_str(tmp_path):
    with ParallelMap(text, range(2), output_dir=str(tmp_path / "s"), **J) as pmap:
        pmap.compute()
    values = load(tmp_path / "s")
    assert [v.tolist() for v in values] == [["ab"], ["ab"]]
    with h5py.File(pmap.results_container, "r") as h5:  # plain h5py: bytes, as ACME
        assert h5["comp_0/result_0"][()].tolist() == [b"ab"]


def test_a_deleted_call_file_is_reported_by_every_reader(tmp_path):
    with ParallelMap(row_or_fail, range(4), bad="", output_dir=str(tmp_path / "o"), **J) as pm:
        paths = pm.compute()
    os.remove(paths[2])
    for source in (tmp_path / "o", pm.results_container, paths):
        with pytest.warns(MissingResultsWarning, match="call 2"):
            values, missing = load(source, return_missing=True)
        assert missing == [2] and values[2] is None and values[3].tolist() == [3, 3, 3]


def test_emergency_pickling_with_result_shape_as_acme(tmp_path):
    out = tmp_path / "mixed"
    with ParallelMap(dict_or_row, range(4), result_shape=(3, None), output_dir=str(out),
                     **J) as pmap:
        paths = pmap.compute()
    assert [os.path.basename(p) for p in paths] == [
        "dict_or_row_0.pickle", "dict_or_row_1.h5", "dict_or_row_2.pickle", "dict_or_row_3.h5"]
    assert pmap.results_container is None
    assert not os.path.exists(out / "dict_or_row.h5")
    assert not os.path.exists(out / "dict_or_row_payload")
    with open(paths[2], "rb") as fh:
        assert pickle.load(fh) == [{"a": 2}]  # ACME's list-wrapped value
    with h5py.File(paths[3], "r") as h5:
        assert h5["result_0"][()].tolist() == [3.0, 3.0, 3.0]
    values = load(out)
    assert values[0] == {"a": 0} and values[3].tolist() == [3.0, 3.0, 3.0]
