"""``storage="hdf5-shards"``: O(workers) result files for 10^5 calls, crash-safe.

::

    <output_dir>/
      <func>.h5                                    container, built at the end: comp_<i> ->
                                                   ExternalLink("<func>_payload/<shard>", "/comp_<i>")
                                                   (with result_shape: a virtual dataset result_0,
                                                   further return values as comp_<i>/result_<k>)
      <func>_payload/<func>_shard_<host>_<pid>.h5  one per worker process: groups comp_<i>
      <func>_payload/<func>_segment_<...>.h5       during a run: one per batch (``segments``)

Readers see ACME's ``comp_<i>/result_<k>`` view, but 10^5 calls make a handful of files
instead of 10^5 (inode quotas on HPC file systems).

Crash safety: a worker never keeps a visible file open (an HDF5 file open for writing can
be destroyed by a crash). It writes each batch into a new segment under a temporary name
and closes, fsyncs and renames it before the batch's outcome leaves the worker, so every
call the parent was told about is in a complete file, whatever is killed when. When the
run finishes, the parent copies the segments of each worker process into one shard (a new
file, written and renamed the same way), builds the container, then deletes the segments:
a crash at any step leaves either the segments or the shards complete, and
``acme_core.load(output_dir)`` and a resumed run read whichever is there. While a run
goes on there is one segment per batch; batches hold at least about 0.2 s of work when
calls are short, so a worker makes at most a few segments a second, and long calls (one per
batch) make one file per call until the run finishes, as ``storage="hdf5"`` does. Values
HDF5 cannot hold fail the call (no pickle fallback).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from ..calls import CallOutcome
from .atomic import atomic_write, remove, remove_temporaries
from .base import Storage, StorageSettings
from .segments import Receipt, SegmentWriter, result_files, scan, segment_files
from .stacking import Stacking
from .virtual import create_stacked, layout_of_known

log = logging.getLogger("acme_core")

#: The worker-side writer of this storage (one segment per batch).
ShardWriter = SegmentWriter

__all__ = ["HDF5ShardStorage", "Receipt", "ShardWriter", "compact", "shard_files"]


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
    keeps its most recent version. A shard starts as a byte copy of the process's segment
    that holds most of its calls (cheap: early batches are the large ones), then takes the
    calls of its other segments; results no longer valid (a call that ran again
    elsewhere) are dropped from it.

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
    segments = [os.path.basename(p) for p in segment_files(payload_dir, func_name)]
    if not segments:
        return {}
    if where is None:
        where = {i: os.path.basename(path) for i, (path, _) in
                 scan([os.path.join(payload_dir, p) for p in segments], n_calls).items()}
    else:
        where = dict(where)
        _add_unreported(payload_dir, segments, where)
    calls: dict[str, list[int]] = defaultdict(list)
    for index, name in where.items():
        calls[name].append(index)
    by_process: dict[str, list[str]] = defaultdict(list)
    for name in segments:
        by_process[_process_of(func_name, name)].append(name)
    moved: dict[int, str] = {}
    for process, names in sorted(by_process.items()):
        sources = {name: calls[name] for name in names if calls.get(name)}
        if sources:
            target = _new_shard(payload_dir, func_name, process)
            try:
                atomic_write(target, lambda tmp, src=sources: _merge(tmp, payload_dir, src))
            except OSError as exc:  # e.g. a full disk: the segments stay, complete
                log.warning(f"Could not compact the result segments of {process} ({exc}); "
                            f"their results stay in the segment files.")
                continue
            shard = os.path.basename(target)
            moved.update((i, shard) for indices in sources.values() for i in indices)
        # a process's segments go once its shard holds their valid calls (peak disk use:
        # one process's results twice, not the whole run's)
        for name in names:
            remove(os.path.join(payload_dir, name))
    return moved


def _add_unreported(payload_dir: str, segments: list[str], where: dict[int, str]) -> None:
    """Add to ``where`` the calls of ``segments`` it does not know (sealed by a worker whose
    report never arrived: an interrupted run), so compaction keeps them."""
    import h5py

    known: dict[str, int] = defaultdict(int)
    for name in where.values():
        known[name] += 1
    for name in segments:
        try:
            with h5py.File(os.path.join(payload_dir, name), "r", locking=False) as h5:
                if len(h5) <= known[name]:
                    continue
                for key in h5:
                    index = int(key[5:])
                    if index not in where and "result_0" in h5[key]:
                        where[index] = name
        except (OSError, ValueError) as exc:
            log.warning(f"Result segment {name} cannot be read; it is skipped: {exc}")


def _new_shard(payload_dir: str, func_name: str, process: str) -> str:
    path = os.path.join(payload_dir, f"{func_name}_shard_{process}.h5")
    k = 1
    while os.path.exists(path):
        path = os.path.join(payload_dir, f"{func_name}_shard_{process}_{k}.h5")
        k += 1
    return path


def _merge(target: str, payload_dir: str, sources: dict[str, list[int]]) -> None:
    """``target`` := the largest source segment, minus its invalid calls, plus the valid
    calls of the other sources."""
    import h5py

    base = max(sources, key=lambda name: len(sources[name]))
    shutil.copyfile(os.path.join(payload_dir, base), target)
    with h5py.File(target, "a") as out:
        if len(out) != len(sources[base]):
            keep = {f"comp_{i}" for i in sources[base]}
            for key in [k for k in out if k not in keep]:
                del out[key]
        for name, indices in sources.items():
            if name == base:
                continue
            with h5py.File(os.path.join(payload_dir, name), "r", locking=False) as src:
                for index in indices:
                    src.copy(src[f"comp_{index}"], out, name=f"comp_{index}")


class HDF5ShardStorage(Storage):
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
    >>> h5py.File(pmap.results_container)["comp_2"]["result_0"][()]
    array([30])
    """

    def __init__(self, settings: StorageSettings) -> None:
        super().__init__(settings)
        assert settings.output_dir is not None
        name = settings.func_name
        self.stacking = Stacking.of(settings.result_shape, settings.result_dtype)
        self.payload_dir = os.path.join(settings.output_dir, f"{name}_payload")
        self.results_container = os.path.join(settings.output_dir, f"{name}.h5")
        self._writer: SegmentWriter | None = None
        # where each call's valid result is, from the receipts (and, on resume, a scan):
        # compact for 10^6 calls, so finish never has to open every group again
        self._files: list[str] = []
        self._file_ids: dict[str, int] = {}
        self._where = np.full(settings.n_calls, -1, dtype=np.int32)
        self._names: dict[int, tuple[str, ...]] = {}     # only calls with extra returns
        self._shapes: dict[int, tuple[int, ...]] = {}    # only along an unlimited axis

    def prepare(self) -> None:
        os.makedirs(self.payload_dir, exist_ok=self.settings.resume)
        remove_temporaries(self.payload_dir, f"{self.settings.func_name}_*.h5")
        if self.settings.resume:  # calls stored by the earlier run(s)
            found = scan(result_files(self.payload_dir, self.settings.func_name),
                         self.settings.n_calls)
            for index, (_, receipt) in found.items():
                self._record(index, receipt)

    def writer(self) -> SegmentWriter:
        self._writer = SegmentWriter(self.payload_dir, self.settings.func_name, self.stacking,
                                     "hdf5-shards")
        return self._writer

    def collect(self, outcome: CallOutcome) -> None:
        """Note where the call is (the worker sealed its segment before it reported)."""
        self._record(outcome.index, outcome.value)

    def _record(self, index: int, receipt: Receipt) -> None:
        file, names, shape = receipt
        fid = self._file_ids.get(file)
        if fid is None:
            fid = self._file_ids[file] = len(self._files)
            self._files.append(file)
        self._where[index] = fid
        if len(names) > 1:
            self._names[index] = tuple(names)
        if self.stacking is not None and self.stacking.unlimited is not None:
            self._shapes[index] = tuple(shape)

    def flush(self) -> None:
        """Seal what this process wrote call by call itself (debug runs)."""
        if self._writer is not None:
            self._writer.flush()

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
        found = scan(result_files(self.payload_dir, self.settings.func_name),
                     self.settings.n_calls)
        return {i for i in indices if i not in found}

    def finish(self) -> list[str]:
        if self._writer is not None:
            self._writer.close()
        done = np.flatnonzero(self._where >= 0).tolist()
        where = {i: self._files[self._where[i]] for i in done}
        for index, shard in compact(self.payload_dir, self.settings.func_name, where).items():
            self._record(index, Receipt(shard, self._names.get(index, ("result_0",)),
                                        self._shapes.get(index, ())))
        assert self.results_container is not None
        atomic_write(self.results_container, lambda tmp: self._write_container(tmp, done))
        return [self.results_container]

    def _link(self, index: int) -> str:
        return f"{self.settings.func_name}_payload/{self._files[self._where[index]]}"

    def _write_container(self, path: str, done: list[int]) -> None:
        import h5py

        with h5py.File(path, "w") as h5:
            st = self.stacking
            if st is None:
                for i in done:
                    h5[f"comp_{i}"] = h5py.ExternalLink(self._link(i), f"/comp_{i}")
                return
            if st.unlimited is None:
                shape = tuple(int(v) for v in st.per_call if v is not None)
                sources = {i: (self._link(i), f"comp_{i}/result_0", shape) for i in done}
                create_stacked(h5, st, layout_of_known(st, self.settings.n_calls, sources))
            else:
                sources = {i: (self._link(i), f"comp_{i}/result_0", self._shapes[i])
                           for i in done}
                create_stacked(h5, st, layout_of_known(st, self.settings.n_calls, sources),
                               {i: self._shapes[i] for i in done})
            for i in done:
                for key in self._names.get(i, ())[1:]:
                    h5[f"comp_{i}/{key}"] = h5py.ExternalLink(self._link(i), f"/comp_{i}/{key}")
