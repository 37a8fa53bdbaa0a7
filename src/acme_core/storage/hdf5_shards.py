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
from collections import defaultdict
from collections.abc import Iterable

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


def compact(payload_dir: str, func_name: str, n_calls: int | None = None) -> list[str]:
    """Copy the segments in ``payload_dir`` into one shard per worker process (each a new
    file, complete or absent), then delete them; returns the shards written.

    A call stored in several segments keeps its most recent version.

    Examples
    --------
    >>> from acme_core.storage.hdf5_shards import compact, shard_files
    >>> writer = ShardWriter(str(tmp_path), "f")
    >>> for i in range(3):
    ...     _ = writer.write(i, i)
    ...     _ = writer.end_batch([i])
    >>> len(shard_files(str(tmp_path), "f")), len(compact(str(tmp_path), "f"))
    (3, 1)
    >>> len(shard_files(str(tmp_path), "f"))
    1
    """
    segments = segment_files(payload_dir, func_name)
    if not segments:
        return []
    winners = scan(segments, n_calls)
    by_process: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, (path, _) in sorted(winners.items()):
        by_process[_process_of(func_name, path)][path].append(index)
    written = []
    for process in sorted({_process_of(func_name, p) for p in segments}):
        sources = by_process.get(process, {})
        if sources:
            target = _new_shard(payload_dir, func_name, process)
            try:
                atomic_write(target, lambda tmp, sources=sources: _copy_calls(tmp, sources))
            except OSError as exc:  # e.g. a full disk: the segments stay, complete
                log.warning(f"Could not compact the result segments of {process} ({exc}); "
                            f"their results stay in the segment files.")
                continue
            written.append(target)
        # a process's segments go once its shard holds their newest calls (peak disk use:
        # one process's results twice, not the whole run's)
        for path in segments:
            if _process_of(func_name, path) == process:
                remove(path)
    return written


def _new_shard(payload_dir: str, func_name: str, process: str) -> str:
    path = os.path.join(payload_dir, f"{func_name}_shard_{process}.h5")
    k = 1
    while os.path.exists(path):
        path = os.path.join(payload_dir, f"{func_name}_shard_{process}_{k}.h5")
        k += 1
    return path


def _copy_calls(target: str, sources: dict[str, list[int]]) -> None:
    import h5py

    with h5py.File(target, "w") as out:
        for path, indices in sources.items():
            with h5py.File(path, "r", locking=False) as src:
                for key, value in src.attrs.items():
                    out.attrs[key] = value
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

    def prepare(self) -> None:
        os.makedirs(self.payload_dir, exist_ok=self.settings.resume)
        remove_temporaries(self.payload_dir, f"{self.settings.func_name}_*.h5")

    def writer(self) -> SegmentWriter:
        self._writer = SegmentWriter(self.payload_dir, self.settings.func_name, self.stacking,
                                     "hdf5-shards")
        return self._writer

    def collect(self, outcome: CallOutcome) -> None:
        """Nothing to do: the worker's segment holds the call (sealed before it reported)."""

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
        name, n = self.settings.func_name, self.settings.n_calls
        compact(self.payload_dir, name, n)
        stored = scan(result_files(self.payload_dir, name), n)
        assert self.results_container is not None
        atomic_write(self.results_container, lambda tmp: self._write_container(tmp, stored))
        return [self.results_container]

    def _write_container(self, path: str, stored: dict[int, tuple[str, Receipt]]) -> None:
        import h5py

        prefix = f"{self.settings.func_name}_payload/"
        with h5py.File(path, "w") as h5:
            st = self.stacking
            if st is None:
                for i, (_, receipt) in sorted(stored.items()):
                    h5[f"comp_{i}"] = h5py.ExternalLink(prefix + receipt.file, f"/comp_{i}")
                return
            sources = {i: (prefix + r.file, f"comp_{i}/result_0", r.shape)
                       for i, (_, r) in stored.items()}
            padded = ({i: r.shape for i, (_, r) in stored.items()}
                      if st.unlimited is not None else None)
            create_stacked(h5, st, layout_of_known(st, self.settings.n_calls, sources), padded)
            for i, (_, r) in sorted(stored.items()):
                for key in r.names[1:]:
                    h5[f"comp_{i}/{key}"] = h5py.ExternalLink(prefix + r.file, f"/comp_{i}/{key}")
