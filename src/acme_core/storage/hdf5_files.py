"""``storage="hdf5"``: ACME's default layout, one HDF5 file per call plus a container.

::

    <output_dir>/
      <func>.h5                      container: comp_<i> -> ExternalLink("<func>_payload/<func>_<i>.h5", "/")
      <func>_payload/<func>_<i>.h5   one per call: result_0, result_1, ...

Each call's file is written where the call ran, under a temporary name in the same folder,
then renamed: a payload file is complete or absent, never half-written. With
``result_shape`` the container holds a virtual dataset ``result_0`` over every call's
``result_0`` (further return values as links ``comp_<i>/result_<k>``). A value HDF5 cannot
hold (None, a dict, an object) is pickled instead (ACME's emergency pickling, named from
the call index: ACME's ``rstrip(".h5")`` made call 15 overwrite call 1); then the container
is removed and every result file moves up into ``<output_dir>``. ``np.inf`` in
``result_shape`` makes the virtual dataset's mappings unlimited along that axis: its extent
is the longest call's and shorter calls read zero-padded (ACME §6.6).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..calls import CallOutcome
from .base import Storage, StorageSettings
from .stacking import Stacking
from .values import as_array, cannot_store, to_arrays

log = logging.getLogger("acme_core")


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def atomic_write(final: str, write: Any) -> None:
    """Call ``write(tmp_path)``, then rename ``tmp_path`` to ``final`` (same folder), so
    ``final`` is complete or absent (a failed write leaves nothing behind).

    Examples
    --------
    >>> from acme_core.storage.hdf5_files import atomic_write
    >>> atomic_write(str(tmp_path / "x.txt"), lambda tmp: open(tmp, "w").write("ok"))
    >>> (tmp_path / "x.txt").read_text()
    'ok'
    """
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
    """Worker side: one ``<func>_<i>.h5`` per call (or ``<func>_<i>.pickle`` when HDF5 has
    no type for the value).

    Examples
    --------
    >>> from acme_core.storage.hdf5_files import HDF5FileWriter
    >>> HDF5FileWriter(str(tmp_path), "f").write(5, 18).endswith("f_5.h5")
    True
    """

    payload_dir: str
    func_name: str
    stacking: Stacking | None = None

    def write(self, index: int, value: Any) -> str:
        """Write call ``index``'s file atomically; return its path."""
        import h5py

        final = os.path.join(self.payload_dir, f"{self.func_name}_{index}.h5")
        try:
            datasets = self._datasets(index, value)
        except TypeError as exc:
            if not cannot_store(exc) or self.stacking is not None:
                raise
            return self._pickle(index, value, exc)

        def write_h5(tmp: str) -> None:
            with h5py.File(tmp, "w") as h5:
                for name, data in datasets:
                    h5.create_dataset(name, data=data)

        atomic_write(final, write_h5)
        return final

    def _datasets(self, index: int, value: Any) -> list[tuple[str, np.ndarray]]:
        if self.stacking is None:
            return to_arrays(value)
        items = list(value) if isinstance(value, tuple) else [value]
        first = self.stacking.first(items[0], index)
        return [("result_0", first)] + [(f"result_{k}", as_array(v))
                                        for k, v in enumerate(items[1:], 1)]

    def _pickle(self, index: int, value: Any, exc: BaseException) -> str:
        # ACME's emergency pickling, named from the index (ACME's ``rstrip(".h5")`` turned
        # ``f_5.h5`` into ``f_.pickle`` and let call 15 overwrite call 1).
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
        assert settings.output_dir is not None
        name = settings.func_name
        self.stacking = Stacking.of(settings.result_shape, settings.result_dtype)
        self.payload_dir = os.path.join(settings.output_dir, f"{name}_payload")
        self.results_container = os.path.join(settings.output_dir, f"{name}.h5")
        self._receipts: list[str | None] = [None] * settings.n_calls

    def prepare(self) -> None:
        os.makedirs(self.payload_dir, exist_ok=self.settings.resume)
        if self.settings.resume and os.path.isfile(self.results_container):
            return
        atomic_write(self.results_container, lambda tmp: self._write_container(tmp, ()))

    def _payload(self, index: int) -> str:
        """A call's file name relative to the container (links are relative, as ACME's)."""
        name = self.settings.func_name
        return f"{name}_payload/{name}_{index}.h5"

    def _write_container(self, path: str, extra: Sequence[tuple[int, str]]) -> None:
        """The container: links ``comp_<i>`` to every call's file, or (stacking) a virtual
        dataset ``result_0`` plus links ``comp_<i>/result_<k>`` for further return values."""
        import h5py

        with h5py.File(path, "w") as h5:
            if self.stacking is None:
                for i in range(self.settings.n_calls):
                    h5[f"comp_{i}"] = h5py.ExternalLink(self._payload(i), "/")
                return
            h5.create_virtual_dataset("result_0", self._layout(), fillvalue=0)
            for i, key in extra:
                h5[f"comp_{i}/{key}"] = h5py.ExternalLink(self._payload(i), key)

    def _layout(self) -> Any:
        """Slice ``i`` of the calls' axis maps to call ``i``'s ``result_0``; along an
        unlimited (``np.inf``) axis the mapping is unlimited too, so the dataset's extent
        is the longest call's and shorter ones read zero-padded (ACME §6.6)."""
        import h5py

        st, n = self.stacking, self.settings.n_calls
        assert st is not None
        if st.unlimited is None:
            source_shape: tuple[int, ...] = tuple(int(v) for v in st.per_call if v is not None)
            layout = h5py.VirtualLayout(shape=st.full_shape(n), dtype=np.dtype(st.dtype))
            for i in range(n):
                layout[st.slot(i)] = h5py.VirtualSource(self._payload(i), "result_0",
                                                        shape=source_shape)
            return layout
        unlimited = slice(0, h5py.h5s.UNLIMITED)
        source_shape = tuple(1 if v is None else v for v in st.per_call)
        source_max = tuple(st.per_call)
        whole = tuple(unlimited if v is None else slice(None) for v in st.per_call)
        layout = h5py.VirtualLayout(shape=st.full_shape(n, 1), dtype=np.dtype(st.dtype),
                                    maxshape=st.max_shape(n))
        for i in range(n):
            source = h5py.VirtualSource(self._payload(i), "result_0", shape=source_shape,
                                        maxshape=source_max)
            target = list(whole)
            target.insert(st.axis, i)
            layout[tuple(target)] = source[whole]
        return layout

    def writer(self) -> HDF5FileWriter:
        return HDF5FileWriter(self.payload_dir, self.settings.func_name, self.stacking)

    def collect(self, outcome: CallOutcome) -> None:
        self._receipts[outcome.index] = outcome.value

    def finish(self) -> list[str]:
        paths = [self._find(i) for i in range(self.settings.n_calls)]
        pickled = [i for i, p in enumerate(paths) if p.endswith(".pickle")]
        if pickled:
            shown = ", ".join(map(str, pickled[:20])) + (" ..." if len(pickled) > 20 else "")
            log.warning(f"Could not write results of {len(pickled)} call(s) to HDF5 (calls "
                        f"{shown}); they have been pickled instead. Return values are most "
                        f"likely not suitable for storage in HDF5 containers.")
            return self._move_up(paths)
        if self.stacking is not None:
            self._link_extra_returns(paths)
        return paths

    def _find(self, index: int) -> str:
        """Call ``index``'s file: its receipt, else what an earlier (resumed) run left."""
        receipt = self._receipts[index]
        if receipt is not None:
            return receipt
        out, name = self.settings.output_dir, self.settings.func_name
        assert out is not None
        expected = os.path.join(self.payload_dir, f"{name}_{index}.h5")
        for candidate in (expected, expected[:-3] + ".pickle",
                          os.path.join(out, f"{name}_{index}.h5"),
                          os.path.join(out, f"{name}_{index}.pickle")):
            if os.path.exists(candidate):
                return candidate
        return expected

    def _link_extra_returns(self, paths: list[str]) -> None:
        """Further return values (``result_1``...) as links ``comp_<i>/result_<k>`` (ACME
        detects them from the first call's file); the container is rewritten atomically."""
        import h5py

        done = [(i, p) for i, p in enumerate(paths) if os.path.exists(p)]
        if not done:
            return
        with h5py.File(done[0][1], "r") as first:
            keys = sorted((k for k in first if k != "result_0"), key=lambda k: int(k[7:]))
        if keys:
            extra = [(i, key) for i, _ in done for key in keys]
            atomic_write(self.results_container, lambda tmp: self._write_container(tmp, extra))

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
            if os.path.exists(path) and path != target:
                shutil.move(path, target)
            moved.append(target)
        shutil.rmtree(self.payload_dir, ignore_errors=True)
        return moved
