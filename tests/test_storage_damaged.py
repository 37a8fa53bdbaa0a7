"""``Storage.damaged``: of the calls recorded as done, those whose stored result is gone.

A resume trusts the files only after this check; here the files are damaged the way a power
loss without fsync or a careless user damages them (truncated, deleted), through real runs.
"""

from __future__ import annotations

import os

import h5py
import pytest

from acme_core import ParallelMap
from acme_core.storage.base import StorageSettings
from acme_core.storage.hdf5_files import HDF5FileStorage
from acme_core.storage.hdf5_shards import HDF5ShardStorage
from acme_core.storage.hdf5_single import HDF5SingleStorage
from acme_core.storage.memory import MemoryStorage
from acme_core.storage.pickle_files import PickleStorage
from tests.helpers.funcs import arrays, dict_or_array

J = {"backend": "joblib", "n_workers": 2, "verbose": False}
N = 20


def _run(out, storage, func=arrays, **kwargs):
    with ParallelMap(func, range(N), output_dir=str(out), storage=storage, **J,
                     **kwargs) as pmap:
        pmap.compute()
    return pmap


def _truncate(path, keep=0.5):
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.truncate(int(size * keep))


def _settings(out, **kwargs):
    return StorageSettings(func_name=kwargs.pop("func_name", "arrays"), n_calls=N,
                           output_dir=str(out), resume=True, **kwargs)


def test_hdf5_reports_truncated_and_deleted_call_files(tmp_path):
    out = tmp_path / "o"
    _run(out, "hdf5")
    payload = out / "arrays_payload"
    _truncate(payload / "arrays_3.h5")
    os.remove(payload / "arrays_11.h5")
    assert HDF5FileStorage(_settings(out)).damaged(range(N)) == {3, 11}


def test_hdf5_reports_truncated_emergency_pickles(tmp_path):
    out = tmp_path / "o"
    _run(out, "hdf5", dict_or_array)  # even calls pickled, every file moved up
    _truncate(out / "dict_or_array_4.pickle")
    _truncate(out / "dict_or_array_5.h5")
    storage = HDF5FileStorage(_settings(out, func_name="dict_or_array"))
    assert storage.damaged(range(N)) == {4, 5}


def test_pickle_reports_truncated_pickles(tmp_path):
    out = tmp_path / "o"
    _run(out, "pickle")
    for i in (0, 7):
        _truncate(out / f"arrays_{i}.pickle", 0.9)
    os.remove(out / "arrays_8.pickle")
    assert PickleStorage(_settings(out)).damaged(range(N)) == {0, 7, 8}


def test_shards_report_every_call_of_a_truncated_shard(tmp_path):
    out = tmp_path / "o"
    _run(out, "hdf5-shards")
    payload = out / "arrays_payload"
    shards = sorted(os.listdir(payload))
    with h5py.File(payload / shards[0], "r") as h5:
        lost = {int(k[5:]) for k in h5}
    assert 0 < len(lost) < N or len(shards) == 1
    _truncate(payload / shards[0])
    assert HDF5ShardStorage(_settings(out)).damaged(range(N)) == lost


def test_single_file_reports_every_call_when_truncated_and_rebuilds(tmp_path):
    out = tmp_path / "o"
    pmap = _run(out, "hdf5-single")
    storage = HDF5SingleStorage(_settings(out))
    assert storage.damaged(range(N)) == set()
    _truncate(pmap.results_container)
    assert storage.damaged(range(N)) == set(range(N))
    storage.prepare()  # a resume: re-runs call 2 only, the file is rebuilt without error
    storage.writer().write(2, 2.0)
    storage.finish()
    assert storage.damaged(range(N)) == set(range(N)) - {2}


def test_storages_without_files_report_nothing(tmp_path):
    assert MemoryStorage(StorageSettings("f", 3)).damaged([0, 1, 2]) == set()


@pytest.mark.parametrize("storage", ["hdf5", "hdf5-single", "hdf5-shards", "pickle"])
def test_intact_runs_have_no_damage(tmp_path, storage):
    out = tmp_path / "o"
    _run(out, storage)
    from acme_core import plugins

    spec = plugins.get_storage_spec(storage)
    assert spec.get_factory()(_settings(out)).damaged(range(N)) == set()
