"""``storage="hdf5-shards"``: each worker process appends to its own file; O(workers) files.

::

    <output_dir>/
      <func>.h5                               container, built at the end: comp_<i> ->
                                              ExternalLink("<func>_payload/<shard>", "/comp_<i>")
                                              (with result_shape: a virtual dataset result_0,
                                              further return values as comp_<i>/result_<k>)
      <func>_payload/<func>_shard_<host>_<pid>.h5   one per worker process: groups comp_<i>

Readers see ACME's ``comp_<i>/result_<k>`` view, but 10^5 calls make a handful of files
instead of 10^5 (inode quotas on HPC file systems). A worker flushes its shard after every
batch of writes (when the batch's receipts are pickled to go back to the parent, and at least every
``FLUSH_SECONDS``), so what the parent was told about reads back after a crash; shards are
opened without HDF5 file locking (one writer per shard by construction, readers can look in while
workers are idle). The parent never opens a shard while the run goes on: each write's
receipt says where the call went and what shapes it wrote, and ``finish`` builds the
container from those receipts in one atomic write. ``acme_core.load(output_dir)`` reads
the shards themselves, so a run whose parent was killed before the container was built
still reads back. Values HDF5 cannot hold fail the call (no pickle fallback).
"""

from __future__ import annotations

import glob
import logging
import os
import socket
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..calls import CallOutcome
from .base import Storage, StorageSettings
from .hdf5_files import atomic_write
from .hdf5_single import convert
from .stacking import Stacking

log = logging.getLogger("acme_core")

#: Flush a shard at least this often (seconds) while calls keep coming.
FLUSH_SECONDS = 0.5

#: Writers with an open shard in this process.
_open_writers: weakref.WeakSet[ShardWriter] = weakref.WeakSet()


def flush_open_shards() -> None:
    """Flush every shard this process has unflushed writes in (cheap when there are none).

    Examples
    --------
    >>> from acme_core.storage.hdf5_shards import flush_open_shards
    >>> flush_open_shards()
    """
    for writer in list(_open_writers):
        writer.flush()


class Receipt(tuple):
    """What a shard write sends back: ``(shard file name, dataset names, shape of
    result_0)``.

    Pickling a receipt, which is how a batch's outcomes leave a worker process, first
    flushes this process's shards: every batch of writes is flushed once, before the parent
    learns about it, instead of once per call.

    Examples
    --------
    >>> import pickle
    >>> from acme_core.storage.hdf5_shards import Receipt
    >>> pickle.loads(pickle.dumps(Receipt(("f_shard_h_1.h5", ("result_0",), (1,)))))
    ('f_shard_h_1.h5', ('result_0',), (1,))
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        flush_open_shards()
        return (Receipt, (tuple(self),))


def shard_name(func_name: str) -> str:
    """This process's shard file name: ``<func>_shard_<host>_<pid>.h5``.

    Examples
    --------
    >>> from acme_core.storage.hdf5_shards import shard_name
    >>> shard_name("f").startswith("f_shard_")
    True
    """
    host = socket.gethostname().replace(os.sep, "_") or "host"
    return f"{func_name}_shard_{host}_{os.getpid()}.h5"


def shard_files(payload_dir: str, func_name: str) -> list[str]:
    """Every shard file in ``payload_dir``, sorted.

    Examples
    --------
    >>> from acme_core.storage.hdf5_shards import shard_files
    >>> shard_files(str(tmp_path), "f")
    []
    """
    return sorted(glob.glob(os.path.join(glob.escape(payload_dir), f"{func_name}_shard_*.h5")))


def scan_shards(payload_dir: str, func_name: str) -> dict[int, tuple[str, Receipt]]:
    """Call index -> (shard path, receipt) for every call stored in a shard (a call found
    twice, e.g. re-run after its worker died, keeps the most recently written shard).

    Examples
    --------
    >>> from acme_core.storage.hdf5_shards import scan_shards
    >>> scan_shards(str(tmp_path), "f")
    {}
    """
    import h5py

    found: dict[int, tuple[float, str, Receipt]] = {}
    for path in shard_files(payload_dir, func_name):
        try:
            mtime = os.path.getmtime(path)
            with h5py.File(path, "r", locking=False) as h5:
                for key, group in h5.items():
                    if not key.startswith("comp_") or "result_0" not in group:
                        continue
                    index = int(key[5:])
                    names = tuple(sorted(group, key=lambda k: int(k[7:])))
                    receipt = (os.path.basename(path), names, group["result_0"].shape)
                    if index not in found or found[index][0] <= mtime:
                        found[index] = (mtime, path, receipt)
        except OSError as exc:
            log.warning(f"Shard {path} cannot be read and is skipped: {exc}")
    return {i: (path, receipt) for i, (_, path, receipt) in found.items()}


@dataclass(eq=False)
class ShardWriter:
    """Worker side: append each call's datasets to this process's shard.

    The open file is per process and never pickled; a writer that arrives in a new process
    (or after a fork) opens that process's own shard on its first write.

    Examples
    --------
    >>> from acme_core.storage.hdf5_shards import ShardWriter
    >>> writer = ShardWriter(str(tmp_path), "f")
    >>> shard, names, shape = writer.write(7, 18)
    >>> names, shape
    (('result_0',), (1,))
    >>> writer.close()
    """

    payload_dir: str
    func_name: str
    stacking: Stacking | None = None
    _h5: Any = field(default=None, repr=False, compare=False)
    _pid: int = field(default=0, repr=False, compare=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)
    _pending: int = field(default=0, repr=False, compare=False)
    _last_flush: float = field(default=0.0, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"payload_dir": self.payload_dir, "func_name": self.func_name,
                "stacking": self.stacking}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def _file(self) -> Any:
        import h5py

        if self._h5 is None or self._pid != os.getpid():
            path = os.path.join(self.payload_dir, shard_name(self.func_name))
            self._h5 = h5py.File(path, "a", locking=False)
            self._pid = os.getpid()
            self._pending = 0
            self._last_flush = time.monotonic()
            _open_writers.add(self)
            # for readers of the bare shards (acme_core.load after a crash)
            axis = -1 if self.stacking is None else self.stacking.axis
            self._h5.attrs["acme_core_stacking_axis"] = axis
        return self._h5

    def write(self, index: int, value: Any) -> Receipt:
        """Append call ``index`` as group ``comp_<index>``; return the receipt."""
        datasets = convert(value, self.stacking, index, "hdf5-shards")
        with self._lock:
            h5 = self._file()
            key = f"comp_{index}"
            if key in h5:  # the call ran again here (retry, resumed run)
                del h5[key]
            group = h5.create_group(key)
            try:
                for name, data in datasets:
                    group.create_dataset(name, data=data)
            except BaseException:
                del h5[key]
                raise
            finally:
                self._pending += 1
                if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                    self._flush()
            name = os.path.basename(h5.filename)
        return Receipt((name, tuple(n for n, _ in datasets), datasets[0][1].shape))

    def _flush(self) -> None:
        if self._h5 is not None and self._pending and self._pid == os.getpid():
            self._h5.flush()
        self._pending = 0
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        """Flush this process's shard if it has unflushed writes."""
        if self._pending:
            with self._lock:
                self._flush()

    def close(self) -> None:
        """Flush and close this process's shard (idempotent)."""
        with self._lock:
            if self._h5 is not None and self._pid == os.getpid():
                self._h5.close()
            self._h5 = None
            self._pending = 0
            _open_writers.discard(self)


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
        self._shards: list[str] = []          # shard file names, indexed by _where
        self._shard_ids: dict[str, int] = {}
        self._where = np.full(settings.n_calls, -1, dtype=np.int32)
        self._names: dict[int, tuple[str, ...]] = {}     # only calls with extra returns
        self._shapes: dict[int, tuple[int, ...]] = {}    # only with an unlimited axis
        self._writer: ShardWriter | None = None

    def prepare(self) -> None:
        os.makedirs(self.payload_dir, exist_ok=self.settings.resume)
        if self.settings.resume:  # calls stored by the earlier run(s)
            for index, (_, receipt) in scan_shards(self.payload_dir,
                                                   self.settings.func_name).items():
                if index < self.settings.n_calls:
                    self._record(index, receipt)

    def writer(self) -> ShardWriter:
        self._writer = ShardWriter(self.payload_dir, self.settings.func_name, self.stacking)
        return self._writer

    def collect(self, outcome: CallOutcome) -> None:
        self._record(outcome.index, outcome.value)

    def _record(self, index: int, receipt: Receipt) -> None:
        shard, names, shape = receipt
        sid = self._shard_ids.get(shard)
        if sid is None:
            sid = self._shard_ids[shard] = len(self._shards)
            self._shards.append(shard)
        self._where[index] = sid
        if len(names) > 1:
            self._names[index] = tuple(names)
        if self.stacking is not None and self.stacking.unlimited is not None:
            self._shapes[index] = tuple(shape)

    def finish(self) -> list[str]:
        if self._writer is not None:  # in-process backends and debug runs wrote here
            self._writer.close()
        assert self.results_container is not None
        atomic_write(self.results_container, self._write_container)
        return [self.results_container]

    def _link(self, index: int) -> str:
        return f"{self.settings.func_name}_payload/{self._shards[self._where[index]]}"

    def _write_container(self, path: str) -> None:
        import h5py

        done = np.flatnonzero(self._where >= 0).tolist()
        with h5py.File(path, "w") as h5:
            if self.stacking is None:
                for i in done:
                    h5[f"comp_{i}"] = h5py.ExternalLink(self._link(i), f"/comp_{i}")
                return
            h5.create_virtual_dataset("result_0", self._layout(done), fillvalue=0)
            for i in done:
                for key in self._names.get(i, ())[1:]:
                    h5[f"comp_{i}/{key}"] = h5py.ExternalLink(self._link(i), f"/comp_{i}/{key}")

    def _layout(self, done: list[int]) -> Any:
        import h5py

        st, n = self.stacking, self.settings.n_calls
        assert st is not None
        if st.unlimited is None:
            shape = tuple(int(v) for v in st.per_call if v is not None)
            layout = h5py.VirtualLayout(shape=st.full_shape(n), dtype=np.dtype(st.dtype))
            for i in done:
                layout[st.slot(i)] = h5py.VirtualSource(self._link(i), f"comp_{i}/result_0",
                                                        shape=shape)
            return layout
        extent = max((s[st.unlimited] for s in self._shapes.values()), default=0)
        layout = h5py.VirtualLayout(shape=st.full_shape(n, extent), dtype=np.dtype(st.dtype),
                                    maxshape=st.max_shape(n))
        for i in done:
            shape = self._shapes[i]
            layout[st.slot(i, shape)] = h5py.VirtualSource(self._link(i), f"comp_{i}/result_0",
                                                           shape=shape)
        return layout
