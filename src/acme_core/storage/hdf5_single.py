"""``storage="hdf5-single"`` (``single_file=True``, inventory §6.4): one results file.

::

    <output_dir>/<func>.h5     comp_<i>/result_<k> real datasets (groups made up front, as ACME)
                               or, with result_shape, a real dataset result_0 (further return
                               values in comp_<i>/result_<k>)

ACME had every worker open the file under a cluster-wide lock. Here the worker only turns
its return value into arrays (so a value HDF5 cannot hold fails where it was produced) and
sends them back; the parent process is the only writer and writes each result as it
arrives, so nothing waits on a lock and the parent holds at most the results of the
batches in flight. The file is flushed after every batch of writes (every
``FLUSH_EVERY`` results, or within ``FLUSH_SECONDS`` of the last write, also when no further
result comes) and closed in ``finish``: after a crash of the parent, what was flushed
reads back with plain h5py. There is no emergency pickling here (ACME fails such calls).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..calls import CallOutcome
from .base import Storage, StorageSettings
from .hdf5_files import atomic_write
from .stacking import Stacking
from .values import as_array, cannot_store, to_arrays

log = logging.getLogger("acme_core")

#: Flush the results file after this many writes ...
FLUSH_EVERY = 64
#: ... or when a write is older than this many seconds (a background timer flushes when no
#: further result arrives).
FLUSH_SECONDS = 0.5


def convert(value: Any, stacking: Stacking | None, index: int,
            storage: str = "hdf5-single") -> list[tuple[str, np.ndarray]]:
    """One call's return value as ``(dataset name, array)`` pairs, checked for HDF5.

    Raises
    ------
    TypeError
        When HDF5 has no type for a value (the message says what to use instead).
    ValueError
        When the first value does not fit ``result_shape``.

    Examples
    --------
    >>> from acme_core.storage.hdf5_single import convert
    >>> [(k, v.tolist()) for k, v in convert((1, 2), None, 0)]
    [('result_0', [1, 2])]
    """
    try:
        if stacking is None:
            return to_arrays(value)
        items = list(value) if isinstance(value, tuple) else [value]
        first = stacking.first(items[0], index)
        return [("result_0", first)] + [(f"result_{k}", as_array(v))
                                        for k, v in enumerate(items[1:], 1)]
    except TypeError as exc:
        if not cannot_store(exc):
            raise
        raise TypeError(
            f"call {index} returned a value HDF5 cannot hold ({type(value).__name__}: {exc}); "
            f"storage {storage!r} has no pickle fallback. Use the default storage (such "
            f"values are pickled there) or write_pickle=True."
        ) from None


@dataclass
class ArrayWriter:
    """Worker side of ``hdf5-single``: convert and check, send the arrays back.

    Examples
    --------
    >>> from acme_core.storage.hdf5_single import ArrayWriter
    >>> [(name, arr.tolist()) for name, arr in ArrayWriter().write(0, 18)]
    [('result_0', [18])]
    """

    stacking: Stacking | None = None

    def write(self, index: int, value: Any) -> list[tuple[str, np.ndarray]]:
        """Return the call's datasets; the parent writes them."""
        return convert(value, self.stacking, index)


class HDF5SingleStorage(Storage):
    """Every result in one HDF5 file written by the parent (see the module docstring).

    Examples
    --------
    >>> import h5py
    >>> from acme_core import ParallelMap
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> with ParallelMap(f, [2, 4, 6, 8], 4, single_file=True, verbose=False,
    ...                  output_dir=str(tmp_path / "one")) as pmap:
    ...     paths = pmap.compute()
    >>> paths == [pmap.results_container]
    True
    >>> h5py.File(pmap.results_container)["comp_3"]["result_0"][()]
    array([36])
    """

    def __init__(self, settings: StorageSettings) -> None:
        super().__init__(settings)
        assert settings.output_dir is not None
        self.stacking = Stacking.of(settings.result_shape, settings.result_dtype)
        self.results_container = os.path.join(settings.output_dir, f"{settings.func_name}.h5")
        self._h5: Any = None
        self._lock = threading.Lock()
        self._pending = 0
        self._last_flush = 0.0
        self._stop: threading.Event | None = None
        self._timer: threading.Thread | None = None

    # ---------------------------------------------------------------- set-up
    def prepare(self) -> None:
        if self.settings.resume and os.path.isfile(self.results_container):
            return
        atomic_write(self.results_container, self._create)

    def _create(self, path: str) -> None:
        import h5py

        n, st = self.settings.n_calls, self.stacking
        with h5py.File(path, "w") as h5:
            if st is None:
                for i in range(n):
                    h5.create_group(f"comp_{i}")
            elif st.unlimited is None:
                h5.create_dataset("result_0", shape=st.full_shape(n), dtype=st.dtype)
            else:
                # one call per chunk, about 256 KiB along the unlimited axis
                fixed = int(np.prod([v for v in st.per_call if v is not None]))
                extent = max(1, min(1 << 16, (1 << 18) // (np.dtype(st.dtype).itemsize
                                                          * max(1, fixed))))
                chunks = st.full_shape(1, extent)
                chunks = tuple(max(1, c) for c in chunks)
                h5.create_dataset("result_0", shape=st.full_shape(n, 1), dtype=st.dtype,
                                  maxshape=st.max_shape(n), chunks=chunks, fillvalue=0)

    def writer(self) -> ArrayWriter:
        return ArrayWriter(self.stacking)

    # ---------------------------------------------------------------- writing
    def _open(self) -> Any:
        import h5py

        if self._h5 is None:
            self._h5 = h5py.File(self.results_container, "a")
            self._last_flush = time.monotonic()
            self._stop = threading.Event()
            self._timer = threading.Thread(target=self._flush_when_idle, daemon=True,
                                           name="acme-core hdf5-single flush")
            self._timer.start()
        return self._h5

    def collect(self, outcome: CallOutcome) -> None:
        """Write call ``outcome.index``'s arrays; flush every batch of writes."""
        index, datasets = outcome.index, outcome.value
        with self._lock:
            h5 = self._open()
            try:
                self._write(h5, index, datasets)
            except BaseException:
                self._undo(h5, index, datasets)
                raise
            finally:
                self._pending += 1
            if self._pending >= FLUSH_EVERY or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                self._flush()

    def _write(self, h5: Any, index: int, datasets: list[tuple[str, np.ndarray]]) -> None:
        group = h5.require_group(f"comp_{index}") if self.stacking is None else None
        for name, data in datasets:
            if self.stacking is not None and name == "result_0":
                self._slot(h5["result_0"], index, data)
                continue
            if group is None:
                group = h5.require_group(f"comp_{index}")
            if name in group:  # a call that ran again (retry, resumed run)
                del group[name]
            group.create_dataset(name, data=data)

    def _undo(self, h5: Any, index: int, datasets: list[tuple[str, np.ndarray]]) -> None:
        """Remove what a failed write of call ``index`` left (no half-written group)."""
        group = h5.get(f"comp_{index}")
        for name, _ in datasets:
            if group is not None and name in group and not (self.stacking and name == "result_0"):
                with contextlib.suppress(Exception):  # best effort
                    del group[name]

    def _slot(self, dset: Any, index: int, data: np.ndarray) -> None:
        st = self.stacking
        assert st is not None
        if st.unlimited is None:
            dset[st.slot(index)] = data
            return
        length = data.shape[st.unlimited]
        axis = st.unlimited + (1 if st.unlimited >= st.axis else 0)
        if length > dset.shape[axis]:
            shape = list(dset.shape)
            shape[axis] = length
            dset.resize(tuple(shape))
        dset[st.slot(index, data.shape)] = data

    def _flush(self) -> None:
        if self._h5 is not None and self._pending:
            self._h5.flush()
            self._pending = 0
            self._last_flush = time.monotonic()

    def flush(self) -> None:
        """Make every result collected so far durable (see :meth:`Storage.flush`)."""
        with self._lock:
            self._flush()

    def _flush_when_idle(self) -> None:
        stop = self._stop
        assert stop is not None
        while not stop.wait(FLUSH_SECONDS / 2):
            with self._lock:
                if self._pending and time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                    self._flush()

    # ---------------------------------------------------------------- the end
    def finish(self) -> list[str]:
        self.close()
        assert self.results_container is not None
        return [self.results_container]

    def close(self) -> None:
        """Stop the flush timer, flush and close the file (idempotent)."""
        if self._stop is not None:
            self._stop.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        with self._lock:
            if self._h5 is not None:
                self._h5.close()
                self._h5 = None
                self._pending = 0

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()
