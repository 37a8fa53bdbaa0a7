"""Virtual datasets that stack every call's first return value (``result_shape``).

A container's ``result_0`` maps slice ``i`` of the calls' axis to call ``i``'s dataset in
another file. A slice whose source is absent (the call failed or has not run) reads as the
dataset's fill value: NaN for floating-point dtypes (``Stacking.fill``), so a missing call is
never mistaken for data. Along an unlimited (``np.inf``) axis shorter calls are padded
with 0, as ACME does, when their shapes are known (:func:`layout_of_known`); when they are
not (:func:`layout_of_files`, written before any call ran) the padding is the fill value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .stacking import Stacking

#: Attribute of a stacked ``result_0`` that names its calls' axis (readers of bare files).
AXIS_ATTR = "acme_core_stacking_axis"


def layout_of_files(st: Stacking, n: int, source: Callable[[int], str],
                    dataset: str = "result_0") -> Any:
    """A layout over call ``i``'s dataset in file ``source(i)``, for every call, before
    their shapes are known: along an unlimited axis the mappings are unlimited too, so the
    extent is the longest call's.

    Examples
    --------
    >>> from acme_core.storage.stacking import Stacking
    >>> from acme_core.storage.virtual import layout_of_files
    >>> layout_of_files(Stacking.of((None, 3), "float"), 4, lambda i: f"f_{i}.h5").shape
    (4, 3)
    """
    import h5py

    if st.unlimited is None:
        shape = tuple(int(v) for v in st.per_call if v is not None)
        layout = h5py.VirtualLayout(shape=st.full_shape(n), dtype=np.dtype(st.dtype))
        for i in range(n):
            layout[st.slot(i)] = h5py.VirtualSource(source(i), dataset, shape=shape)
        return layout
    unlimited = slice(0, h5py.h5s.UNLIMITED)
    source_shape = tuple(1 if v is None else v for v in st.per_call)
    whole = tuple(unlimited if v is None else slice(None) for v in st.per_call)
    layout = h5py.VirtualLayout(shape=st.full_shape(n, 1), dtype=np.dtype(st.dtype),
                                maxshape=st.max_shape(n))
    for i in range(n):
        vsource = h5py.VirtualSource(source(i), dataset, shape=source_shape,
                                     maxshape=tuple(st.per_call))
        target = list(whole)
        target.insert(st.axis, i)
        layout[tuple(target)] = vsource[whole]
    return layout


def layout_of_known(st: Stacking, n: int,
                    sources: Mapping[int, tuple[str, str, tuple[int, ...]]]) -> Any:
    """A layout over the calls in ``sources`` (index -> file, dataset, its shape); the
    others are left unmapped.

    Examples
    --------
    >>> from acme_core.storage.stacking import Stacking
    >>> from acme_core.storage.virtual import layout_of_known
    >>> st = Stacking.of((None, np.inf), "float")
    >>> layout_of_known(st, 3, {0: ("a.h5", "r", (2,)), 2: ("b.h5", "r", (5,))}).shape
    (3, 5)
    """
    import h5py

    extent = 0
    if st.unlimited is not None:
        extent = max((shape[st.unlimited] for _, _, shape in sources.values()), default=0)
    layout = h5py.VirtualLayout(shape=st.full_shape(n, extent), dtype=np.dtype(st.dtype),
                                maxshape=st.max_shape(n) if st.unlimited is not None else None)
    for i, (path, dataset, shape) in sources.items():
        layout[st.slot(i, shape if st.unlimited is not None else None)] = h5py.VirtualSource(
            path, dataset, shape=tuple(shape))
    return layout


def map_rows(layout: Any, file: str, dataset: str, shape: tuple[int, ...], axis: int,
             runs: list[tuple[int, int, int]]) -> None:
    """Map runs of a row table's ``dataset`` (in ``file``, of ``shape``, calls along
    ``axis``) onto ``layout``'s calls' axis: (first row, first call, length) each.

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.virtual import map_rows
    >>> layout = h5py.VirtualLayout(shape=(10, 2), dtype="f8")
    >>> map_rows(layout, "shard.h5", "rows/result_0", (4, 2), 0, [(0, 6, 4)])
    """
    import h5py

    source = h5py.VirtualSource(file, dataset, shape=shape)
    for row, call, length in runs:
        target: list[Any] = [slice(None)] * len(shape)
        target[axis] = slice(call, call + length)
        rows = list(target)
        rows[axis] = slice(row, row + length)
        layout[tuple(target)] = source[tuple(rows)]


def create_stacked(h5: Any, st: Stacking, layout: Any, padded: Mapping[int, tuple[int, ...]]
                   | None = None) -> None:
    """Create the virtual ``result_0`` of ``layout`` in ``h5`` with :attr:`Stacking.fill`.

    ``padded`` (index -> shape, calls shorter than the extent along the unlimited axis):
    their padding is mapped to a dataset of zeros (``acme_core_zeros``, stored as one
    unallocated chunk), so it reads 0 as ACME's, while missing calls read the fill value.

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.stacking import Stacking
    >>> from acme_core.storage.virtual import create_stacked, layout_of_known
    >>> st = Stacking.of((None, 2), "float")
    >>> with h5py.File(tmp_path / "c.h5", "w") as h5:
    ...     create_stacked(h5, st, layout_of_known(st, 2, {}))
    ...     h5["result_0"][()].tolist()
    [[nan, nan], [nan, nan]]
    """
    if padded:
        _map_padding(h5, st, layout, padded)
    dset = h5.create_virtual_dataset("result_0", layout, fillvalue=st.fill)
    dset.attrs[AXIS_ATTR] = st.axis


def _map_padding(h5: Any, st: Stacking, layout: Any,
                 padded: Mapping[int, tuple[int, ...]]) -> None:
    import h5py

    assert st.unlimited is not None
    extent = layout.shape[st.unlimited + (1 if st.unlimited >= st.axis else 0)]
    zeros_shape = tuple(extent if v is None else v for v in st.per_call)
    h5.create_dataset("acme_core_zeros", shape=zeros_shape, dtype=np.dtype(st.dtype),
                      fillvalue=0, chunks=True)
    for i, shape in padded.items():
        length = shape[st.unlimited]
        if length >= extent:
            continue
        pad = [slice(None) if v is not None else slice(length, extent) for v in st.per_call]
        zeros = h5py.VirtualSource(".", "acme_core_zeros", shape=zeros_shape)
        target = list(pad)
        target.insert(st.axis, i)
        layout[tuple(target)] = zeros[tuple(pad)]
