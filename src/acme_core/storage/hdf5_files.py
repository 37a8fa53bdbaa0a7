"""``storage="hdf5"``: ACME's default layout, one HDF5 file per call plus a container.

::

    <output_dir>/
      <func>.h5                      container: comp_<i> -> ExternalLink("<func>_payload/<func>_<i>.h5", "/")
      <func>_payload/<func>_<i>.h5   one per call: result_0, result_1, ...

Each call's file is written where the call ran, under a temporary name in the same folder,
then renamed: a payload file is complete or absent, never half-written. With
``result_shape`` the container holds a virtual dataset ``result_0`` over every call's
``result_0`` (further return values as links ``comp_<i>/result_<k>``). A value HDF5 cannot
hold (None, a dict, an object) is pickled instead (ACME's emergency pickling); then the
container is removed and every result file moves up into ``<output_dir>``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..calls import CallOutcome
from .base import Storage, StorageSettings
from .values import as_datasets, cannot_store

log = logging.getLogger("acme_core")


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def atomic_write(final: str, write: Any) -> None:
    """Call ``write(tmp_path)``, then rename ``tmp_path`` to ``final`` (same folder)."""
    folder, name = os.path.split(final)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


@dataclass
class HDF5FileWriter:
    """Worker side: one ``<func>_<i>.h5`` per call."""

    payload_dir: str
    func_name: str
    stack_shape: tuple[int, ...] | None = None  # per-call shape of result_0 when stacking
    dtype: str | None = None

    def write(self, index: int, value: Any) -> str:
        import h5py

        final = os.path.join(self.payload_dir, f"{self.func_name}_{index}.h5")
        datasets = self._datasets(index, value)

        def write_h5(tmp: str) -> None:
            with h5py.File(tmp, "w") as h5:
                for name, data in datasets:
                    h5.create_dataset(name, data=data)

        try:
            atomic_write(final, write_h5)
        except TypeError as exc:
            if not cannot_store(exc) or self.stack_shape is not None:
                raise
            return self._pickle(index, value, exc)
        return final

    def _datasets(self, index: int, value: Any) -> list[tuple[str, Any]]:
        if self.stack_shape is None:
            return as_datasets(value)
        items = list(value) if isinstance(value, tuple) else [value]
        first = np.asarray(items[0], dtype=np.dtype(self.dtype))
        if first.size == int(np.prod(self.stack_shape)) and first.shape != self.stack_shape:
            first = first.reshape(self.stack_shape)
        if first.shape != self.stack_shape:
            raise ValueError(
                f"call {index} returned a first value of shape {np.shape(items[0])}, but "
                f"`result_shape` expects {self.stack_shape} per call."
            )
        return [("result_0", first)] + [(f"result_{k}", v) for k, v in enumerate(items[1:], 1)]

    def _pickle(self, index: int, value: Any, exc: BaseException) -> str:
        final = os.path.join(self.payload_dir, f"{self.func_name}_{index}.pickle")
        wrapped = value if isinstance(value, (list, tuple)) else [value]

        def write_pickle(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                pickle.dump(wrapped, fh)

        atomic_write(final, write_pickle)
        log.warning(f"Could not write results of call {index} to HDF5 ({exc}); they have been "
                    f"pickled instead: {final}")
        return final


class HDF5FileStorage(Storage):
    """ACME's default on-disk layout (see the module docstring).

    Examples
    --------
    >>> import h5py
    >>> from acme_core import ParallelMap
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> with ParallelMap(f, [2, 4, 6, 8], 4, verbose=False,
    ...                  output_dir=str(tmp_path / "run")) as pmap:
    ...     paths = pmap.compute()
    >>> [p.rsplit("/", 1)[1] for p in paths]
    ['f_0.h5', 'f_1.h5', 'f_2.h5', 'f_3.h5']
    >>> h5py.File(pmap.results_container)["comp_0"]["result_0"][()]
    array([18])
    """

    def __init__(self, settings: StorageSettings) -> None:
        super().__init__(settings)
        shape = settings.result_shape
        if shape is not None and any(v is not None and np.isinf(v) for v in shape):
            raise NotImplementedError(
                "`np.inf` in `result_shape` (unlimited dimensions) is not supported yet by "
                "storage 'hdf5'; give the exact size, or use write_worker_results=False."
            )
        assert settings.output_dir is not None
        name = settings.func_name
        self.payload_dir = os.path.join(settings.output_dir, f"{name}_payload")
        self.results_container = os.path.join(settings.output_dir, f"{name}.h5")
        self._receipts: list[str | None] = [None] * settings.n_calls

    def _per_call_shape(self) -> tuple[int, ...] | None:
        shape = self.settings.result_shape
        return None if shape is None else tuple(v for v in shape if v is not None)

    def prepare(self) -> None:
        import h5py

        os.makedirs(self.payload_dir, exist_ok=self.settings.resume)
        if self.settings.resume and os.path.isfile(self.results_container):
            return
        name, n = self.settings.func_name, self.settings.n_calls

        def write_container(tmp: str) -> None:
            with h5py.File(tmp, "w") as h5:
                if self.settings.result_shape is None:
                    for i in range(n):
                        h5[f"comp_{i}"] = h5py.ExternalLink(f"{name}_payload/{name}_{i}.h5", "/")
                else:
                    self._virtual_dataset(h5)

        atomic_write(self.results_container, write_container)

    def _virtual_dataset(self, h5: Any) -> None:
        import h5py

        shape = self.settings.result_shape
        assert shape is not None
        n, name = self.settings.n_calls, self.settings.func_name
        axis = shape.index(None)
        full = tuple(n if v is None else v for v in shape)
        per_call = self._per_call_shape()
        layout = h5py.VirtualLayout(shape=full, dtype=np.dtype(self.settings.result_dtype))
        for i in range(n):
            source = h5py.VirtualSource(f"{name}_payload/{name}_{i}.h5", "result_0", shape=per_call)
            layout[(slice(None),) * axis + (i,)] = source
        h5.create_virtual_dataset("result_0", layout, fillvalue=0)

    def writer(self) -> HDF5FileWriter:
        return HDF5FileWriter(self.payload_dir, self.settings.func_name,
                              self._per_call_shape(), self.settings.result_dtype)

    def collect(self, outcome: CallOutcome) -> None:
        self._receipts[outcome.index] = outcome.value

    def finish(self) -> list[str]:
        paths = [p if p is not None else self._expected(i) for i, p in enumerate(self._receipts)]
        if any(p.endswith(".pickle") for p in paths):
            return self._move_up(paths)
        if self.settings.result_shape is not None:
            self._link_extra_returns()
        return paths

    def _expected(self, index: int) -> str:
        return os.path.join(self.payload_dir, f"{self.settings.func_name}_{index}.h5")

    def _link_extra_returns(self) -> None:
        import h5py

        done = [(i, p) for i, p in enumerate(self._receipts) if p is not None]
        if not done:
            return
        with h5py.File(done[0][1], "r") as first:
            extra = sorted(k for k in first if k != "result_0")
        if not extra:
            return
        name = self.settings.func_name
        with h5py.File(self.results_container, "a") as h5:
            for i, _ in done:
                for key in extra:
                    h5[f"comp_{i}/{key}"] = h5py.ExternalLink(f"{name}_payload/{name}_{i}.h5", key)

    def _move_up(self, paths: list[str]) -> list[str]:
        """ACME's emergency-pickling layout: no container, every file in ``output_dir``."""
        log.warning(f"Results container {self.results_container} has been removed as it would "
                    f"comprise invalid file-links; every result file is now in "
                    f"{self.settings.output_dir}.")
        _remove(self.results_container)
        self.results_container = None
        moved = []
        for path in paths:
            target = os.path.join(os.path.dirname(self.payload_dir), os.path.basename(path))
            if os.path.exists(path):
                shutil.move(path, target)
            moved.append(target)
        shutil.rmtree(self.payload_dir, ignore_errors=True)
        return moved
