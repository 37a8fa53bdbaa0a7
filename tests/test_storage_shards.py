"""``storage="hdf5-shards"``: O(workers) files for many calls, the ACME view in the container."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from acme_core import MissingResultsWarning, ParallelMap, load
from acme_core.calls import CallOutcome
from acme_core.output_dir import create
from acme_core.replays import DIRNAME
from acme_core.storage.base import StorageSettings
from acme_core.storage.hdf5_shards import HDF5ShardStorage, ShardWriter, shard_files
from tests.helpers.funcs import f, index_and_pid


def _files(folder):
    return [os.path.join(d, n) for d, _, names in os.walk(folder) for n in names]


def test_ten_thousand_calls_make_o_workers_files_and_load_back_in_order(tmp_path):
    out = tmp_path / "many"
    n = 10_000
    with ParallelMap(index_and_pid, range(n), storage="hdf5-shards", backend="joblib",
                     n_workers=2, verbose=False, output_dir=str(out)) as pmap:
        assert pmap.compute() == [pmap.results_container]
    values = load(out)
    assert [int(v[0]) for v in values] == list(range(n))
    workers = {int(v[1]) for v in values}
    files = [p for p in _files(out) if os.sep + DIRNAME + os.sep not in p]  # not results
    assert len(shard_files(str(out / "index_and_pid_payload"), "index_and_pid")) == len(workers)
    assert len(files) <= len(workers) + 5, sorted(files)
    # small uniform results are rows: the container stacks them in call order (virtual
    # datasets over the shards' tables), not one link per call
    with h5py.File(pmap.results_container, "r") as h5:
        assert sorted(h5) == ["done", "result_0"]
        assert h5["result_0"].shape == (n, 2) and h5["done"][()].all()
        assert h5["result_0"][:, 0].tolist() == list(range(n))
        assert h5["result_0"][9999][0] == 9999
        assert h5["result_0"][0][1] in workers


def test_threads_backend_writes_one_shard_and_closes_it(tmp_path):
    with ParallelMap(f, [2, 4, 6, 8], 4, storage="hdf5-shards", backend="threads",
                     verbose=False, output_dir=str(tmp_path / "o")) as pmap:
        pmap.compute()
    shards = shard_files(str(tmp_path / "o" / "f_payload"), "f")
    assert [os.path.basename(s) for s in shards][0].endswith(f"_{os.getpid()}.h5")
    with h5py.File(shards[0], "r") as h5:  # closed by finish: plain h5py (with locking) opens it
        assert sorted(h5) == ["rows"]  # small results: rows of one table
        assert sorted(h5["rows/call_index"][()].tolist()) == list(range(4))
    assert [int(v[0]) for v in load(pmap.results_container)] == [18, 24, 30, 36]


def test_container_is_rebuilt_from_the_shards_on_resume(tmp_path):
    out = str(tmp_path / "o")
    settings = StorageSettings(func_name="f", n_calls=4, output_dir=out)
    create(out, {"func": "f", "n_inputs": 4, "storage": "hdf5-shards"})
    first = HDF5ShardStorage(settings)
    first.prepare()
    writer = first.writer()
    for i in range(3):  # call 3 never ran; the parent died before finish
        writer.write(i, i * 10)
    writer.close()
    assert not os.path.exists(os.path.join(out, "f.h5"))
    with pytest.warns(MissingResultsWarning, match="1 of 4 calls have no result .*: call 3"):
        assert [None if v is None else int(v[0]) for v in load(out)] == [0, 10, 20, None]
    settings.resume = True
    again = HDF5ShardStorage(settings)
    again.prepare()
    again.collect(CallOutcome(3, again.writer().write(3, 30)))
    assert again.finish() == [os.path.join(out, "f.h5")]
    with h5py.File(os.path.join(out, "f.h5"), "r") as h5:
        assert h5["result_0"][:, 0].tolist() == [0, 10, 20, 30] and h5["done"][()].all()


def test_a_call_that_ran_twice_is_stored_once(tmp_path):
    writer = ShardWriter(str(tmp_path), "f")
    writer.write(0, 1)
    writer.write(0, 2)
    writer.close()
    (shard,) = shard_files(str(tmp_path), "f")
    with h5py.File(shard, "r") as h5:
        assert list(h5) == ["rows"] and h5["rows/call_index"][()].tolist() == [0]
        assert h5["rows/result_0"][()].tolist() == [[2]]
    big = ShardWriter(str(tmp_path / "big"), "f")  # results above the row size: groups
    os.mkdir(tmp_path / "big")
    big.write(0, np.ones(1000))
    big.write(0, np.zeros(1000))
    big.close()
    (shard,) = shard_files(str(tmp_path / "big"), "f")
    with h5py.File(shard, "r") as h5:
        assert list(h5) == ["comp_0"] and h5["comp_0/result_0"][()].tolist() == [0.0] * 1000


def test_plain_numbers_of_mixed_types_read_back_as_the_general_path_writes_them(tmp_path):
    """Plain numbers skip the per-call arrays: ints, floats, bools, NumPy scalars, an int
    beyond 64 bits, a call written again with another type all read back as ACME's mapping
    gives them (one-element arrays of the value's dtype), in call order."""
    values = [3, 2.5, True, np.float32(1.5), np.int32(-4), 7, 1 + 2j, 9, 2**70]
    writer = ShardWriter(str(tmp_path), "f")
    for i, v in enumerate(values[:-1]):
        writer.write(i, v)
    writer.write(0, 30)         # written again, same type: the new value wins
    writer.write(5, 7.25)       # written again, another type
    with pytest.raises(TypeError, match="HDF5 cannot hold"):
        writer.write(8, values[-1])  # beyond int64: refused, as the general path does
    writer.close()
    got = {}
    for path in shard_files(str(tmp_path), "f"):
        with h5py.File(path, "r") as h5:
            index = h5["rows/call_index"][()].tolist()
            got.update(zip(index, h5["rows/result_0"][()], strict=True))
            for key in (k for k in h5 if k.startswith("comp_")):
                got[int(key[5:])] = h5[key]["result_0"][()]
    expected = dict(enumerate(values[:-1])) | {0: 30, 5: 7.25}
    assert sorted(got) == sorted(expected)
    for i, v in expected.items():
        assert got[i].shape == (1,) and got[i].dtype == np.asarray([v]).dtype, i
        assert got[i][0] == v, i


MIXED = [3, 2.5, True, np.float32(1.5), np.int32(-4), 7, 1 + 2j, 9, 2**70]


@pytest.mark.parametrize("values", [
    [3 * i for i in range(50)],                 # a batch of tiny calls: taken at once
    MIXED,                                      # one by one, as write() takes them
    [1, 2, 2**63, 2**70, 4],                    # ints beyond int64: uint64, and none
    [0.5, None, 1.5],                           # a failed call among them
], ids=["ints", "mixed", "big-int", "failed-call"])
def test_a_batchs_plain_numbers_are_stored_at_its_end_as_write_stores_them(tmp_path, values):
    """run_batch hands a batch's plain numbers to the segment writer at the batch's end
    (no write() per call): every call reads back as write() stores it, an int beyond 64
    bits fails as storage with the general path's message, the others are kept."""
    from acme_core.calls import CallBatch, CallProgram, run_batch
    from acme_core.records import STORAGE
    from acme_core.storage.segments import values_in

    def value_of(i):
        if values[i] is None:
            raise ValueError("bad call")
        return values[i]

    writer = ShardWriter(str(tmp_path), "f")
    program = CallProgram("r1", value_of, (("pos", "i", 0),), (), writer,
                          split=(list(range(len(values))),))
    outcome = run_batch(program, CallBatch("r1", tuple(range(len(values)))))
    refused = {i for i, v in enumerate(values) if isinstance(v, int) and v >= 2**64}
    failed = {i for i, v in enumerate(values) if v is None}
    assert set(outcome.failures) == refused | failed
    assert {outcome.failures[i].kind for i in refused} <= {STORAGE}
    assert all("HDF5 cannot hold" in outcome.failures[i].message for i in refused)
    stored = {}
    for receipt in {v for v in outcome.values if v is not None}:
        with h5py.File(tmp_path / receipt.file, "r") as h5:
            stored.update(values_in(h5))
    expected = {i: v for i, v in enumerate(values) if i not in refused | failed}
    assert sorted(stored) == sorted(expected)
    for i, v in expected.items():
        assert stored[i].dtype == np.asarray([v]).dtype and stored[i].tolist() == [v], i
    if values[0] == 0:  # the batch of tiny calls: one receipt object for all
        assert len({id(v) for v in outcome.values}) == 1


def test_a_writer_declaring_batched_types_without_end_batch_still_gets_every_write():
    from acme_core.calls import CallBatch, CallProgram, run_batch

    class Half:  # declares batched_types but cannot take a batch at its end
        batched_types = frozenset({int})

        def __init__(self):
            self.written = {}

        def write(self, index, value):
            self.written[index] = value
            return ("stored", index)

    writer = Half()
    program = CallProgram("r1", abs, (("pos", "x", 0),), (), writer, split=([-1, -2, -3],))
    outcome = run_batch(program, CallBatch("r1", (0, 1, 2)))
    assert writer.written == {0: 1, 1: 2, 2: 3}
    assert outcome.values == [("stored", 0), ("stored", 1), ("stored", 2)]


def test_a_call_listed_twice_in_a_batchs_numbers_keeps_its_last_value(tmp_path):
    """end_batch(indices, values) with a call twice: one row for it, the later value (as
    two write() calls of it would leave)."""
    from acme_core.storage.segments import values_in

    writer = ShardWriter(str(tmp_path), "f")
    values = [5, 6, 7]
    assert writer.end_batch((0, 1, 0), values) == {}
    (receipt,) = {v.file for v in values}
    with h5py.File(tmp_path / receipt, "r") as h5:
        assert h5["rows/call_index"][()].tolist() == [0, 1]
        assert {i: v.tolist() for i, v in values_in(h5)} == {0: [7], 1: [6]}


def test_a_batch_of_plain_numbers_shares_one_receipt(tmp_path):
    """The parent unpickles one receipt per batch, not one per call (10^6 calls)."""
    import pickle

    writer = ShardWriter(str(tmp_path), "f")
    receipts = [writer.write(i, float(i)) for i in range(1000)]
    writer.end_batch(range(1000))
    back = pickle.loads(pickle.dumps(receipts))
    assert len({id(r) for r in back}) == 1 and back[0].names == ("result_0",)
    assert len(pickle.dumps(receipts)) < 4 * 1000  # a reference per call, not a receipt
    later = writer.write(1000, 1.0)
    writer.end_batch([1000])
    assert later.file != receipts[0].file  # the next batch's segment has its own


def test_writers_and_collectors_keep_no_result_alive(tmp_path):
    """Memory: a worker's writer does not grow with the calls it ran, and the parent keeps
    no result once it is written (ACME kept every result array alive in the worker)."""
    import weakref

    from acme_core.storage.hdf5_single import HDF5SingleStorage

    shard = ShardWriter(str(tmp_path), "f")
    value = np.ones(1000)
    ref = weakref.ref(value)
    shard.write(0, value)
    del value
    assert ref() is None
    shard.close()

    # hdf5-single: workers write segments too; the parent collects receipts, not arrays
    settings = StorageSettings(func_name="g", n_calls=2, output_dir=str(tmp_path))
    single = HDF5SingleStorage(settings)
    single.prepare()
    value = np.ones(1000)
    ref = weakref.ref(value)
    receipt = single.writer().write(0, value)
    del value
    assert ref() is None
    single.collect(CallOutcome(0, receipt))
    single.finish()
    with h5py.File(tmp_path / "g.h5", "r") as h5:
        assert h5["comp_0/result_0"][()].tolist() == [1.0] * 1000


def _write_batch(payload, indices, value_of):
    """One batch of calls, as a worker process writes it (its own segment)."""
    writer = ShardWriter(payload, "f")
    receipts = [(i, writer.write(i, value_of(i))) for i in indices]
    assert writer.end_batch(indices) == {}
    return receipts


def test_a_writer_forked_with_numbers_kept_writes_the_childs_own_segment(tmp_path):
    """A process that forks while its writer keeps numbers not yet sealed: the child's
    calls go into a segment of its own (named with its pid), and the numbers the parent
    kept stay the parent's, sealed by the parent only."""
    import multiprocessing

    from acme_core.storage.segments import values_in

    writer = ShardWriter(str(tmp_path), "f")
    kept = [writer.write(i, 10 * i) for i in (0, 1, 2)]  # kept, not sealed yet
    ctx = multiprocessing.get_context("fork")
    queue = ctx.SimpleQueue()

    def child_batch():
        receipts = [writer.write(i, 10 * i) for i in (7, 8)]
        queue.put((os.getpid(), receipts, writer.end_batch([7, 8])))

    child = ctx.Process(target=child_batch)
    child.start()
    child_pid, child_receipts, lost = queue.get()
    child.join(60)
    assert child.exitcode == 0 and lost == {}
    assert writer.end_batch([0, 1, 2]) == {}
    assert {r.file for r in child_receipts} == {child_receipts[0].file}
    assert f"_{child_pid}_" in child_receipts[0].file
    assert {r.file for r in kept} == {kept[0].file} and f"_{os.getpid()}_" in kept[0].file

    def stored(receipt):
        with h5py.File(tmp_path / receipt.file, "r") as h5:
            return {i: v.tolist() for i, v in values_in(h5)}

    assert stored(child_receipts[0]) == {7: [70], 8: [80]}
    assert stored(kept[0]) == {0: [0], 1: [10], 2: [20]}


def test_rows_of_other_shapes_read_back_per_call_from_the_container(tmp_path):
    """A batch whose calls return other shapes than the rest: rows where the shapes agree,
    one group (or, across worker processes, one small virtual dataset) per call otherwise;
    load() and the container give every call's value either way."""
    import multiprocessing

    out = str(tmp_path / "o")
    settings = StorageSettings(func_name="f", n_calls=8, output_dir=out)
    create(out, {"func": "f", "n_inputs": 8, "storage": "hdf5-shards"})
    storage = HDF5ShardStorage(settings)
    storage.prepare()
    payload = storage.payload_dir
    receipts = _write_batch(payload, [0, 1, 2], lambda i: i if i < 2 else (i, i))
    receipts += _write_batch(payload, [3], lambda i: (i, -i))  # same process, other rows
    receipts += _write_batch(payload, [6], lambda i: i)
    ctx = multiprocessing.get_context("fork")  # another worker process
    queue = ctx.SimpleQueue()
    child = ctx.Process(target=lambda: queue.put(_write_batch(payload, [4, 5],
                                                              lambda i: (i, -i, 0))))
    child.start()
    receipts += queue.get()
    child.join(60)
    assert child.exitcode == 0
    for i, receipt in receipts:
        storage.collect(CallOutcome(i, receipt))
    storage.finish()
    expected = [[0], [1], [2, 2], [3, -3], [4, -4, 0], [5, -5, 0], [6], None]
    with pytest.warns(MissingResultsWarning, match="call 7"):
        assert [None if v is None else v.tolist() for v in load(out)] == expected
    with h5py.File(storage.results_container, "r") as h5:
        assert h5["done"][()].tolist() == [True] * 7 + [False]
        assert h5["result_0"][()].tolist()[:2] + h5["result_0"][6:7].tolist() == [[0], [1], [6]]
        assert [h5[f"comp_{i}/result_0"][()].tolist() for i in range(2, 6)] == expected[2:6]
        assert h5["comp_4/result_0"].is_virtual  # a row of the other process's table
