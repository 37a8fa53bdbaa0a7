"""The ``hdf5-shards`` container: every call's results in call order, through links and
virtual datasets into the shards, written in bulk.

Calls stored as rows (``acme_core.storage.rows``) appear as row ``i`` of the container's
``result_<k>`` (virtual datasets over the shards' tables, one mapping per run of
consecutive calls, not one per call); ``done[i]`` says whether call ``i`` has a result.
Calls stored as groups appear as ``comp_<i>`` (an external link to the shard's group), as
in ACME's container. With ``result_shape`` the container is ACME's: ``result_0`` stacks
every call's first value along the calls' axis (rows and groups alike; NaN for a call
without a result), further return values are ``comp_<i>/result_<k>``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import rows
from .links import link_all
from .stacking import Stacking, fill_value
from .virtual import create_stacked, layout_of_known, map_rows


@dataclass
class Table:
    """The valid rows of one file's table: where they are and which calls they hold."""

    link: str                      #: the file, relative to the container
    sig: rows.Signature
    shapes: dict[str, tuple[int, ...]]  #: each table dataset's full shape
    axis: int                      #: calls' axis of ``result_0``
    positions: np.ndarray          #: rows (ascending) that hold valid calls
    calls: np.ndarray              #: the calls those rows hold

    def runs(self) -> list[tuple[int, int, int]]:
        return rows.runs(self.positions, self.calls)


def owned_by(owner: np.ndarray, indices: np.ndarray, fid: int) -> np.ndarray:
    """Which of the calls ``indices`` (a file's rows) have their valid result in file
    ``fid`` (``owner[i]``: the file number of call ``i``, -1 for none; calls beyond it
    belong to no file).

    Examples
    --------
    >>> from acme_core.storage.shard_container import owned_by
    >>> owned_by(np.array([0, 1, 0]), np.array([0, 1, 2, 7]), 0).tolist()
    [True, False, True, False]
    """
    inside = indices < len(owner)
    owned = np.zeros(len(indices), dtype=bool)
    owned[inside] = owner[indices[inside]] == fid
    return owned


def read_tables(files: dict[int, tuple[str, str]], owner: np.ndarray) -> list[Table]:
    """The tables of ``files`` (file number -> its path, and its name for the container),
    keeping the rows of calls whose valid result is in that file (``owner[i]``: the file
    number of call ``i``, -1 for none)."""
    import h5py

    tables = []
    for fid, (path, link) in files.items():
        with h5py.File(path, "r", locking=False) as h5:
            sig = rows.table_signature(h5)
            if sig is None:
                continue
            indices = rows.table_indices(h5)
            valid = owned_by(owner, indices, fid)
            # the tables are held until the container is written: at 10^6 calls, 32-bit
            # positions and calls halve what that costs the parent
            small = np.int32 if len(owner) <= np.iinfo(np.int32).max else np.int64
            positions = np.flatnonzero(valid).astype(small)
            shapes = {name: h5[rows.TABLE][name].shape for name, _, _ in sig}
            tables.append(Table(link, sig, shapes, rows.calls_axis(h5, "result_0"),
                                positions, indices[positions].astype(small)))
    return tables


def write_container(h5: Any, n: int, st: Stacking | None, tables: list[Table],
                    groups: dict[int, str], names: dict[int, tuple[str, ...]],
                    shapes: dict[int, tuple[int, ...]]) -> None:
    """Fill the new container ``h5`` (see the module docstring).

    ``groups``: call -> file (relative link) of the calls stored as groups; ``names``:
    dataset names of calls with several return values; ``shapes``: ``result_0``'s shape
    of group calls along an unlimited axis.
    """

    counts: Counter[rows.Signature] = Counter()
    for table in tables:
        counts[table.sig] += len(table.calls)
    main = counts.most_common(1)[0][0] if counts else None
    mains = [t for t in tables if t.sig == main]
    _stacked(h5, n, st, mains, groups, shapes)
    if main is not None and st is None:
        for name, dtype, shape in main:
            _column(h5, n, name, np.dtype(dtype), shape, mains)
        done = np.zeros(n, dtype=bool)
        done[list(groups)] = True
        for table in tables:
            done[table.calls] = True
        h5.create_dataset("done", data=done)
    for table in (t for t in tables if t.sig != main):
        _per_call(h5, table)
    if st is None:
        link_all(h5, ((f"comp_{i}", link, f"/comp_{i}") for i, link in groups.items()))
    else:
        link_all(h5, ((f"comp_{i}/{key}", link, f"/comp_{i}/{key}")
                      for i, link in groups.items() for key in names.get(i, ())[1:]))


def _stacked(h5: Any, n: int, st: Stacking | None, mains: list[Table], groups: dict[int, str],
             shapes: dict[int, tuple[int, ...]]) -> None:
    """With ``result_shape``: the stacked ``result_0`` over rows and groups."""
    if st is None:
        return
    if st.unlimited is None:
        shape = tuple(int(v) for v in st.per_call if v is not None)
        sources = {i: (link, f"comp_{i}/result_0", shape) for i, link in groups.items()}
        layout = layout_of_known(st, n, sources)
        for table in mains:
            map_rows(layout, table.link, "rows/result_0", table.shapes["result_0"],
                     st.axis, table.runs())
        create_stacked(h5, st, layout)
        return
    sources = {i: (link, f"comp_{i}/result_0", shapes[i]) for i, link in groups.items()}
    create_stacked(h5, st, layout_of_known(st, n, sources), {i: shapes[i] for i in groups})


def _column(h5: Any, n: int, name: str, dtype: np.dtype, shape: tuple[int, ...],
            tables: list[Table]) -> None:
    import h5py

    layout = h5py.VirtualLayout(shape=(n, *shape), dtype=dtype)
    for table in tables:
        map_rows(layout, table.link, f"rows/{name}", table.shapes[name], 0, table.runs())
    h5.create_virtual_dataset(name, layout, fillvalue=fill_value(dtype))


def _per_call(h5: Any, table: Table) -> None:
    """Rows of a rarer signature (workers whose calls returned other shapes): one small
    virtual dataset per call and value, ``comp_<i>/result_<k>``."""
    import h5py

    for name, dtype, shape in table.sig:
        axis = table.axis if name == "result_0" else 0
        for row, call in zip(table.positions.tolist(), table.calls.tolist(), strict=True):
            layout = h5py.VirtualLayout(shape=shape, dtype=np.dtype(dtype))
            sel: list[Any] = [slice(None)] * (len(shape) + 1)
            sel[axis] = row
            source = h5py.VirtualSource(table.link, f"rows/{name}", shape=table.shapes[name])
            layout[...] = source[tuple(sel)]
            h5.create_virtual_dataset(f"comp_{call}/{name}", layout)
