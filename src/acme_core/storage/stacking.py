"""``result_shape`` stacking shared by the HDF5 storages, and the conversion of one call's
return value into the datasets a storage writes.

``result_shape`` has exactly one ``None``, the axis of calls, and at most one ``np.inf``, an
unlimited axis whose extent is the longest call's; shorter calls are zero-padded (as ACME).
A call without a result never reads as data: floating-point stacked datasets are created
with NaN as their fill value, so a missing call's slice is NaN (other dtypes have no NaN;
their fill is 0 and ``acme_core.load`` reports the missing calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ResultShapeError
from .values import as_array, cannot_store, to_arrays


@dataclass(frozen=True)
class Stacking:
    """Where call ``i``'s first return value goes in the stacked ``result_0``.

    Examples
    --------
    >>> from acme_core.storage.stacking import Stacking
    >>> st = Stacking.of((3, None, np.inf), "float32")
    >>> st.axis, st.per_call, st.unlimited
    (1, (3, None), 1)
    >>> st.first(np.ones((3, 5))).shape
    (3, 5)
    >>> st.full_shape(4, 5), st.max_shape(4)
    ((3, 4, 5), (3, 4, None))
    """

    axis: int
    #: Shape of one call's slice; ``None`` marks the unlimited axis.
    per_call: tuple[int | None, ...]
    dtype: str
    #: Index of the unlimited axis in ``per_call`` (None: every size is fixed).
    unlimited: int | None = None

    @classmethod
    def of(cls, result_shape: tuple[Any, ...] | None, dtype: str) -> Stacking | None:
        """The stacking of a validated ``result_shape``, or None without one."""
        if result_shape is None:
            return None
        axis = result_shape.index(None)
        per_call = tuple(None if np.isinf(v) else int(v)
                         for k, v in enumerate(result_shape) if k != axis)
        unlimited = per_call.index(None) if None in per_call else None
        return cls(axis, per_call, str(np.dtype(dtype)), unlimited)

    def first(self, value: Any, index: int | None = None) -> np.ndarray:
        """Cast one call's first return value to ``dtype`` and check its shape (an array
        of the right size but another shape is reshaped, as NumPy assignment would)."""
        arr = as_array(value)
        try:
            arr = arr.astype(np.dtype(self.dtype), copy=False)
        except (TypeError, ValueError) as exc:
            raise ResultShapeError(self._mismatch(arr, index) + f" ({exc})") from None
        if self.unlimited is None:
            fixed = tuple(int(v) for v in self.per_call if v is not None)
            if arr.shape != fixed and arr.size == int(np.prod(fixed)):
                arr = arr.reshape(fixed)
            if arr.shape != fixed:
                raise ResultShapeError(self._mismatch(arr, index))
            return arr
        if arr.ndim != len(self.per_call) or any(
                want is not None and got != want for got, want in zip(arr.shape, self.per_call,
                                                                      strict=True)):
            raise ResultShapeError(self._mismatch(arr, index))
        return arr

    @property
    def fill(self) -> float:
        """The stacked dataset's fill value: NaN for floating-point (and complex) dtypes,
        else 0 (what a call without a result reads as).

        Examples
        --------
        >>> from acme_core.storage.stacking import Stacking
        >>> Stacking.of((None, 3), "float32").fill, Stacking.of((None, 3), "int64").fill
        (nan, 0)
        """
        return fill_value(self.dtype)

    def _mismatch(self, arr: np.ndarray, index: int | None) -> str:
        shape = tuple("inf" if v is None else v for v in self.per_call)
        call = "a call" if index is None else f"call {index}"
        return (f"{call} returned a first value of shape {arr.shape}, but `result_shape` "
                f"expects {shape} per call (dtype {self.dtype}).")

    def slot(self, index: int, shape: tuple[int, ...] | None = None) -> tuple[Any, ...]:
        """The selection of call ``index`` in the stacked array (``shape``: the call's own
        shape, needed along an unlimited axis)."""
        sel: list[Any] = [slice(None) if shape is None else slice(0, n) for n in
                          (shape or self.per_call)]
        sel.insert(self.axis, index)
        return tuple(sel)

    def full_shape(self, n_calls: int, extent: int = 0) -> tuple[int, ...]:
        """The stacked array's shape, with ``extent`` along the unlimited axis."""
        dims = [extent if v is None else v for v in self.per_call]
        dims.insert(self.axis, n_calls)
        return tuple(dims)

    def max_shape(self, n_calls: int) -> tuple[int | None, ...]:
        """The stacked array's ``maxshape`` (None along the unlimited axis)."""
        dims: list[int | None] = list(self.per_call)
        dims.insert(self.axis, n_calls)
        return tuple(dims)


def fill_value(dtype: Any) -> float:
    """What a stacked dataset of ``dtype`` reads for a call without a result: NaN for
    floating-point (and complex) dtypes, else 0.

    Examples
    --------
    >>> from acme_core.storage.stacking import fill_value
    >>> fill_value("float32"), fill_value("int8")
    (nan, 0)
    """
    return float("nan") if np.dtype(dtype).kind in "fc" else 0


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
    >>> from acme_core.storage.stacking import Stacking, convert
    >>> [(k, v.tolist()) for k, v in convert((1, 2), None, 0)]
    [('result_0', [1, 2])]
    >>> [(k, v.tolist()) for k, v in convert(np.ones(2), Stacking.of((None, 2), "int8"), 0)]
    [('result_0', [1, 1])]
    """
    try:
        return arrays_of(value, stacking, index)
    except TypeError as exc:
        if not cannot_store(exc):
            raise
        raise TypeError(
            f"call {index} returned a value HDF5 cannot hold ({type(value).__name__}: {exc}); "
            f"storage {storage!r} has no pickle fallback. Use the default storage (such "
            f"values are pickled there) or write_pickle=True."
        ) from None


def arrays_of(value: Any, stacking: Stacking | None,
              index: int | None = None) -> list[tuple[str, np.ndarray]]:
    """:func:`convert` without the advice: h5py's own ``TypeError`` for values HDF5 cannot
    hold (``cannot_store`` recognises it; the ``hdf5`` storage then pickles the value).

    Examples
    --------
    >>> from acme_core.storage.stacking import arrays_of
    >>> [name for name, _ in arrays_of((np.arange(3), 7), None)]
    ['result_0', 'result_1']
    """
    if stacking is None:
        return to_arrays(value)
    items = list(value) if isinstance(value, tuple) else [value]
    first = stacking.first(items[0], index)
    return [("result_0", first)] + [(f"result_{k}", as_array(v))
                                    for k, v in enumerate(items[1:], 1)]
