"""Segment files: how workers write HDF5 results that survive any crash.

An HDF5 file that is open for writing is not crash-safe: a process killed while HDF5
updates its metadata can leave a file that no longer opens, and every result in it is
lost. So a writer never keeps a visible file open. Each worker process writes the calls
of a batch into a new *segment* under a temporary name; at the end of the batch
(:meth:`SegmentWriter.end_batch`, called by ``run_batch`` before the batch's outcome
leaves the worker) it closes the file, fsyncs it and renames it to its final name::

    <func>_payload/<func>_segment_<host>_<pid>_<token>_<seq>.h5

A segment holds its batch's small, uniform results as rows of one table (``rows/``, see
``acme_core.storage.rows``) and every other result as a group ``comp_<i>/result_<k>``.

A segment on disk is therefore always complete, and every call the parent hears about is
in one. A killed worker leaves at most a temporary file (removed at the next start). The
storages built on segments (``hdf5-shards``, ``hdf5-single``) copy them into their final
files when the run finishes; a call found in several segments (re-run after its worker
died, or by a resumed run) is read from the most recently written one.
"""

from __future__ import annotations

import glob
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import numpy as np

from ..call_runs import CallSet
from ..records import StorageSettings
from . import rows
from .atomic import as_disk_full, publish, remove, temporary_name
from .base import Storage
from .stacking import Stacking, convert
from .values import SCALAR_TYPES as _SCALARS
from .values import read_group, to_arrays
from .virtual import AXIS_ATTR

log = logging.getLogger("acme_core")

T = TypeVar("T")


class Receipt(NamedTuple):
    """What a segment write sends back to the parent.

    Examples
    --------
    >>> from acme_core.storage.segments import Receipt
    >>> Receipt("f_segment_h_1_ab_0.h5", ("result_0",), (1,)).shape
    (1,)
    """

    file: str
    names: tuple[str, ...]
    shape: tuple[int, ...]


def host_name() -> str:
    """This host's name, safe in a file name."""
    return socket.gethostname().replace(os.sep, "_") or "host"


def result_files(folder: str, func_name: str) -> list[str]:
    """Every finished shard and segment of ``func_name`` in ``folder``, oldest first
    (by modification time, then name): later files win for calls stored twice.

    Examples
    --------
    >>> from acme_core.storage.segments import result_files
    >>> result_files(str(tmp_path), "f")
    []
    """
    esc = glob.escape(os.path.join(folder, func_name))
    paths = glob.glob(f"{esc}_shard_*.h5") + glob.glob(f"{esc}_segment_*.h5")

    def age(path: str) -> tuple[int, str]:
        try:
            return os.stat(path).st_mtime_ns, path
        except FileNotFoundError:
            return 0, path

    return sorted(paths, key=age)


def segment_files(folder: str, func_name: str) -> list[str]:
    """The segments (not yet compacted) among :func:`result_files`.

    Examples
    --------
    >>> from acme_core.storage.segments import segment_files
    >>> segment_files(str(tmp_path), "f")
    []
    """
    return [p for p in result_files(folder, func_name)
            if os.path.basename(p).startswith(f"{func_name}_segment_")]


def read_each(paths: Iterable[str], read: Callable[[Any, str], T]) -> Iterator[tuple[str, T]]:
    """``(path, read(h5, file name))`` for each of ``paths`` opened read-only, in order.
    Files that do not open or read (truncated, damaged) are skipped with a warning: their
    calls count as missing.

    Examples
    --------
    >>> from acme_core.storage.segments import SegmentWriter, file_calls, read_each, result_files
    >>> writer = SegmentWriter(str(tmp_path), "f")
    >>> _ = writer.write(4, 18)
    >>> _ = writer.end_batch([4])
    >>> [table.tolist() for _, (table, _, _) in read_each(result_files(str(tmp_path), "f"),
    ...                                                   file_calls)]
    [[4]]
    """
    import h5py

    for path in paths:
        try:
            with h5py.File(path, "r", locking=False) as h5:
                got = read(h5, os.path.basename(path))
        except (OSError, KeyError, ValueError) as exc:
            log.warning(f"Result file {path} cannot be read; its calls count as missing: "
                        f"{exc}")
            continue
        yield path, got


def scan(paths: Iterable[str], n_calls: int | None = None) -> dict[int, tuple[str, Receipt]]:
    """Call index -> (file, receipt) for every call stored in ``paths`` (in that order:
    a later file wins), skipping files :func:`read_each` cannot read. One entry per call:
    :func:`held_calls` and :func:`file_calls` answer for 10^6 calls without them.

    Examples
    --------
    >>> from acme_core.storage.segments import SegmentWriter, scan, result_files
    >>> writer = SegmentWriter(str(tmp_path), "f")
    >>> _ = writer.write(4, 18)
    >>> _ = writer.end_batch([4])
    >>> [(i, r.names) for i, (_, r) in scan(result_files(str(tmp_path), "f")).items()]
    [(4, ('result_0',))]
    """
    found: dict[int, tuple[str, Receipt]] = {}
    for path, held in read_each(paths, lambda h5, file: list(receipts(h5, file, n_calls))):
        for index, receipt in held:
            found[index] = (path, receipt)
    return found


def held_calls(paths: Iterable[str], n_calls: int) -> np.ndarray:
    """Which of ``n_calls`` calls the readable files among ``paths`` hold (bool array).

    Examples
    --------
    >>> from acme_core.storage.segments import SegmentWriter, held_calls, result_files
    >>> writer = SegmentWriter(str(tmp_path), "f")
    >>> _ = writer.write(1, 18)
    >>> _ = writer.end_batch([1])
    >>> held_calls(result_files(str(tmp_path), "f"), 3).tolist()
    [False, True, False]
    """
    held = np.zeros(n_calls, dtype=bool)
    for _, (table, _, grouped) in read_each(
            paths, lambda h5, file: file_calls(h5, file, n_calls)):
        held[table] = True
        held[[index for index, _ in grouped]] = True
    return held


def not_held(indices: Iterable[int], held: np.ndarray) -> set[int]:
    """The calls of ``indices`` that ``held`` (a bool array over every call) says are not
    stored, without a Python step per held call when ``indices`` is a
    :class:`~acme_core.call_runs.CallSet`.

    Examples
    --------
    >>> import numpy as np
    >>> from acme_core.storage.segments import not_held
    >>> not_held({0, 1, 2}, np.array([True, False, True]))
    {1}
    """
    calls = (indices.array if isinstance(indices, CallSet)
             else np.fromiter(indices, dtype=np.int64))
    return set(calls[~held[calls]].tolist())


def file_calls(h5: Any, file: str, n_calls: int | None = None
               ) -> tuple[np.ndarray, Receipt | None, list[tuple[int, Receipt]]]:
    """The calls the open file ``h5`` holds (below ``n_calls``): those that are rows of its
    table (:mod:`acme_core.storage.rows`), as an int64 array with the receipt they all
    share (None without a table), and those stored as groups ``comp_<i>``, each with its
    receipt.

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.segments import file_calls
    >>> with h5py.File(tmp_path / "g.h5", "w") as h5:
    ...     h5["comp_3/result_0"] = [1.5]
    ...     file_calls(h5, "g.h5")
    (array([], dtype=int64), None, [(3, Receipt(file='g.h5', names=('result_0',), shape=(1,)))])
    """
    sig = rows.table_signature(h5)
    table, shared = np.zeros(0, dtype=np.int64), None
    if sig is not None:
        table = rows.table_indices(h5).astype(np.int64, copy=False)
        if n_calls is not None:
            table = table[table < n_calls]
        shared = Receipt(file, tuple(name for name, _, _ in sig), sig[0][2])
    grouped = []
    for key, group in h5.items():
        index = group_index(key)
        if index is None or (n_calls is not None and index >= n_calls):
            continue
        if "result_0" not in group:
            continue
        names = tuple(sorted(group, key=lambda k: int(k[7:])))
        grouped.append((index, Receipt(file, names, tuple(group["result_0"].shape))))
    return table, shared, grouped


def receipts(h5: Any, file: str, n_calls: int | None = None) -> Iterator[tuple[int, Receipt]]:
    """(call index, receipt) of every call the open file ``h5`` holds (see
    :func:`file_calls`), the table's calls first.

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.segments import receipts
    >>> with h5py.File(tmp_path / "g.h5", "w") as h5:
    ...     h5["comp_3/result_0"] = [1.5]
    ...     list(receipts(h5, "g.h5"))
    [(3, Receipt(file='g.h5', names=('result_0',), shape=(1,)))]
    """
    table, shared, grouped = file_calls(h5, file, n_calls)
    for index in table.tolist():
        yield index, shared  # type: ignore[misc] - a table has its receipt
    yield from grouped


def values_in(h5: Any, wanted: Container[int] | None = None) -> Iterator[tuple[int, Any]]:
    """(call index, value as ``read_group`` reads it) of the calls in ``wanted`` (default:
    every call) that the open file ``h5`` holds.

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.segments import SegmentWriter, values_in
    >>> writer = SegmentWriter(str(tmp_path), "f")
    >>> receipt = writer.write(2, 7.5)
    >>> writer.close()
    >>> with h5py.File(tmp_path / receipt.file) as h5:
    ...     list(values_in(h5))
    [(2, array([7.5]))]
    """
    indices, columns = rows.read_table(h5)
    for index, value in zip(indices.tolist(), rows.values_of(columns), strict=True):
        if wanted is None or index in wanted:
            yield index, value
    for key, group in h5.items():
        index = group_index(key)
        if index is not None and (wanted is None or index in wanted) and "result_0" in group:
            yield index, read_group(group)


def read_results(folder: str, func_name: str, values: list[Any], have: np.ndarray,
                 axis: int = -1) -> int:
    """Overlay the calls of every shard and segment in ``folder`` onto ``values`` (one entry
    per call) and ``have`` (a later file wins); return the calls' axis of ``result_0``
    that the files record (``axis`` when none does). A file that does not open is skipped:
    its calls count as missing (a resumed run re-runs them).

    Examples
    --------
    >>> from acme_core.storage.segments import SegmentWriter, read_results
    >>> writer = SegmentWriter(str(tmp_path), "f")
    >>> _ = writer.write(1, 18)
    >>> writer.close()
    >>> values, have = [None, None], np.zeros(2, dtype=bool)
    >>> read_results(str(tmp_path), "f", values, have), values[1], have.tolist()
    (-1, array([18]), [False, True])
    """
    import h5py

    n = len(values)
    for path in result_files(folder, func_name):
        try:
            with h5py.File(path, "r", locking=False) as h5:
                axis = int(h5.attrs.get(AXIS_ATTR, axis))
                for index, value in values_in(h5):
                    if index < n:
                        values[index] = value
                        have[index] = True
        except OSError:
            continue
    return axis


def group_index(key: str) -> int | None:
    """The call of a group named ``comp_<i>``; None for another name.

    Examples
    --------
    >>> from acme_core.storage.segments import group_index
    >>> group_index("comp_12"), group_index("rows")
    (12, None)
    """
    if not key.startswith("comp_"):
        return None
    try:
        return int(key[5:])
    except ValueError:
        return None


#: What a plain number's receipt says (ACME stores ``return 18`` as ``result_0 = [18]``).
_SCALAR_NAMES = ("result_0",)
_SCALAR_SHAPE = (1,)
_INT64 = (-(1 << 63), (1 << 63) - 1)


#: This process's pid, renewed in a forked child: a writer compares it on every write to
#: notice a fork (the child starts its own segments) without a system call per call.
_pid = os.getpid()


def _renew_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_renew_pid)


@dataclass
class _Scalars:
    """The plain numbers of one type a segment keeps until it is sealed."""

    kind: type
    sig: rows.Signature
    dtype: np.dtype
    receipt: Receipt
    indices: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    @classmethod
    def of(cls, value: Any, receipt: Receipt) -> _Scalars:
        """An empty keeper for numbers of ``value``'s type (its dtype as ACME's mapping
        gives it, checked for HDF5 once), whose calls all get ``receipt``."""
        sig = rows.signature(to_arrays(value))
        assert sig is not None
        return cls(type(value), sig, np.dtype(sig[0][1]), receipt)


@dataclass(eq=False)
class SegmentWriter:
    """Worker side: write each call into this process's current segment; seal the
    segment (close, fsync, rename) at the end of every batch.

    The open file is per process and never pickled: a writer that arrives in a new process
    (or after a fork) starts that process's own segments.

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.segments import SegmentWriter
    >>> writer = SegmentWriter(str(tmp_path), "f")
    >>> receipt = writer.write(7, 18)
    >>> writer.end_batch([7])
    {}
    >>> with h5py.File(tmp_path / receipt.file) as h5:
    ...     h5["rows/call_index"][()], h5["rows/result_0"][()]
    (array([7]), array([[18]]))
    """

    payload_dir: str
    func_name: str
    stacking: Stacking | None = None
    storage: str = "hdf5-shards"
    _lock: Any = field(default_factory=threading.Lock, repr=False)
    _h5: Any = field(default=None, repr=False)
    _name: str = field(default="", repr=False)
    _indices: set[int] = field(default_factory=set, repr=False)
    _rows: dict[int, tuple[rows.Signature, list[np.ndarray]]] = field(default_factory=dict,
                                                                      repr=False)
    _groups: set[int] = field(default_factory=set, repr=False)  # calls written as groups
    _scalars: _Scalars | None = field(default=None, repr=False)  # plain numbers, one type
    _lost: dict[int, BaseException] = field(default_factory=dict, repr=False)
    _pid: int = field(default=0, repr=False)
    _token: str = field(default="", repr=False)
    _seq: int = field(default=0, repr=False)
    _batched: bool = field(default=False, repr=False)
    _receipt: Receipt | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"payload_dir": self.payload_dir, "func_name": self.func_name,
                "stacking": self.stacking, "storage": self.storage}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def write(self, index: int, value: Any) -> Receipt:
        """Add call ``index`` to the current segment; return its receipt.

        A small, numeric result is kept (copied) until the segment is sealed, then written
        as a row of the segment's table (:mod:`acme_core.storage.rows`); others are
        written as a group ``comp_<index>`` at once. A plain number (``int``, ``float``,
        ...) is kept as it is, without arrays: its row is built with the batch's others in
        one NumPy call when the segment is sealed."""
        kind = type(value)
        # an int beyond int64 would make an object array, which HDF5 cannot hold: the
        # general path fails that call with h5py's message. Every test here is inline:
        # this runs once per call (10^6 tiny calls: each 0.1 us is 0.1 s).
        if (kind in _SCALARS and self.stacking is None
                and (kind is not int or _INT64[0] <= value <= _INT64[1])):
            with self._lock:
                kept = self._scalars
                if kept is None or self._pid != _pid:  # a new segment, or a forked child
                    kept = self._keeper(value)
                indices = self._indices
                if kept.kind is kind and index not in indices:
                    kept.indices.append(index)
                    kept.values.append(value)
                    indices.add(index)
                    return kept.receipt
        return self._write_arrays(index, value)

    def _write_arrays(self, index: int, value: Any) -> Receipt:
        """:meth:`write` for every value but the plain numbers of the segment's first
        kind (and for a call written twice into the segment)."""
        datasets = convert(value, self.stacking, index, self.storage)
        # with result_shape only a lone first value is a row: the container keeps ACME's
        # view (a stacked result_0, further values in comp_<i>), padding needs groups
        st = self.stacking
        per_call = st is not None and (st.unlimited is not None or len(datasets) > 1)
        sig = None if per_call else rows.signature(datasets)
        with self._lock:
            self._begin()
            key = f"comp_{index}"
            try:
                if self._scalars is not None and index in self._indices:
                    self._scalars_as_rows()  # the call ran again: its new value wins
                if index in self._groups:  # the call ran again in this batch (retry)
                    del self._file()[key]
                    self._groups.discard(index)
                self._rows.pop(index, None)
                if sig is not None:
                    self._rows[index] = (sig, [np.array(a, copy=True) for _, a in datasets])
                else:
                    group = self._file().create_group(key)
                    self._groups.add(index)
                    for name, data in datasets:
                        group.create_dataset(name, data=data)
            except BaseException as exc:  # e.g. a full disk: the segment is unusable
                full = self._abandon(exc)
                if full is not exc:
                    raise full from exc
                raise
            self._indices.add(index)
            name = self._name
        return self._receipt_of(name, tuple(n for n, _ in datasets),
                                tuple(datasets[0][1].shape))

    def _keeper(self, value: Any) -> _Scalars:
        """The current segment's keeper of plain numbers (the lock held), begun for
        ``value``'s type when the segment has none (a new segment, or a forked child)."""
        self._begin()
        if self._scalars is None:
            self._scalars = _Scalars.of(value, self._receipt_of(self._name, _SCALAR_NAMES,
                                                                 _SCALAR_SHAPE))
        return self._scalars

    def _receipt_of(self, file: str, names: tuple[str, ...],
                    shape: tuple[int, ...]) -> Receipt:
        """The receipt, shared by the calls of a segment whose results look alike: pickle
        sends one object once and refers to it for the other calls, so the parent
        unpickles one receipt per batch, not one per call (10^6 calls: seconds)."""
        last = self._receipt
        if last is None or last.file != file or last.names != names or last.shape != shape:
            last = self._receipt = Receipt(file, names, shape)
        return last

    @property
    def batched_types(self) -> frozenset[type]:
        """The plain numbers ``run_batch`` hands over at :meth:`end_batch` for the whole
        batch (without ``result_shape``: with it, each value is stacked as it comes)."""
        return _SCALARS if self.stacking is None else frozenset()

    def end_batch(self, indices: Sequence[int],
                  values: list[Any] | None = None) -> dict[int, BaseException]:
        """Seal the current segment; return the calls of ``indices`` whose results did not
        reach the disk (sealing failed), with the exception, so they fail as ``storage``.

        ``values`` (one per call of ``indices``): the batch's values, whose plain numbers
        are written first and replaced by their receipts (:attr:`batched_types`)."""
        if values is not None:
            self._take_numbers(indices, values)
        with self._lock:
            self._batched = True
            self._seal()
            if not self._lost:
                return {}
            return {i: self._lost.pop(i) for i in indices if i in self._lost}

    def _take_numbers(self, indices: Sequence[int], values: list[Any]) -> None:
        """Keep the plain numbers among ``values`` (of calls ``indices``) and put their
        receipts in their place: all at once when they are the whole batch, of one type,
        within int64, each call once and new to the segment (a batch of tiny calls), else
        one by one through :meth:`write` (a call it cannot store is lost with its
        exception)."""
        kinds = set(map(type, values))
        if not kinds & _SCALARS:
            return
        kind = next(iter(kinds))
        if (len(kinds) == 1 and self.stacking is None
                and (kind is not int or _INT64[0] <= min(values) and max(values) <= _INT64[1])):
            calls = set(indices)
            with self._lock:
                kept = self._scalars
                if kept is None or self._pid != _pid:
                    kept = self._keeper(values[0])
                if (kept.kind is kind and len(calls) == len(indices)
                        and self._indices.isdisjoint(calls)):
                    kept.indices.extend(indices)
                    kept.values.extend(values)
                    self._indices |= calls
                    values[:] = [kept.receipt] * len(values)
                    return
        for k, (index, value) in enumerate(zip(indices, values, strict=True)):
            if type(value) in _SCALARS:
                try:
                    values[k] = self.write(index, value)
                except Exception as exc:  # noqa: BLE001 - this call's value cannot be stored
                    values[k] = None
                    with self._lock:
                        self._lost[index] = exc

    def flush(self) -> None:
        """Seal the current segment when this writer is used call by call (a debug run, or
        direct use): batches (``run_batch``) seal their own segments, this does nothing
        then (it would seal a batch still running in another thread).

        Raises
        ------
        OSError
            When the segment could not be written (its calls are lost).
        """
        if not self._batched:
            self.close()

    def close(self) -> None:
        """Seal the current segment (idempotent); the end of a run in this process.

        Raises
        ------
        OSError
            When the segment could not be written (its calls are lost).
        """
        with self._lock:
            self._batched = False
            if not self._name or self._pid != _pid:
                return
            lost = set(self._indices)
            self._seal()
            failed = [self._lost.pop(i) for i in lost if i in self._lost]
        if failed:
            raise failed[0]

    # ------------------------------------------------------------------ internals
    def _final(self) -> str:
        return os.path.join(self.payload_dir, self._name)

    def _begin(self) -> None:
        """Name the current segment (a new process, or a fork, starts its own)."""
        if self._pid != _pid:
            self._next_segment()
            self._lost, self._batched = {}, False
            self._pid, self._token, self._seq = _pid, uuid.uuid4().hex[:8], 0
        if not self._name:
            self._name = (f"{self.func_name}_segment_{host_name()}_{self._pid}_"
                          f"{self._token}_{self._seq}.h5")

    def _file(self) -> Any:
        """The current segment's file, under its temporary name, created on first use
        (a batch of rows only touches the disk when it is sealed)."""
        import h5py

        if self._h5 is None:
            self._h5 = h5py.File(temporary_name(self._final()), "w", locking=False)
            if self.stacking is not None:
                self._h5.attrs[AXIS_ATTR] = self.stacking.axis
        return self._h5

    def _seal(self) -> None:
        if not self._name or self._pid != _pid:
            return
        final = self._final()
        try:
            h5 = self._file()
            tmp = h5.filename
            self._write_rows()
            h5.close()
            publish(tmp, final)
        except BaseException as exc:
            self._abandon(exc)
            return
        self._next_segment()
        self._seq += 1

    def _next_segment(self) -> None:
        """Forget the current segment's state: the next write starts a new segment."""
        self._h5, self._name, self._indices, self._rows = None, "", set(), {}
        self._groups, self._scalars = set(), None

    def _scalars_as_rows(self) -> None:
        """Move the kept plain numbers into ``_rows``, as one-call arrays (a call of the
        segment is written again, and its new value must replace the old one)."""
        kept, self._scalars = self._scalars, None
        assert kept is not None
        for index, value in zip(kept.indices, kept.values, strict=True):
            self._rows[index] = (kept.sig, [np.asarray([value], dtype=kept.dtype)])

    def _write_rows(self) -> None:
        """The kept rows as the segment's table; rows of a rarer signature (a batch whose
        calls returned different shapes) as groups."""
        blocks = self._row_blocks()
        if not blocks:
            return
        main = max(blocks, key=lambda sig: len(blocks[sig][0]))
        indices, columns = blocks.pop(main)
        order = np.argsort(indices, kind="stable")
        axis = self.stacking.axis if self.stacking is not None else 0
        rows.write_table(self._h5, indices[order], {k: v[order] for k, v in columns.items()},
                         axis)
        for indices, columns in blocks.values():
            for r, index in enumerate(indices.tolist()):
                group = self._h5.create_group(f"comp_{index}")
                for name, data in columns.items():
                    group.create_dataset(name, data=data[r])

    def _row_blocks(self) -> dict[rows.Signature, tuple[np.ndarray, dict[str, np.ndarray]]]:
        """The kept rows by signature: (call indices, columns with the calls first)."""
        blocks: dict[rows.Signature, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        kept = self._scalars
        if kept is not None:
            column = np.array(kept.values, dtype=kept.dtype).reshape(-1, 1)
            blocks[kept.sig] = (np.array(kept.indices, dtype=np.int64), {"result_0": column})
        by_sig: dict[rows.Signature, list[int]] = {}
        for index, (sig, _) in self._rows.items():
            by_sig.setdefault(sig, []).append(index)
        for sig, calls in by_sig.items():
            indices = np.array(calls, dtype=np.int64)
            columns = rows.columns_of([self._rows[i][1] for i in calls], sig)
            if sig in blocks:
                known, old = blocks[sig]
                indices = np.concatenate([known, indices])
                columns = {k: np.concatenate([old[k], columns[k]]) for k in columns}
            blocks[sig] = (indices, columns)
        return blocks

    def _abandon(self, exc: BaseException) -> BaseException:
        """Drop the current segment: its calls are lost with ``exc`` (returned, as an
        ``OSError(ENOSPC)`` when the disk is full)."""
        tmp = temporary_name(self._final())
        exc = as_disk_full(exc, self._final())
        try:
            if self._h5 is not None:
                self._h5.close()
        except Exception:  # noqa: BLE001 - the file is being dropped anyway
            pass
        remove(tmp)
        for i in self._indices:
            self._lost[i] = exc
        self._next_segment()
        self._seq += 1
        return exc


class SegmentStorage(Storage):
    """Base of the storages whose workers write segments (``hdf5-shards``,
    ``hdf5-single``): the payload folder, the container's path and the writer.

    Examples
    --------
    >>> from acme_core.storage.base import StorageSettings
    >>> from acme_core.storage.hdf5_shards import HDF5ShardStorage
    >>> HDF5ShardStorage(StorageSettings("f", 2, "/runs/r")).payload_dir
    '/runs/r/f_payload'
    """

    #: The storage's name, in the error of a value HDF5 cannot hold.
    name = "hdf5-shards"

    def __init__(self, settings: StorageSettings) -> None:
        super().__init__(settings)
        assert settings.output_dir is not None
        func = settings.func_name
        self.stacking = Stacking.of(settings.result_shape, settings.result_dtype)
        self.payload_dir = os.path.join(settings.output_dir, f"{func}_payload")
        self.results_container = os.path.join(settings.output_dir, f"{func}.h5")
        self._writer: SegmentWriter | None = None

    def writer(self) -> SegmentWriter:
        self._writer = SegmentWriter(self.payload_dir, self.settings.func_name, self.stacking,
                                     self.name)
        return self._writer

    def flush(self) -> None:
        """Seal what this process wrote call by call itself (debug runs)."""
        if self._writer is not None:
            self._writer.flush()

    def _close_writer(self) -> None:
        """Seal this process's last segment (the run ends)."""
        if self._writer is not None:
            self._writer.close()
