"""``storage="hdf5-shards"``: O(workers) result files for 10^5-10^6 calls, crash-safe.

::

    <output_dir>/
      <func>.h5                                    container, built at the end (below)
      <func>_payload/<func>_shard_<host>_<pid>.h5  one per worker process
      <func>_payload/<func>_segment_<...>.h5       during a run: one per batch (``segments``)

A shard (and a segment) holds small, uniform results (numbers and small numeric arrays
of the same shapes, at most ``rows.ROW_BYTES`` per call) as rows of one table, and other
results (large, ragged, strings) as one group per call::

    rows/call_index     int64 (m,)        the call of each row
    rows/result_<k>     (m, *shape)       row r: value k of call call_index[r]
    comp_<i>/result_<k>                   calls stored one by one (ACME's names)

The container gives every call in call order. Without ``result_shape``: ``result_<k>``,
virtual datasets of shape (n_calls, *shape) over the shards' tables (one mapping per run
of consecutive calls), ``done`` (n_calls,) bool, and ``comp_<i>`` links for calls stored
one by one. With ``result_shape``: ACME's view, a stacked virtual ``result_0`` (NaN for
calls without a result, floating-point dtypes) and ``comp_<i>/result_<k>`` links for
further return values. 10^5 calls make a handful of files instead of 10^5 (inode quotas
on HPC file systems) and HDF5 objects instead of 10^5 groups, so writing and
``acme_core.load`` take a fraction of a second.

Crash safety: a worker never keeps a visible file open (an HDF5 file open for writing can
be destroyed by a crash). It writes each batch into a new segment under a temporary name
and closes, fsyncs and renames it before the batch's outcome leaves the worker, so every
call the parent was told about is in a complete file, whatever is killed when. When the
run finishes, the parent copies the segments of each worker process into one shard (a new
file, written and renamed the same way), builds the container, then deletes the segments:
a crash at any step leaves either the segments or the shards complete, and
``acme_core.load(output_dir)`` and a resumed run read whichever is there. While a run
goes on there is one segment per batch; a batch holds about 0.2 s of work and at least one
call, so a worker seals at most about ten segments a second (calls of 0.1-0.2 s go one to a
batch), and calls longer than 0.1 s make one file each until the run finishes, as
``storage="hdf5"`` does. Values
HDF5 cannot hold fail the call (no pickle fallback).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..records import BatchOutcome, CallOutcome, StorageSettings, StoredResults
from . import rows
from .atomic import atomic_write, remove, remove_temporaries
from .readback import overlay_results
from .segments import (
    Receipt,
    SegmentStorage,
    SegmentWriter,
    file_calls,
    group_index,
    held_calls,
    not_held,
    read_each,
    read_results,
    result_files,
    scan,
    segment_files,
)
from .shard_container import owned_by, read_tables, write_container
from .virtual import AXIS_ATTR

log = logging.getLogger("acme_core")

#: The worker-side writer of this storage (one segment per batch).
ShardWriter = SegmentWriter

__all__ = ["HDF5ShardStorage", "Receipt", "ShardWriter", "compact", "compact_owned",
           "shard_files"]


def shard_files(payload_dir: str, func_name: str) -> list[str]:
    """Every finished shard and segment in ``payload_dir``, oldest first.

    Examples
    --------
    >>> from acme_core.storage.hdf5_shards import shard_files
    >>> shard_files(str(tmp_path), "f")
    []
    """
    return result_files(payload_dir, func_name)


def _process_of(func_name: str, segment: str) -> str:
    """``<host>_<pid>`` of a segment ``<func>_segment_<host>_<pid>_<token>_<seq>.h5``."""
    stem = os.path.basename(segment)[len(func_name) + len("_segment_"):-len(".h5")]
    return stem.rsplit("_", 2)[0]


def compact(payload_dir: str, func_name: str, where: dict[int, str] | None = None,
            n_calls: int | None = None) -> dict[int, str]:
    """Copy the segments in ``payload_dir`` into one shard per worker process (each a new
    file, complete or absent), then delete them; return where the calls moved (call index
    -> shard file name).

    ``where`` (call index -> file name) says which file holds each call's valid result (the
    parent's receipts); without it the segments are scanned and a call stored in several
    keeps its most recent version. The rows of a process's segments are appended to one
    table in the shard, their groups copied; results no longer valid (a call that ran
    again elsewhere) are left out.

    Examples
    --------
    >>> from acme_core.storage.hdf5_shards import compact, shard_files
    >>> writer = ShardWriter(str(tmp_path), "f")
    >>> for i in range(3):
    ...     _ = writer.write(i, i)
    ...     _ = writer.end_batch([i])
    >>> len(shard_files(str(tmp_path), "f")), len(set(compact(str(tmp_path), "f").values()))
    (3, 1)
    >>> len(shard_files(str(tmp_path), "f"))
    1
    """
    if where is None:
        paths = segment_files(payload_dir, func_name)
        where = {i: os.path.basename(path) for i, (path, _) in scan(paths, n_calls).items()}
    files = sorted(set(where.values()))
    fids = {name: k for k, name in enumerate(files)}
    n = n_calls if n_calls is not None else max(where, default=-1) + 1
    owner = np.full(n, -1, dtype=np.int32)
    for index, name in where.items():
        owner[index] = fids[name]
    shards = compact_owned(payload_dir, func_name, owner, files)
    new = {files.index(shard) for shard in shards}
    return {i: files[owner[i]] for i in np.flatnonzero(owner >= 0).tolist() if owner[i] in new}


def compact_owned(payload_dir: str, func_name: str, owner: np.ndarray,
                  files: list[str]) -> list[str]:
    """:func:`compact` with where each call is as arrays: ``owner[i]`` indexes ``files``
    (-1: no result reported; such calls of a segment, sealed by a worker whose report
    never arrived, are kept too). Both are updated in place to say where each call is
    afterwards (new shards are appended to ``files``); returns the new shards' names. No
    Python object per call (10^6 calls): a segment's valid rows are those whose call it
    owns.

    Examples
    --------
    >>> import numpy as np
    >>> from acme_core.storage.hdf5_shards import compact_owned
    >>> writer = ShardWriter(str(tmp_path), "f")
    >>> for i in range(3):
    ...     _ = writer.write(i, i)
    ...     _ = writer.end_batch([i])
    >>> owner, files = np.full(3, -1, dtype=np.int32), []
    >>> shards = compact_owned(str(tmp_path), "f", owner, files)
    >>> [files[k] for k in owner] == shards * 3
    True
    """
    segments = [os.path.basename(p) for p in segment_files(payload_dir, func_name)]
    if not segments:
        return []
    if np.count_nonzero(owner >= 0) < len(owner):
        _add_unreported(payload_dir, segments, owner, files)
    fids = {name: k for k, name in enumerate(files)}
    held = np.bincount(owner[owner >= 0], minlength=len(files))
    by_process: dict[str, list[str]] = defaultdict(list)
    for name in segments:
        by_process[_process_of(func_name, name)].append(name)
    remap = np.arange(-1, len(files), dtype=owner.dtype)  # remap[fid + 1]: where it went
    shards: list[str] = []
    for process, names in sorted(by_process.items()):
        sources = {name: fids[name] for name in names if name in fids and held[fids[name]]}
        if sources:
            target = _new_shard(payload_dir, func_name, process)
            try:
                atomic_write(target, lambda tmp, src=sources: _merge(tmp, payload_dir, src,
                                                                     owner))
            except OSError as exc:  # e.g. a full disk: the segments stay, complete
                log.warning(f"Could not compact the result segments of {process} ({exc}); "
                            f"their results stay in the segment files.")
                continue
            shards.append(os.path.basename(target))
            remap[[fid + 1 for fid in sources.values()]] = len(files)
            files.append(shards[-1])
        # a process's segments go once its shard holds their valid calls (peak disk use:
        # one process's results twice, not the whole run's)
        for name in names:
            remove(os.path.join(payload_dir, name))
    np.take(remap, owner + 1, out=owner)
    return shards


def _add_unreported(payload_dir: str, segments: list[str], owner: np.ndarray,
                    files: list[str]) -> None:
    """Add to ``owner`` (and ``files``) the calls of ``segments`` it does not know (sealed
    by a worker whose report never arrived: an interrupted run), so compaction keeps
    them."""
    import h5py

    fids = {name: k for k, name in enumerate(files)}
    known = np.bincount(owner[owner >= 0], minlength=len(files))
    for name in segments:
        fid = fids.get(name)
        try:
            with h5py.File(os.path.join(payload_dir, name), "r", locking=False) as h5:
                held = len(rows.table_indices(h5)) + len(h5) - (rows.TABLE in h5)
                if fid is not None and held <= known[fid]:
                    continue
                table, _, grouped = file_calls(h5, name, len(owner))
        except (OSError, ValueError) as exc:
            log.warning(f"Result segment {name} cannot be read; it is skipped: {exc}")
            continue
        calls = np.concatenate([table, np.array([i for i, _ in grouped], dtype=np.int64)])
        unknown = calls[owner[calls] < 0]
        if len(unknown):
            if fid is None:
                fid = fids[name] = len(files)
                files.append(name)
            owner[unknown] = fid


def _new_shard(payload_dir: str, func_name: str, process: str) -> str:
    path = os.path.join(payload_dir, f"{func_name}_shard_{process}.h5")
    k = 1
    while os.path.exists(path):
        path = os.path.join(payload_dir, f"{func_name}_shard_{process}_{k}.h5")
        k += 1
    return path


#: Rows a compaction holds in memory before it appends them to the shard's table.
_BUFFER_BYTES = 64 << 20


def _merge(target: str, payload_dir: str, sources: dict[str, int], owner: np.ndarray) -> None:
    """``target`` := the valid calls of the source segments (segment name -> its number
    in ``owner``, which gives each call's valid file): their rows in one table (rows of
    another signature become groups), their groups copied."""
    import h5py

    with h5py.File(target, "w") as out:
        pending = _Rows(out)
        for name, fid in sources.items():
            with h5py.File(os.path.join(payload_dir, name), "r", locking=False) as src:
                if AXIS_ATTR in src.attrs:
                    out.attrs[AXIS_ATTR] = src.attrs[AXIS_ATTR]
                pending.add(src, owner, fid)
                for key in src:  # groups only: the rows are done
                    index = group_index(key)
                    if index is not None and index < len(owner) and owner[index] == fid:
                        src.copy(src[key], out, name=key)
        pending.write()


class _Rows:
    """The valid rows of a shard's segments, written in few large appends."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.sig: rows.Signature | None = None
        self.axis = 0
        self.indices: list[np.ndarray] = []
        self.columns: list[dict[str, np.ndarray]] = []
        self.nbytes = 0

    def add(self, src: Any, owner: np.ndarray, fid: int) -> None:
        """The rows of ``src`` whose call's valid result is in file ``fid``."""
        if rows.TABLE not in src:
            return
        indices, columns = rows.read_table(src)
        # the table's signature, from the columns read (calls first) instead of the file
        sig = tuple((name, col.dtype.str, col.shape[1:]) for name, col in columns.items())
        keep = owned_by(owner, indices, fid)
        if not keep.any():
            return
        indices, columns = indices[keep], {k: v[keep] for k, v in columns.items()}
        if self.sig is None:
            self.sig, self.axis = sig, rows.calls_axis(src, "result_0")
        if sig != self.sig:  # another worker's shapes: one group per call
            for r, index in enumerate(indices.tolist()):
                for name, data in columns.items():
                    self.out.create_dataset(f"comp_{index}/{name}", data=data[r])
            return
        self.indices.append(indices)
        self.columns.append(columns)
        self.nbytes += sum(v.nbytes for v in columns.values())
        if self.nbytes > _BUFFER_BYTES:
            self.write()

    def write(self) -> None:
        if not self.indices:
            return
        indices = np.concatenate(self.indices)
        columns = {k: np.concatenate([c[k] for c in self.columns]) for k in self.columns[0]}
        if rows.TABLE in self.out:
            rows.append_table(self.out, indices, columns)
        else:
            rows.write_table(self.out, indices, columns, self.axis, growable=True)
        self.indices, self.columns, self.nbytes = [], [], 0


class HDF5ShardStorage(SegmentStorage):
    """One HDF5 file per worker process plus a container (see the module docstring).

    ``compute()`` returns ``[container]`` (as ``single_file=True`` does).

    Examples
    --------
    >>> import h5py
    >>> from acme_core import ParallelMap
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> with ParallelMap(f, [2, 4, 6, 8], 4, storage="hdf5-shards", verbose=False,
    ...                  output_dir=str(tmp_path / "shards")) as pmap:
    ...     paths = pmap.compute()
    >>> paths == [pmap.results_container]
    True
    >>> with h5py.File(pmap.results_container) as h5:   # small results: rows, in call order
    ...     h5["result_0"][2], h5["done"][()].all()
    (array([30]), np.True_)
    """

    name = "hdf5-shards"

    def __init__(self, settings: StorageSettings) -> None:
        super().__init__(settings)
        # where each call's valid result is, from the receipts (and, on resume, a scan):
        # compact for 10^6 calls, so finish never has to open every group again
        self._files: list[str] = []
        self._file_ids: dict[str, int] = {}
        self._where = np.full(settings.n_calls, -1, dtype=np.int32)
        self._names: dict[int, tuple[str, ...]] = {}     # only calls with extra returns
        self._shapes: dict[int, tuple[int, ...]] = {}    # only along an unlimited axis
        self._ragged = self.stacking is not None and self.stacking.unlimited is not None

    def prepare(self) -> None:
        os.makedirs(self.payload_dir, exist_ok=self.settings.resume)
        remove_temporaries(self.payload_dir, f"{self.settings.func_name}_*.h5")
        if self.settings.resume:  # calls stored by the earlier run(s), a later file winning
            found = read_each(result_files(self.payload_dir, self.settings.func_name),
                              lambda h5, file: file_calls(h5, file, self.settings.n_calls))
            for _, (table, shared, grouped) in found:
                if shared is not None:
                    self._record_all(table, shared)
                for index, receipt in grouped:
                    self._record(index, receipt)

    def collect(self, outcome: CallOutcome) -> None:
        """Note where the call is (the worker sealed its segment before it reported)."""
        self._record(outcome.index, outcome.value)

    def collect_batch(self, batch: BatchOutcome) -> None:
        """:meth:`collect` for every call of a batch without failures: in one array
        assignment when the calls share one receipt of a single value (the writer shares
        it, see ``SegmentWriter``), else call by call."""
        values = batch.values
        first = values[0] if values else None
        if first is not None and values.count(first) == len(values):
            calls = np.fromiter(batch.indices, dtype=np.int64, count=len(batch.indices))
            self._record_all(calls, first)
            return
        for index, receipt in zip(batch.indices, values, strict=True):
            self._record(index, receipt)

    def _record(self, index: int, receipt: Receipt) -> None:
        file, names, shape = receipt
        fid = self._file_ids.get(file)
        self._where[index] = self._file_id(file) if fid is None else fid
        if len(names) > 1:
            self._names[index] = tuple(names)
        elif self._names:  # an earlier result of the call had more values
            self._names.pop(index, None)
        if self._ragged:
            self._shapes[index] = tuple(shape)

    def _record_all(self, calls: np.ndarray, receipt: Receipt) -> None:
        """:meth:`_record` of ``calls`` (an int64 array) that share ``receipt``: one array
        assignment unless they return several values or their shapes vary."""
        if len(receipt.names) > 1 or self._ragged:
            for index in calls.tolist():
                self._record(index, receipt)
            return
        self._where[calls] = self._file_id(receipt.file)
        if self._names:
            for index in calls.tolist():
                self._names.pop(index, None)

    def _file_id(self, file: str) -> int:
        fid = self._file_ids.get(file)
        if fid is None:
            fid = self._file_ids[file] = len(self._files)
            self._files.append(file)
        return fid

    def damaged(self, indices: Iterable[int]) -> set[int]:
        """Calls of ``indices`` that no readable shard or segment holds.

        Examples
        --------
        >>> from acme_core.storage.base import StorageSettings
        >>> from acme_core.storage.hdf5_shards import HDF5ShardStorage
        >>> storage = HDF5ShardStorage(StorageSettings("f", 3, str(tmp_path / "o")))
        >>> storage.prepare()
        >>> _ = storage.writer().write(1, 7.0)
        >>> storage.flush()
        >>> sorted(storage.damaged([0, 1, 2]))
        [0, 2]
        """
        held = held_calls(result_files(self.payload_dir, self.settings.func_name),
                          self.settings.n_calls)
        return not_held(indices, held)

    @classmethod
    def load(cls, settings: StorageSettings) -> StoredResults:
        """Every call from the shards and segments (they are the truth: the container is
        built from them at the end)."""
        assert settings.output_dir is not None
        payload = os.path.join(settings.output_dir, f"{settings.func_name}_payload")
        values: list[Any] = [None] * settings.n_calls
        have = np.zeros(settings.n_calls, dtype=bool)
        axis = read_results(payload, settings.func_name, values, have)
        return overlay_results(values, have, axis)

    def finish(self) -> list[str]:
        self._close_writer()
        done = self._where >= 0
        # where each call is moves to the new shards; names and shapes stay as collected
        compact_owned(self.payload_dir, self.settings.func_name, self._where, self._files)
        self._file_ids = {name: k for k, name in enumerate(self._files)}
        assert self.results_container is not None
        atomic_write(self.results_container, lambda tmp: self._write_container(tmp, done))
        return [self.results_container]

    def _write_container(self, path: str, done: np.ndarray) -> None:
        """Links and virtual datasets over the shards (``shard_container``)."""
        import h5py

        payload = f"{self.settings.func_name}_payload"
        files = {fid: (os.path.join(self.payload_dir, self._files[fid]),
                       f"{payload}/{self._files[fid]}")
                 for fid in np.flatnonzero(np.bincount(self._where[self._where >= 0],
                                                       minlength=len(self._files))).tolist()}
        tables = read_tables(files, self._where)
        in_rows = np.zeros(self.settings.n_calls, dtype=bool)
        for table in tables:
            in_rows[table.calls] = True
        groups = {i: files[self._where[i]][1] for i in np.flatnonzero(done & ~in_rows).tolist()}
        with h5py.File(path, "w") as h5:
            write_container(h5, self.settings.n_calls, self.stacking, tables, groups,
                            self._names, self._shapes)
