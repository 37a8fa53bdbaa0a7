"""``storage="hdf5-single"`` (``single_file=True``, as ACME): one results file.

::

    <output_dir>/<func>.h5     comp_<i>/result_<k> real datasets (groups made up front, as ACME)
                               or, with result_shape, a real dataset result_0 (further return
                               values in comp_<i>/result_<k>)
    <output_dir>/<func>_payload/<func>_segment_<...>.h5   only while a run goes on

ACME had every worker open the one file under a cluster-wide lock, and an HDF5 file that is
open for writing can be destroyed by a crash (a parent SIGKILLed while writing left
``bad symbol table node signature`` and groups that could never be written again). Here
no process keeps ``<func>.h5`` open for writing while calls run: workers write their
batches into segment files that are complete before the parent hears of them (see
``acme_core.storage.segments``), and when the run finishes the parent copies the existing
``<func>.h5`` and every segment into a new file, which replaces ``<func>.h5`` atomically;
then the segments are deleted. A crash at any moment leaves the last complete
``<func>.h5`` and the segments: ``acme_core.load(output_dir)`` reads both, and a resumed
run rebuilds the file (from scratch if the old one is unreadable), so no group is ever
left unwritable. With ``result_shape`` the stacked ``result_0`` is NaN for calls without a
result (floating-point dtypes), its attribute ``acme_core_done`` (bits, ``np.packbits``)
says which calls it holds; along an ``np.inf`` axis shorter calls are zero-padded (ACME).
There is no emergency pickling here (ACME fails such calls).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..records import BatchOutcome, CallOutcome, StorageSettings, StoredResults
from . import rows
from .atomic import atomic_write, remove, remove_temporaries
from .readback import group_of, overlay_results, result_keys
from .segments import (
    Receipt,
    SegmentStorage,
    held_calls,
    not_held,
    read_results,
    scan,
    segment_files,
)
from .stacking import convert
from .values import read_dataset, read_group
from .virtual import AXIS_ATTR

log = logging.getLogger("acme_core")

#: Attribute of a stacked ``result_0``: which calls it holds (``np.packbits`` of a mask).
DONE_ATTR = "acme_core_done"

__all__ = ["DONE_ATTR", "HDF5SingleStorage", "convert", "stored_calls"]


def stored_calls(h5: Any, n_calls: int) -> np.ndarray:
    """The mask of calls an ``hdf5-single`` file holds results of.

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.hdf5_single import stored_calls
    >>> with h5py.File(tmp_path / "s.h5", "w") as h5:
    ...     h5["comp_1/result_0"] = [18]
    ...     _ = h5.create_group("comp_0")
    ...     stored_calls(h5, 2).tolist()
    [False, True]
    """
    import h5py

    if isinstance(h5.get("result_0"), h5py.Dataset):
        bits = h5["result_0"].attrs.get(DONE_ATTR)
        if bits is None:  # a file of ACME or of an older acme-core: no record
            return np.ones(n_calls, dtype=bool)
        return np.unpackbits(np.asarray(bits, dtype=np.uint8), count=n_calls).astype(bool)
    mask = np.zeros(n_calls, dtype=bool)
    for key, group in h5.items():
        if key.startswith("comp_") and key[5:].isdigit() and int(key[5:]) < n_calls:
            mask[int(key[5:])] = "result_0" in group
    return mask


class HDF5SingleStorage(SegmentStorage):
    """Every result in one HDF5 file, built by the parent at the end (see the module
    docstring).

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

    name = "hdf5-single"

    # ---------------------------------------------------------------- set-up
    def prepare(self) -> None:
        assert self.results_container is not None
        out, name = self.settings.output_dir, self.settings.func_name
        assert out is not None
        remove_temporaries(out, f"{name}.h5")
        if not (self.settings.resume and os.path.isfile(self.results_container)):
            atomic_write(self.results_container, self._create)
        os.makedirs(self.payload_dir, exist_ok=True)
        remove_temporaries(self.payload_dir, f"{name}_*.h5")

    def _create(self, path: str) -> None:
        import h5py

        n, st = self.settings.n_calls, self.stacking
        # the record of done calls is an attribute of n/8 bytes: above 64 KiB HDF5 needs
        # its 1.8 file format (dense attribute storage); every current HDF5 reads it
        big = st is not None and n > 8 * 60_000
        with h5py.File(path, "w", libver=("v108", "latest") if big else None) as h5:
            if st is None:
                for i in range(n):
                    h5.create_group(f"comp_{i}")
                return
            if st.unlimited is None:
                dset = h5.create_dataset("result_0", shape=st.full_shape(n), dtype=st.dtype,
                                         fillvalue=st.fill)
            else:
                dset = h5.create_dataset("result_0", shape=st.full_shape(n, 1), dtype=st.dtype,
                                         maxshape=st.max_shape(n), chunks=self._chunks(),
                                         fillvalue=st.fill)
            dset.attrs[AXIS_ATTR] = st.axis
            dset.attrs[DONE_ATTR] = np.packbits(np.zeros(n, dtype=bool))

    def _chunks(self) -> tuple[int, ...]:
        """One call per chunk, about 256 KiB along the unlimited axis."""
        st = self.stacking
        assert st is not None
        fixed = int(np.prod([v for v in st.per_call if v is not None]))
        extent = max(1, min(1 << 16, (1 << 18) // (np.dtype(st.dtype).itemsize * max(1, fixed))))
        return tuple(max(1, c) for c in st.full_shape(1, extent))

    # ---------------------------------------------------------------- running
    def collect(self, outcome: CallOutcome) -> None:
        """Nothing to do: the worker's segment holds the call (sealed before it reported)."""

    def collect_batch(self, batch: BatchOutcome) -> None:
        """Nothing to do for a whole batch either."""

    def damaged(self, indices: Iterable[int]) -> set[int]:
        """Calls of ``indices`` that neither the results file nor a segment holds.

        Examples
        --------
        >>> from acme_core.storage.base import StorageSettings
        >>> from acme_core.storage.hdf5_single import HDF5SingleStorage
        >>> storage = HDF5SingleStorage(StorageSettings("f", 3, str(tmp_path / "o")))
        >>> (tmp_path / "o").mkdir()
        >>> storage.prepare()
        >>> _ = storage.writer().write(1, 7.0)
        >>> storage.flush()
        >>> sorted(storage.damaged([0, 1, 2]))
        [0, 2]
        """
        held = held_calls(segment_files(self.payload_dir, self.settings.func_name),
                          self.settings.n_calls)
        in_file = self._stored_in_container()
        return not_held(indices, held if in_file is None else held | in_file)

    def _stored_in_container(self) -> np.ndarray | None:
        """The calls ``<func>.h5`` holds, or None when it is missing or does not open."""
        import h5py

        assert self.results_container is not None
        try:
            with h5py.File(self.results_container, "r", locking=False) as h5:
                return stored_calls(h5, self.settings.n_calls)
        except (OSError, KeyError, ValueError) as exc:
            if os.path.exists(self.results_container):
                log.warning(f"Results file {self.results_container} cannot be read; it is "
                            f"rebuilt from the calls' segments ({exc}).")
            return None

    # ---------------------------------------------------------------- reading back
    @classmethod
    def load(cls, settings: StorageSettings) -> StoredResults:
        """The results file overlaid by the segments in the payload folder (they are the
        truth during a run and after a crash; a call found in several reads from the most
        recent)."""
        assert settings.output_dir is not None
        n, name = settings.n_calls, settings.func_name
        values: list[Any] = [None] * n
        have = np.zeros(n, dtype=bool)
        stacked, axis = None, -1
        container = os.path.join(settings.output_dir, f"{name}.h5")
        if os.path.isfile(container):
            stacked, axis = _read_file(container, n, values, have)
        payload = os.path.join(settings.output_dir, f"{name}_payload")
        axis = read_results(payload, name, values, have, axis)
        return overlay_results(values, have, axis, stacked)

    # ---------------------------------------------------------------- the end
    def finish(self) -> list[str]:
        self._close_writer()
        assert self.results_container is not None
        segments = segment_files(self.payload_dir, self.settings.func_name)
        if segments or not os.path.isfile(self.results_container):
            winners = scan(segments, self.settings.n_calls)
            base = self._stored_in_container() is not None
            atomic_write(self.results_container, lambda tmp: self._merge(tmp, base, winners))
            for path in segments:
                remove(path)
        with contextlib.suppress(OSError):  # empty unless another process writes there
            os.rmdir(self.payload_dir)
        return [self.results_container]

    def _merge(self, tmp: str, base: bool, winners: dict[int, tuple[str, Receipt]]) -> None:
        """``tmp`` := the current results file (or a new one) plus every segment's calls."""
        import h5py

        assert self.results_container is not None
        if base:
            shutil.copyfile(self.results_container, tmp)
        else:
            self._create(tmp)
        by_file: dict[str, list[int]] = defaultdict(list)
        for index, (path, _) in winners.items():
            by_file[path].append(index)
        with h5py.File(tmp, "a") as h5:
            st = self.stacking
            old_extent = None if st is None else h5["result_0"].shape
            for path, indices in by_file.items():
                with h5py.File(path, "r", locking=False) as src:
                    self._copy_calls(h5, src, indices)
            if st is not None:
                self._mark_done(h5["result_0"], winners, old_extent)

    def _copy_calls(self, h5: Any, src: Any, indices: list[int]) -> None:
        """Copy calls ``indices`` of the segment ``src`` (rows or groups) into ``h5``."""
        wanted = set(indices)
        row_indices, columns = rows.read_table(src)
        for r, index in enumerate(row_indices.tolist()):
            if index in wanted:
                self._write(h5, index, [(name, data[r, ...]) for name, data in columns.items()])
        for index in indices:
            if f"comp_{index}" in src:
                group = src[f"comp_{index}"]
                self._write(h5, index, [(name, group[name]) for name in result_keys(group)])

    def _write(self, h5: Any, index: int, items: list[tuple[str, Any]]) -> None:
        """Call ``index``'s datasets (``items``: name, array or source dataset)."""
        group = None
        for name, data in items:
            if self.stacking is not None and name == "result_0":
                self._slot(h5["result_0"], index, data if isinstance(data, np.ndarray)
                           else data[()])
                continue
            if group is None:
                group = h5.require_group(f"comp_{index}")
            if name in group:  # a call that ran again (retry, resumed run)
                del group[name]
            if isinstance(data, np.ndarray):
                group.create_dataset(name, data=data)
            else:
                data.file.copy(data, group, name=name)

    def _slot(self, dset: Any, index: int, data: np.ndarray) -> None:
        st = self.stacking
        assert st is not None
        if st.unlimited is None:
            dset[st.slot(index)] = data
            return
        axis = self._unlimited_axis()
        length = data.shape[st.unlimited]
        if length > dset.shape[axis]:
            shape = list(dset.shape)
            shape[axis] = length
            dset.resize(tuple(shape))
        dset[st.slot(index, data.shape)] = data

    def _unlimited_axis(self) -> int:
        st = self.stacking
        assert st is not None and st.unlimited is not None
        return st.unlimited + (1 if st.unlimited >= st.axis else 0)

    def _mark_done(self, dset: Any, winners: dict[int, tuple[str, Receipt]],
                   old_shape: tuple[int, ...]) -> None:
        """Record the calls held; zero-pad shorter calls along an unlimited axis (ACME)."""
        st, n = self.stacking, self.settings.n_calls
        assert st is not None
        bits = dset.attrs.get(DONE_ATTR)
        done = (np.zeros(n, dtype=bool) if bits is None
                else np.unpackbits(np.asarray(bits, dtype=np.uint8), count=n).astype(bool))
        for index in winners:
            done[index] = True
        dset.attrs[DONE_ATTR] = np.packbits(done)
        if st.unlimited is None:
            return
        axis = self._unlimited_axis()
        extent = dset.shape[axis]
        for index in np.flatnonzero(done).tolist():
            receipt = winners.get(index)
            start = receipt[1].shape[st.unlimited] if receipt else old_shape[axis]
            if start < extent:
                pad = [slice(None) if v is not None else slice(start, extent)
                       for v in st.per_call]
                pad.insert(st.axis, index)
                dset[tuple(pad)] = 0


def _read_file(container: str, n: int, values: list[Any],
               have: np.ndarray) -> tuple[Any, int]:
    """Fill ``values``/``have`` from an ``hdf5-single`` file; (stacked array, axis)."""
    import h5py

    try:
        with h5py.File(container, "r", locking=False) as h5:
            have |= stored_calls(h5, n)
            if isinstance(h5.get("result_0"), h5py.Dataset):
                dset = h5["result_0"]
                axis = int(dset.attrs.get(AXIS_ATTR, 0))
                arr = np.moveaxis(dset[()], axis, 0)
                for i in np.flatnonzero(have).tolist():
                    group = group_of(h5, i)
                    extras = tuple(read_dataset(group[k]) for k in result_keys(group)
                                   if k != "result_0") if group is not None else ()
                    values[i] = (arr[i], *extras) if extras else arr[i]
                return arr, axis
            for i in np.flatnonzero(have).tolist():
                values[i] = read_group(h5[f"comp_{i}"])
    except OSError:
        have[:] = False
    return None, -1
