"""``storage="memory"``: results come back to the parent, in call order.

``compute()`` returns a list of return values; with ``result_shape`` the first return value
of every call is stacked into one NumPy array of that shape and ``result_dtype`` (ACME: an
array when ``func`` returns one value, else ``[array, r1_call0, r2_call0, r1_call1, ...]``);
the slices of calls without a result are NaN for floating-point dtypes, else 0 (ACME left
them uninitialised).
A function with a ``taskID`` keyword saves its own output: nothing is collected and
``compute()`` returns None (ACME).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..calls import ResultWriter
from ..records import BatchOutcome, CallOutcome, StorageSettings
from .base import Discard, KeepValue, Storage
from .stacking import Stacking


class MemoryStorage(Storage):
    """Results in a list (or one array) in the parent process.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> ParallelMap(f, [2, 4, 6, 8], 4, write_worker_results=False,
    ...             verbose=False).compute()
    [18, 24, 30, 36]
    """

    def __init__(self, settings: StorageSettings) -> None:
        super().__init__(settings)
        shape = settings.result_shape
        if shape is not None and any(v is not None and np.isinf(v) for v in shape):
            raise ValueError(
                "`np.inf` in `result_shape` is only valid if `write_worker_results` is `True` "
                "(results on disk); in memory give the exact size."
            )
        self._values: list[Any] = [None] * settings.n_calls
        self._stacking = Stacking.of(shape, settings.result_dtype)
        if self._stacking is not None:
            st = self._stacking
            self._array = np.full(st.full_shape(settings.n_calls), st.fill, dtype=st.dtype)

    def writer(self) -> ResultWriter:
        return Discard() if self.settings.pass_task_id else KeepValue()

    def collect(self, outcome: CallOutcome) -> None:
        if self.settings.result_shape is None:
            self._values[outcome.index] = outcome.value
        else:
            self._slot(outcome.index, outcome.value)

    def collect_batch(self, batch: BatchOutcome) -> None:
        """Every call of a batch without failures at once (the run loop's fast path)."""
        if self.settings.result_shape is not None:
            for outcome in batch.outcomes():
                self._slot(outcome.index, outcome.value)
            return
        values = self._values
        for index, value in zip(batch.indices, batch.values, strict=True):
            values[index] = value

    def finish(self) -> Any:
        if self.settings.pass_task_id:
            return None
        if self.settings.result_shape is None:
            return self._values
        if not any(self._values):
            return self._array
        return [self._array, *(v for extras in self._values if extras for v in extras)]

    def _slot(self, index: int, value: Any) -> None:
        """Put the first return value of call ``index`` into its slice of the stacked array;
        keep further return values (a tuple of several) for the flat list ACME returns."""
        st = self._stacking
        assert st is not None
        multi = isinstance(value, tuple) and len(value) > 1
        first = value[0] if multi else value
        try:
            self._array[st.slot(index)] = first
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"call {index} returned a result of shape {np.shape(first)} that does not fit "
                f"`result_shape` {self.settings.result_shape}: {exc}"
            ) from None
        if multi:
            self._values[index] = value[1:]
