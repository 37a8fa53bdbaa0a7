"""ACME's on-disk layouts (docs/guide/storage.md), read as a user reads them: with plain h5py
and pickle."""

from __future__ import annotations

import os
import pickle
import re

import h5py
import numpy as np
import pytest

from acme_core import ParallelMap, manifest
from acme_core.output_dir import MARKER
from acme_core.replays import DIRNAME
from tests.helpers.funcs import (
    array_and_scalar,
    as_dict,
    column,
    dict_or_array,
    f,
    four_values,
    nothing,
    one_point_five,
    ones23,
    ones_of_length,
    pair,
    text,
    three_values,
)

HDF5_STORAGES = ["hdf5", "hdf5-single", "hdf5-shards"]
J = {"backend": "joblib", "n_workers": 2, "verbose": False}


def run(func, *args, out, **kwargs):
    with ParallelMap(func, *args, output_dir=str(out), **{**J, **kwargs}) as pmap:
        result = pmap.compute()
    return pmap, result


# ------------------------------------------------------------------ default layout
def test_default_run_dir_paths_and_entries(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ParallelMap(f, [2, 4, 6, 8], 4, **J) as pmap:
        paths = pmap.compute()
    out = os.path.dirname(os.path.dirname(paths[0]))
    assert re.fullmatch(r"ACME_\d{8}-\d{6}-\d{6}", os.path.basename(out))
    assert os.path.dirname(out) == str(tmp_path)  # the CWD (ACME's documented intent)
    assert all(os.path.isabs(p) for p in paths)
    assert [p[len(out) + 1:] for p in paths] == [f"f_payload/f_{i}.h5" for i in range(4)]
    assert pmap.results_container == os.path.join(out, "f.h5")
    names = sorted(os.listdir(out))
    logs = [n for n in names if re.fullmatch(r"ACME_f_\d{8}-\d{6}\.log", n)]
    assert len(logs) == 1 and {"f.h5", "f_payload"} <= set(names)
    ours = {MARKER, manifest.NAME, "logs", DIRNAME}  # + replay files
    assert set(names) - {"f.h5", "f_payload", *logs} <= ours


def test_container_links_to_the_payload_datasets(tmp_path):
    pmap, paths = run(f, [2, 4, 6, 8], 4, out=tmp_path / "o")
    with h5py.File(pmap.results_container, "r") as h5:
        assert list(h5.keys()) == [f"comp_{i}" for i in range(4)]
        for i, want in enumerate([18, 24, 30, 36]):
            link = h5.get(f"comp_{i}", getlink=True)
            assert isinstance(link, h5py.ExternalLink)
            assert link.filename == f"f_payload/f_{i}.h5" and link.path == "/"
            data = h5[f"comp_{i}/result_0"]
            assert data.dtype == np.int64 and data.shape == (1,) and data[()].tolist() == [want]
    for path in paths:
        with h5py.File(path, "r") as h5:
            assert list(h5.keys()) == ["result_0"]


def test_deleting_the_payload_breaks_the_links(tmp_path):
    pmap, paths = run(f, [2, 4], 4, out=tmp_path / "o")
    for path in paths:
        os.remove(path)
    with h5py.File(pmap.results_container, "r") as h5, pytest.raises(KeyError):
        h5["comp_0"]["result_0"]


def test_per_call_files_leave_no_temporary_files(tmp_path):
    pmap, paths = run(f, list(range(20)), 4, out=tmp_path / "o")
    payload = os.path.dirname(paths[0])
    assert sorted(os.listdir(payload)) == sorted(f"f_{i}.h5" for i in range(20))


@pytest.mark.parametrize(("n_calls", "resume", "hinted"), [
    (10_000, False, True), (9_999, False, False), (10_000, True, False)])
def test_a_new_run_of_many_per_call_files_suggests_shards(tmp_path, caplog, n_calls, resume,
                                                          hinted):
    """What a new hdf5 run of 10^4 calls says when it starts (prepare makes the folders
    only: no call runs here)."""
    import logging

    from acme_core.records import StorageSettings
    from acme_core.storage.hdf5_files import HDF5FileStorage

    (tmp_path / "o").mkdir()
    if resume:  # an earlier run's folders
        (tmp_path / "o" / "f_payload").mkdir()
    storage = HDF5FileStorage(StorageSettings("f", n_calls, str(tmp_path / "o"), resume=resume))
    with caplog.at_level(logging.INFO, logger="acme_core"):
        storage.prepare()
    said = [r.getMessage() for r in caplog.records if "hdf5-shards" in r.getMessage()]
    assert (said == [f"{n_calls} calls write {n_calls} result files, one per call, each "
                     f"synced to disk on its own (slow on shared file systems, and as many "
                     f"inodes of a quota); storage='hdf5-shards' keeps small results in one "
                     f"file per worker process."]) is hinted, said


# ------------------------------------------------------------------ return-value mapping
def _comp(storage, pmap, paths, i):
    """Call i's datasets as a user opens them: the container's comp_i, or (hdf5-shards,
    small uniform results stored as rows) row i of the container's result_<k>."""
    h5 = h5py.File(pmap.results_container, "r")
    if storage == "hdf5-shards" and f"comp_{i}" not in h5:
        assert h5["done"][i]
        return h5, {k: h5[k][i] for k in h5 if k.startswith("result_")}
    return h5, h5[f"comp_{i}"]


@pytest.mark.parametrize("storage", HDF5_STORAGES)
@pytest.mark.parametrize(("func", "expected"), [
    (one_point_five, {"result_0": (np.float64, [1.5])}),
    (pair, {"result_0": (np.int64, [3, 4])}),
    (array_and_scalar, {"result_0": (np.int64, [0, 3, 6]), "result_1": (np.int64, 3)}),
    (ones23, {"result_0": (np.float64, np.ones((2, 3)).tolist())}),
])
def test_each_return_value_maps_to_its_datasets(tmp_path, storage, func, expected):
    pmap, paths = run(func, [1, 3], out=tmp_path / "o", storage=storage)
    h5, group = _comp(storage, pmap, paths, 1)
    with h5:
        assert sorted(group.keys()) == sorted(expected)
        for key, (dtype, value) in expected.items():
            assert group[key].dtype == dtype
            assert group[key][()].tolist() == value


@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_strings_are_one_variable_length_string(tmp_path, storage):
    pmap, paths = run(text, [1, 2], out=tmp_path / "o", storage=storage)
    with h5py.File(pmap.results_container, "r") as h5:
        data = h5["comp_0/result_0"]
        assert data.shape == (1,) and h5py.check_string_dtype(data.dtype) is not None
        assert data[()].tolist() == [b"ab"]


@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_four_return_values_make_four_datasets(tmp_path, storage):
    pmap, _ = run(four_values, [1, 2, 3], out=tmp_path / "o", storage=storage)
    for i, x in enumerate([1, 2, 3]):
        h5, group = _comp(storage, pmap, None, i)
        with h5:
            assert sorted(group.keys()) == [f"result_{k}" for k in range(4)]
            assert group["result_0"][()].tolist() == [float(x)] * 3
            assert group["result_1"][()] == x and group["result_2"][()] == 2 * x
            assert group["result_3"][()].tolist() == (np.ones((2, 2)) * x).tolist()
    in_memory = ParallelMap(four_values, [1, 2, 3], write_worker_results=False, **J).compute()
    assert [len(r) for r in in_memory] == [4, 4, 4] and all(isinstance(r, tuple) for r in in_memory)


# ------------------------------------------------------------------ single_file
def test_single_file_holds_real_datasets_equal_to_the_multi_file_ones(tmp_path):
    multi, _ = run(array_and_scalar, [1, 2, 3, 4], out=tmp_path / "multi")
    single, result = run(array_and_scalar, [1, 2, 3, 4], out=tmp_path / "single",
                         single_file=True)
    assert result == [single.results_container]
    entries = os.listdir(tmp_path / "single")
    assert [e for e in entries if e.endswith(".h5")] == ["array_and_scalar.h5"]
    assert not any(e.endswith("_payload") for e in entries)
    with h5py.File(multi.results_container, "r") as a, h5py.File(result[0], "r") as b:
        for i in range(4):
            assert sorted(b[f"comp_{i}"].keys()) == ["result_0", "result_1"]
            for k in ("result_0", "result_1"):
                assert b.get(f"comp_{i}/{k}", getlink=True).__class__ is h5py.HardLink
                assert np.array_equal(a[f"comp_{i}/{k}"][()], b[f"comp_{i}/{k}"][()])
                assert a[f"comp_{i}/{k}"].dtype == b[f"comp_{i}/{k}"].dtype


def test_single_file_on_threads_backend(tmp_path):
    pmap, result = run(f, [2, 4, 6, 8], 4, out=tmp_path / "o", single_file=True,
                       backend="threads")
    with h5py.File(result[0], "r") as h5:
        assert [h5[f"comp_{i}/result_0"][0] for i in range(4)] == [18, 24, 30, 36]


# ------------------------------------------------------------------ pickle
def test_write_pickle_files_hold_the_raw_return_values(tmp_path):
    pmap, paths = run(f, [2, 4, 6, 8], 4, out=tmp_path / "o", write_pickle=True)
    out = str(tmp_path / "o")
    assert paths == [os.path.join(out, f"f_{i}.pickle") for i in range(4)]
    assert pmap.results_container is None
    assert not os.path.exists(os.path.join(out, "f_payload"))
    assert not any(e.endswith(".h5") for e in os.listdir(out))
    values = []
    for path in paths:
        with open(path, "rb") as fh:
            values.append(pickle.load(fh))
    assert values == [18, 24, 30, 36]


def test_pickle_keeps_multiple_returns_as_a_tuple(tmp_path):
    _, paths = run(array_and_scalar, [1, 2], out=tmp_path / "o", write_pickle=True)
    with open(paths[1], "rb") as fh:
        value = pickle.load(fh)
    assert isinstance(value, tuple) and value[0].tolist() == [0, 2, 4] and value[1] == 2


def test_pickle_ignores_result_shape_with_a_warning(tmp_path, caplog):
    _, paths = run(f, [2, 4], 4, out=tmp_path / "o", write_pickle=True, result_shape=(None,))
    assert "result_shape is ignored" in caplog.text
    with open(paths[0], "rb") as fh:
        assert pickle.load(fh) == 18


def test_pickle_and_single_file_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="single_file"):
        ParallelMap(f, [2, 4], 4, write_pickle=True, single_file=True,
                    output_dir=str(tmp_path / "o"))
    assert not os.path.exists(tmp_path / "o")


# ------------------------------------------------------------------ stacking
@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_result_shape_stacks_the_calls_into_one_dataset(tmp_path, storage):
    pmap, result = run(f, [2, 4, 6, 8], 4, out=tmp_path / "o", result_shape=(None,),
                       storage=storage)
    with h5py.File(pmap.results_container, "r") as h5:
        assert list(h5.keys()) == ["result_0"]
        data = h5["result_0"]
        assert data.is_virtual == (storage != "hdf5-single")
        assert data.shape == (4,) and data.dtype == np.float64
        assert data[()].tolist() == [18.0, 24.0, 30.0, 36.0]
    if storage == "hdf5":
        assert [os.path.basename(p) for p in result] == [f"f_{i}.h5" for i in range(4)]
    else:
        assert result == [pmap.results_container]


def test_result_shape_in_memory_is_an_array(tmp_path):
    arr = ParallelMap(f, [2, 4, 6, 8], 4, result_shape=(None,), write_worker_results=False,
                      **J).compute()
    assert isinstance(arr, np.ndarray) and arr.shape == (4,) and arr.tolist() == [18, 24, 30, 36]


@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_result_shape_rows_and_result_dtype(tmp_path, storage):
    pmap, _ = run(f, [2, 4, 6, 8], np.ones(3) * 4, n_inputs=4, out=tmp_path / "o",
                  result_shape=(None, 3), result_dtype="float16", storage=storage)
    with h5py.File(pmap.results_container, "r") as h5:
        data = h5["result_0"]
        assert data.shape == (4, 3) and data.dtype.name == "float16"
        assert data[()].tolist() == [[v] * 3 for v in (18.0, 24.0, 30.0, 36.0)]


@pytest.mark.parametrize(("dtype", "exc", "message"), [
    ("invalid", TypeError, "valid NumPy datatype"), (np.ones(3), TypeError, "has to be a string")])
def test_invalid_result_dtypes_are_refused(tmp_path, dtype, exc, message):
    with pytest.raises(exc, match=message):
        ParallelMap(f, [2, 4], 4, result_shape=(None,), result_dtype=dtype,
                    output_dir=str(tmp_path / "o"))


@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_unlimited_dimension_is_zero_padded(tmp_path, storage):
    pmap, _ = run(ones_of_length, [2, 3, 4], out=tmp_path / "o", result_shape=(None, np.inf),
                  storage=storage)
    with h5py.File(pmap.results_container, "r") as h5:
        data = h5["result_0"]
        assert data.shape == (3, 4) and data.maxshape == (3, None)
        assert data.is_virtual == (storage != "hdf5-single")
        assert data[()].tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]


def test_unlimited_axis_before_the_calls_axis(tmp_path):
    pmap, _ = run(ones_of_length, [2, 3], out=tmp_path / "o", result_shape=(np.inf, None),
                  single_file=True)
    with h5py.File(pmap.results_container, "r") as h5:
        assert h5["result_0"][()].tolist() == [[1, 1], [1, 1], [0, 1]]


@pytest.mark.parametrize(("shape", "kwargs", "exc", "message"), [
    ((None, np.inf), {"write_worker_results": False}, ValueError, "only valid if"),
    ((None, np.inf, np.inf), {}, ValueError, "more than one `np.inf`"),
    ((3, 5), {}, ValueError, "exactly one `None`"),
    ((None, None, 5), {}, ValueError, "exactly one `None`"),
    (("invalid", None, 5), {}, ValueError, "numerical values"),
    ((-3, None, 5), {}, ValueError, "non-negative integers"),
    ((np.pi, None, 5), {}, ValueError, "non-negative integers"),
    (3, {}, TypeError, "tuple"),
])
def test_invalid_result_shapes_are_refused(tmp_path, shape, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        ParallelMap(ones_of_length, [2, 3], result_shape=shape, output_dir=str(tmp_path / "o"),
                    **kwargs)


def test_the_none_in_result_shape_places_the_stacking_axis(tmp_path):
    rows, _ = run(column, [0, 10, 20], out=tmp_path / "rows", result_shape=(None, 5),
                  single_file=True)
    cols, _ = run(column, [0, 10, 20], out=tmp_path / "cols", result_shape=(5, None),
                  single_file=True)
    with h5py.File(rows.results_container, "r") as a, h5py.File(cols.results_container, "r") as b:
        assert b["result_0"].shape == (5, 3)
        assert np.array_equal(a["result_0"][()].T, b["result_0"][()])


@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_stacked_first_value_and_extra_returns(tmp_path, storage):
    pmap, _ = run(three_values, [1, 2, 3], out=tmp_path / "o", result_shape=(None, 2, 3),
                  storage=storage)
    with h5py.File(pmap.results_container, "r") as h5:
        assert sorted(h5.keys()) == ["comp_0", "comp_1", "comp_2", "result_0"]
        assert h5["result_0"].shape == (3, 2, 3)
        assert h5["result_0"][()][:, 0, 0].tolist() == [1.0, 2.0, 3.0]
        for i, x in enumerate([1, 2, 3]):
            assert sorted(h5[f"comp_{i}"].keys()) == ["result_1", "result_2"]
            assert h5[f"comp_{i}/result_1"][()] == x and h5[f"comp_{i}/result_2"][()] == -x


def test_stacked_first_value_and_extra_returns_in_memory_are_a_flat_list(tmp_path):
    res = ParallelMap(three_values, [1, 2, 3], result_shape=(None, 2, 3),
                      write_worker_results=False, **J).compute()
    assert isinstance(res, list) and res[0].shape == (3, 2, 3)
    assert res[1:] == [1, -1, 2, -2, 3, -3]


@pytest.mark.parametrize("storage", HDF5_STORAGES)
def test_a_first_value_of_the_wrong_shape_stops_the_run(tmp_path, storage):
    # It used to fail that call only, after every other call had run (200 one-hour trials:
    # 200 hours, then rejected); now the first misfit stops the run, finished ones are kept.
    from acme_core import manifest
    from acme_core.errors import ResultShapeError

    with pytest.raises(ResultShapeError, match="result_shape"):
        run(ones_of_length, [3, 4], out=tmp_path / "o", result_shape=(None, 3),
            storage=storage)
    state = manifest.read(str(tmp_path / "o"))
    assert state.failed == {1} and state.failures[1]["type"] == "ResultShapeError"


# ------------------------------------------------------------------ emergency pickling
@pytest.mark.parametrize("func", [as_dict, nothing])
def test_results_hdf5_cannot_hold_are_pickled_instead(tmp_path, func, caplog):
    pmap, paths = run(func, [1, 2], out=tmp_path / "o")
    out = str(tmp_path / "o")
    assert paths == [os.path.join(out, f"{func.__name__}_{i}.pickle") for i in range(2)]
    assert pmap.results_container is None
    assert not os.path.exists(os.path.join(out, f"{func.__name__}.h5"))
    assert not os.path.exists(os.path.join(out, f"{func.__name__}_payload"))
    for x, path in zip([1, 2], paths, strict=True):
        with open(path, "rb") as fh:
            assert pickle.load(fh) == [func(x)]
    assert "pickled instead" in caplog.text and "has been removed" in caplog.text


def test_mixed_pickled_and_hdf5_results_keep_call_order(tmp_path):
    _, paths = run(dict_or_array, [0, 1, 2, 3], out=tmp_path / "o")
    assert [os.path.basename(p) for p in paths] == [
        "dict_or_array_0.pickle", "dict_or_array_1.h5", "dict_or_array_2.pickle",
        "dict_or_array_3.h5"]
    with h5py.File(paths[1], "r") as h5:
        assert h5["result_0"][()].tolist() == [1, 1]
    with open(paths[2], "rb") as fh:
        assert pickle.load(fh) == [{"a": 2}]


def test_pickle_names_do_not_collide(tmp_path):
    # ACME named call 5 "f_.pickle" and let call 15 overwrite call 1 (rstrip(".h5"))
    _, paths = run(as_dict, list(range(16)), out=tmp_path / "o")
    assert [os.path.basename(p) for p in paths] == [f"as_dict_{i}.pickle" for i in range(16)]
    for i, path in enumerate(paths):
        with open(path, "rb") as fh:
            assert pickle.load(fh) == [{"a": i}]


def test_single_file_has_no_pickle_fallback(tmp_path):
    with pytest.raises(RuntimeError, match="Parallel computation failed: 2/2") as err:
        run(as_dict, [1, 2], out=tmp_path / "o", single_file=True)
    assert "no pickle fallback" in str(err.value.failures[0].message)
    with h5py.File(tmp_path / "o" / "as_dict.h5", "r") as h5:  # still a valid file
        assert len(h5["comp_0"]) == 0
