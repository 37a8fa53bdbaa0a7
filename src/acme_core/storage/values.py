"""ACME's mapping of a return value to HDF5 datasets (see docs/guide/storage.md).

- a value that is not a list/tuple is wrapped into a 1-element list;
- if every element is a number or every element a string, the whole list is one dataset
  ``result_0`` (``return 18`` -> ``[18]``, ``return (1, 2)`` -> ``[1, 2]``, strings as
  variable-length strings);
- otherwise element ``k`` becomes dataset ``result_k`` (arrays keep dtype and shape).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def as_datasets(value: Any) -> list[tuple[str, Any]]:
    """Return ``(dataset name, data)`` pairs for one call's return value.

    Examples
    --------
    >>> from acme_core.storage.values import as_datasets
    >>> as_datasets(18)
    [('result_0', array([18]))]
    >>> [name for name, _ in as_datasets((np.arange(3), 2))]
    ['result_0', 'result_1']
    """
    if type(value) in SCALAR_TYPES:  # the common tiny result, without the general checks
        return [("result_0", np.asarray([value]))]
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if items and all(_is_number(v) for v in items):
        return [("result_0", np.asarray(items))]
    if items and all(isinstance(v, str) for v in items):
        import h5py

        return [("result_0", np.array(items, dtype=h5py.string_dtype()))]
    return [(f"result_{k}", v) for k, v in enumerate(items)]


#: The types of plain numbers, the common tiny result: one element of ``result_0``.
SCALAR_TYPES = frozenset({int, float, complex, bool, np.float64, np.float32, np.int64,
                          np.int32})


def _is_number(v: Any) -> bool:
    return isinstance(v, (numbers.Number, np.bool_)) and not isinstance(v, np.ndarray)


def cannot_store(exc: BaseException) -> bool:
    """True when h5py refused a value because HDF5 has no type for it (ACME's criterion
    for falling back to pickle)."""
    text = str(exc)
    return isinstance(exc, TypeError) and (
        "has no native HDF5 equivalent" in text
        or "One of data, shape or dtype must be specified" in text
        or "No conversion path" in text
    )


def as_array(data: Any) -> np.ndarray:
    """Convert one dataset's data the way ``h5py.Group.create_dataset(data=...)`` does, and
    check that HDF5 has a type for it.

    Worker-side writers call this before anything touches a file, so a value HDF5 cannot
    hold fails (or is pickled) where it was produced, with h5py's own message.

    Raises
    ------
    TypeError
        With h5py's messages ("... has no native HDF5 equivalent", "One of data, shape or
        dtype must be specified", "No conversion path ...") that :func:`cannot_store`
        recognises.

    Examples
    --------
    >>> from acme_core.storage.values import as_array
    >>> as_array(3).shape
    ()
    >>> as_array({"a": 1})
    Traceback (most recent call last):
    ...
    TypeError: Object dtype dtype('O') has no native HDF5 equivalent
    """
    import h5py

    if data is None:
        raise TypeError("One of data, shape or dtype must be specified")
    if isinstance(data, str):
        arr = np.array(data, dtype=h5py.string_dtype())
    elif isinstance(data, bytes):
        arr = np.array(data, dtype=h5py.string_dtype("ascii"))
    else:
        arr = np.asarray(data, order="C")
    if arr.dtype not in _STORABLE:  # numeric dtypes are checked once per process
        h5py.h5t.py_create(arr.dtype, logical=True)  # TypeError when HDF5 has no such type
        if arr.dtype.kind in "biufc":
            _STORABLE.add(arr.dtype)
    return arr


#: dtypes HDF5 was found to hold (``h5t.py_create`` costs microseconds per call).
_STORABLE: set[np.dtype] = set()


def to_arrays(value: Any) -> list[tuple[str, np.ndarray]]:
    """:func:`as_datasets` with every dataset converted by :func:`as_array`.

    Examples
    --------
    >>> from acme_core.storage.values import to_arrays
    >>> [(name, arr.shape) for name, arr in to_arrays((np.arange(3), 2))]
    [('result_0', (3,)), ('result_1', ())]
    """
    return [(name, as_array(data)) for name, data in as_datasets(value)]


def read_group(group: Any) -> Any:
    """Read one call's datasets back: the array of ``result_0`` alone, or a tuple of the
    ``result_<k>`` arrays in ``k`` order when there are several. Variable-length strings
    come back as ``str`` (h5py returns bytes).

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.values import read_group
    >>> with h5py.File(tmp_path / "g.h5", "w") as h5:
    ...     h5["result_0"], h5["result_1"] = np.arange(3), 7
    ...     read_group(h5)
    (array([0, 1, 2]), array(7))
    """
    keys = sorted((k for k in group if k.startswith("result_")), key=lambda k: int(k[7:]))
    values = tuple(read_dataset(group[k]) for k in keys)
    return values[0] if len(values) == 1 else values


def read_dataset(ds: Any) -> Any:
    """One dataset as a NumPy array (variable-length strings decoded to ``str``).

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.values import read_dataset
    >>> with h5py.File(tmp_path / "d.h5", "w") as h5:
    ...     h5["s"] = np.array(["ab"], dtype=h5py.string_dtype())
    ...     read_dataset(h5["s"]).tolist()
    ['ab']
    """
    import h5py

    if h5py.check_string_dtype(ds.dtype) is not None:
        data = ds.asstr()[()]
        return np.asarray(data, dtype=object) if isinstance(data, np.ndarray) else data
    return np.asarray(ds[()])
