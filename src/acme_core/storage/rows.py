"""Row tables: small, uniform results of many calls as a few datasets with a call index.

One HDF5 group per call costs HDF5 an object header, a heap and a B-tree entry each:
10^5 calls in groups take seconds to write and to read back. Calls whose return values
have the same names, dtypes and shapes and are small (at most :data:`ROW_BYTES` in all)
are stored instead as rows of one table per file::

    rows/call_index    int64 (m,)          call index of each row
    rows/result_0      (m, *shape)         row r holds call call_index[r]'s result_0
    rows/result_1 ...                      further return values, the same way

With ``result_shape`` the calls of ``rows/result_0`` lie along its calls' axis (the
attribute ``acme_core_stacking_axis``, as in a stacked container), so a virtual dataset
maps runs of rows onto the stacked array without reordering. Plain h5py reads a table as
``h5["rows/result_0"][r]`` for call ``h5["rows/call_index"][r]``. Ragged, large or string
results keep one group ``comp_<i>`` per call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .virtual import AXIS_ATTR

#: The largest result (all its arrays together, in bytes) stored as a row.
ROW_BYTES = 1024
#: The group that holds a file's row table.
TABLE = "rows"
INDEX = "call_index"

#: A row's signature: (name, dtype, shape) of each of its arrays.
Signature = tuple[tuple[str, str, tuple[int, ...]], ...]


def signature(datasets: Sequence[tuple[str, np.ndarray]]) -> Signature | None:
    """The signature of one call's datasets, or None when they cannot be a row (strings,
    objects, more than :data:`ROW_BYTES`).

    Examples
    --------
    >>> from acme_core.storage.rows import signature
    >>> signature([("result_0", np.arange(3))])
    (('result_0', '<i8', (3,)),)
    >>> signature([("result_0", np.zeros(1000))]) is None
    True
    """
    if sum(arr.nbytes for _, arr in datasets) > ROW_BYTES:
        return None
    if any(arr.dtype.kind not in "biufc" for _, arr in datasets):
        return None
    return tuple((name, arr.dtype.str, arr.shape) for name, arr in datasets)


def calls_axis(h5: Any, name: str) -> int:
    """The axis of calls of table dataset ``name`` (0 but for a stacked ``result_0``)."""
    return int(h5[TABLE][name].attrs.get(AXIS_ATTR, 0)) if name == "result_0" else 0


def write_table(h5: Any, indices: Sequence[int] | np.ndarray, columns: dict[str, np.ndarray],
                axis: int = 0, growable: bool = False) -> None:
    """Create ``rows/`` in ``h5`` for calls ``indices``; ``columns``: dataset name -> the
    calls' arrays stacked along the first axis.

    ``axis``: where the calls go in ``result_0`` (``result_shape``'s calls' axis).
    ``growable``: chunked datasets that :func:`append_table` extends.

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.rows import read_table, write_table
    >>> with h5py.File(tmp_path / "t.h5", "w") as h5:
    ...     write_table(h5, [4, 5, 6], {"result_0": np.array([[4, 8], [5, 10], [6, 12]])})
    ...     index, columns = read_table(h5)
    >>> index.tolist(), columns["result_0"].tolist()
    ([4, 5, 6], [[4, 8], [5, 10], [6, 12]])
    """
    table = h5.create_group(TABLE)
    _column(table, INDEX, np.asarray(indices, dtype=np.int64), 0, growable)
    for name, data in columns.items():
        along = axis if name == "result_0" else 0
        _column(table, name, np.moveaxis(data, 0, along) if along else data, along, growable)


def columns_of(rows: Sequence[Sequence[np.ndarray]], sig: Signature) -> dict[str, np.ndarray]:
    """Calls' arrays (one sequence per call, in ``sig``'s order) as columns for
    :func:`write_table`.

    Examples
    --------
    >>> from acme_core.storage.rows import columns_of
    >>> sig = (("result_0", "<i8", (1,)),)
    >>> columns_of([[np.array([1])], [np.array([2])]], sig)["result_0"].shape
    (2, 1)
    """
    return {name: np.stack([row[k] for row in rows]) for k, (name, _, _) in enumerate(sig)}


def _column(table: Any, name: str, data: np.ndarray, axis: int, growable: bool) -> None:
    if growable:
        maxshape = tuple(None if k == axis else n for k, n in enumerate(data.shape))
        per_row = max(1, data.nbytes // max(1, data.shape[axis]))
        chunk = list(data.shape)
        chunk[axis] = max(1, min(1 << 16, (1 << 16) // per_row))
        dset = table.create_dataset(name, data=data, maxshape=maxshape, chunks=tuple(chunk))
    else:
        dset = table.create_dataset(name, data=data)
    if axis:
        dset.attrs[AXIS_ATTR] = axis


def append_table(h5: Any, indices: np.ndarray, columns: dict[str, np.ndarray]) -> None:
    """Append rows (``columns`` as :func:`read_table` gives them: calls first) to a
    growable ``rows/`` of ``h5``."""
    table = h5[TABLE]
    for name, data in [(INDEX, indices), *columns.items()]:
        dset = table[name]
        axis = calls_axis(h5, name) if name != INDEX else 0
        start = dset.shape[axis]
        shape = list(dset.shape)
        shape[axis] = start + len(indices)
        dset.resize(tuple(shape))
        sel = [slice(None)] * dset.ndim
        sel[axis] = slice(start, shape[axis])
        dset[tuple(sel)] = np.moveaxis(data, 0, axis) if axis else data


def table_signature(h5: Any) -> Signature | None:
    """The signature of ``h5``'s row table, or None when it has none."""
    if TABLE not in h5:
        return None
    table = h5[TABLE]
    names = sorted((k for k in table if k != INDEX), key=lambda k: int(k[7:]))
    sig = []
    for name in names:
        shape = list(table[name].shape)
        del shape[calls_axis(h5, name)]
        sig.append((name, table[name].dtype.str, tuple(shape)))
    return tuple(sig)


def table_indices(h5: Any) -> np.ndarray:
    """The call indices of ``h5``'s row table (empty without one)."""
    if TABLE not in h5:
        return np.zeros(0, dtype=np.int64)
    return h5[TABLE][INDEX][()]


def read_table(h5: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(call indices, name -> array with the calls along its first axis) of ``h5``'s row
    table."""
    indices = table_indices(h5)
    if TABLE not in h5:
        return indices, {}
    columns = {}
    for name in h5[TABLE]:
        if name != INDEX:
            axis = calls_axis(h5, name)
            columns[name] = np.moveaxis(h5[TABLE][name][()], axis, 0)
    return indices, dict(sorted(columns.items(), key=lambda kv: int(kv[0][7:])))


def values_of(columns: dict[str, np.ndarray]) -> Iterator[Any]:
    """Each row's value as :func:`acme_core.storage.values.read_group` reads a group: the
    array of ``result_0`` alone, or a tuple of every ``result_<k>``.

    Examples
    --------
    >>> from acme_core.storage.rows import values_of
    >>> list(values_of({"result_0": np.array([[1], [2]])}))
    [array([1]), array([2])]
    """
    arrays = [_each(column) for column in columns.values()]
    if len(arrays) == 1:
        return arrays[0]
    return zip(*arrays, strict=True)


def _each(column: np.ndarray) -> Iterator[np.ndarray]:
    """The rows of ``column`` as arrays (0-d ones for scalars, as h5py reads them)."""
    if column.ndim > 1:
        return iter(column)
    return (column[r, ...] for r in range(len(column)))


def runs(rows: np.ndarray, calls: np.ndarray) -> list[tuple[int, int, int]]:
    """Split rows ``rows`` (ascending) holding calls ``calls`` into runs where both go up
    by one: (first row, first call, length), for one virtual mapping each.

    Examples
    --------
    >>> from acme_core.storage.rows import runs
    >>> runs(np.array([0, 1, 2, 5]), np.array([10, 11, 3, 4]))
    [(0, 10, 2), (2, 3, 1), (5, 4, 1)]
    """
    if len(rows) == 0:
        return []
    cut = np.flatnonzero((np.diff(rows) != 1) | (np.diff(calls) != 1)) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [len(rows)]])
    return [(int(rows[a]), int(calls[a]), int(b - a)) for a, b in zip(starts, ends,
                                                                        strict=True)]
