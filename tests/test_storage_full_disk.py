"""A full disk (ENOSPC) fails the calls whose results could not be stored, as ``storage``
failures, and leaves every result stored before it readable; after space is freed a resume
completes. The disk is a real tmpfs of 2 MB (mounting needs root; CI runs as root)."""

from __future__ import annotations

import errno
import os
import subprocess

import h5py
import numpy as np
import pytest

from acme_core.calls import STORAGE, CallBatch, CallProgram, run_batch
from acme_core.storage.base import StorageSettings
from acme_core.storage.hdf5_files import HDF5FileWriter
from acme_core.storage.hdf5_single import HDF5SingleStorage
from acme_core.storage.pickle_files import PickleWriter
from acme_core.storage.segments import SegmentWriter, result_files, scan

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

ROW = 64 * 1024  # 512 KiB of float64 per call: the 2 MB disk holds about three


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _program(writer):
    return CallProgram("r", lambda x: np.full(ROW, float(x)), (("pos", "x", 0),), (), writer,
                       split=(list(range(8)),))


def _leftovers(folder):
    return [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_segments_fail_the_unstored_calls_as_storage_and_keep_sealed_ones(small_disk):
    writer = SegmentWriter(str(small_disk), "f")
    outcomes = [run_batch(_program(writer), CallBatch("r", (i,))) for i in range(8)]
    stored = [o.indices[0] for o in outcomes if not o.failures]
    failed = [f for o in outcomes for f in o.failures.values()]
    assert stored and failed, (stored, failed)
    assert {f.kind for f in failed} == {STORAGE}
    assert all("No space left" in f.message or "28" in f.message for f in failed), failed
    found = scan(result_files(str(small_disk), "f"))
    assert sorted(found) == stored  # everything reported stored reads back, nothing else
    for i in stored:
        with h5py.File(found[i][0], "r") as h5:
            assert h5[f"comp_{i}/result_0"][0] == i
    assert not _leftovers(small_disk)


@pytest.mark.parametrize("make", [HDF5FileWriter, PickleWriter])
def test_per_call_files_fail_cleanly_and_leave_no_partial_file(small_disk, make):
    writer = make(str(small_disk), "f")
    outcomes = [run_batch(_program(writer), CallBatch("r", (i,))) for i in range(8)]
    failed = {i for o in outcomes for i, f in o.failures.items() if f.kind == STORAGE}
    assert failed and len(failed) < 8
    names = sorted(os.listdir(small_disk))
    assert not _leftovers(small_disk)
    assert len(names) == 8 - len(failed)  # one complete file per stored call, no other


def test_single_file_finish_on_a_full_disk_keeps_everything_and_resumes(small_disk):
    settings = StorageSettings("f", 3, str(small_disk), resume=False)
    storage = HDF5SingleStorage(settings)
    storage.prepare()
    writer = storage.writer()
    for i in range(2):
        writer.write(i, np.full(ROW, float(i)))
        assert writer.end_batch([i]) == {}
    # the final file needs as much space again as the segments: it cannot be written
    with pytest.raises(OSError) as err:
        storage.finish()
    assert err.value.errno == errno.ENOSPC or "No space" in str(err.value)
    assert not _leftovers(small_disk)
    settings.resume = True
    again = HDF5SingleStorage(settings)
    assert again.damaged(range(3)) == {2}  # both results still read back from segments
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    again.prepare()
    again.writer().write(2, np.full(ROW, 2.0))
    again.finish()
    with h5py.File(small_disk / "f.h5", "r") as h5:
        assert [h5[f"comp_{i}/result_0"][0] for i in range(3)] == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("n_calls, size", [(40, 20_000), (2000, 100)],
                         ids=["large-results", "many-small-results"])
def test_a_disk_filling_mid_run_ends_the_with_block_with_the_failures_table(
        small_disk, n_calls, size):
    """With per-call HDF5 files the disk fills under the results (large ones) or under the
    manifest and the log (thousands of small ones); either way the ``with`` block ends with
    the failures table and what to do, never a bare ``OSError`` from closing the manifest,
    and after freeing space the same run completes."""
    from acme_core import ParallelComputationError, ParallelMap, load

    out = str(small_disk / "run")
    with pytest.raises(ParallelComputationError) as err, ParallelMap(
            np.full, [size] * n_calls, list(range(n_calls)), output_dir=out, n_workers=2,
            verbose=False) as pmap:
        pmap.compute()  # the error passes through the with block's exit
    rows = list(err.value.failures)
    assert rows and {r.kind for r in rows} == {STORAGE}
    assert "free space" in str(err.value) and "compute() again" in str(err.value)
    stored = load(out)
    ok = set(range(n_calls)) - {r.index for r in rows}
    assert ok and all(float(stored[i][0]) == i for i in ok)

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    with ParallelMap(np.full, [size] * n_calls, list(range(n_calls)), output_dir=out,
                     n_workers=2, verbose=False) as pmap:
        pmap.compute()
    assert [float(r[0]) for r in load(out)] == [float(i) for i in range(n_calls)]
