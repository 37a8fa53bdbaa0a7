"""ACME's mapping of a return value to HDF5 datasets (inventory §6.3).

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
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if items and all(_is_number(v) for v in items):
        return [("result_0", np.asarray(items))]
    if items and all(isinstance(v, str) for v in items):
        import h5py

        return [("result_0", np.array(items, dtype=h5py.string_dtype()))]
    return [(f"result_{k}", v) for k, v in enumerate(items)]


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
