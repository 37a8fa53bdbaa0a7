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
the call index: ACME's ``rstrip(".h5")`` made call 15 overwrite call 1), also with
``result_shape`` (as ACME); then the container is removed and every result file moves up
into ``<output_dir>``. The virtual dataset reads NaN for a call without a file
(floating-point dtypes; see ``acme_core.storage.virtual``). ``np.inf`` in ``result_shape``
makes its mappings unlimited along that axis while calls run; when the run finishes the
container is rebuilt from the calls' shapes: its extent is the longest call's and shorter
calls read zero-padded, as in ACME.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..records import BatchOutcome, CallOutcome, StorageSettings, StoredResults
from ..result_paths import ResultPaths, result_paths
from .atomic import BatchFiles, atomic_write, remove, remove_temporaries
from .base import Storage
from .links import link_all
from .readback import pickle_complete, read_container, read_files
from .stacking import Stacking, arrays_of
from .values import cannot_store
from .virtual import create_stacked, layout_of_files, layout_of_known

log = logging.getLogger("acme_core")

#: Calls from which a new run suggests ``hdf5-shards``: a file per call is written and
#: synced on its own, and 10^4 of them took 4.8 s on this project's machine against
#: 0.04 s for the same results in ``hdf5-shards`` (``benchmarks/scaling.py``).
MANY_FILES = 10_000


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
    #: per thread (a threads backend runs batches side by side on one writer): the files
    #: of the batch it is running, between begin_batch and end_batch
    _local: threading.local = field(default_factory=threading.local, repr=False,
                                    compare=False)

    def begin_batch(self) -> None:
        """Until :meth:`end_batch`, this thread's files are published together at the
        batch's end (their fsyncs overlap the next calls) instead of one by one."""
        self._local.batch = BatchFiles()

    def end_batch(self, indices: Sequence[int]) -> dict[int, BaseException]:
        """Publish this thread's batch of files (durable when this returns); the calls whose
        file could not be made durable, with the error."""
        batch = getattr(self._local, "batch", None)
        self._local.batch = None
        return batch.publish() if batch is not None else {}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _local=threading.local())

    def _atomic(self, index: int, final: str, write: Any) -> None:
        batch = getattr(self._local, "batch", None)
        if batch is None:
            atomic_write(final, write)
        else:
            batch.write(index, final, write)

    def write(self, index: int, value: Any) -> str:
        """Write call ``index``'s file atomically; return its path (inside a batch the file
        gets that name at the batch's end)."""
        import h5py

        final = os.path.join(self.payload_dir, f"{self.func_name}_{index}.h5")
        try:
            datasets = arrays_of(value, self.stacking, index)
        except TypeError as exc:
            if not cannot_store(exc):
                raise
            return self._pickle(index, value, exc)

        def write_h5(tmp: str) -> None:
            with h5py.File(tmp, "w") as h5:
                for name, data in datasets:
                    h5.create_dataset(name, data=data)

        self._atomic(index, final, write_h5)
        return final

    def _pickle(self, index: int, value: Any, exc: BaseException) -> str:
        # ACME's emergency pickling, named from the index (ACME's ``rstrip(".h5")`` turned
        # ``f_5.h5`` into ``f_.pickle`` and let call 15 overwrite call 1).
        final = os.path.join(self.payload_dir, f"{self.func_name}_{index}.pickle")
        wrapped = value if isinstance(value, (list, tuple)) else [value]

        def write_pickle(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                pickle.dump(wrapped, fh)

        self._atomic(index, final, write_pickle)
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
        # which calls this run stored, and the paths of those not at their usual place
        # (pickled): a byte per call, not a path string per call
        self._stored = np.zeros(settings.n_calls, dtype=bool)
        self._other: dict[int, str] = {}
        self._prefix = os.path.join(self.payload_dir, f"{name}_")

    def prepare(self) -> None:
        os.makedirs(self.payload_dir, exist_ok=self.settings.resume)
        n = self.settings.n_calls
        if n >= MANY_FILES and not self.settings.resume:
            log.info(f"{n} calls write {n} result files, one per call, each synced to disk on "
                     f"its own (slow on shared file systems, and as many inodes of a quota); "
                     f"storage='hdf5-shards' keeps small results in one file per worker "
                     f"process.")
        remove_temporaries(self.payload_dir, f"{self.settings.func_name}_*")
        if self.settings.resume and os.path.isfile(self.results_container):
            return
        atomic_write(self.results_container, lambda tmp: self._write_container(tmp, {}))

    def _payload(self, index: int) -> str:
        """A call's file name relative to the container (links are relative, as ACME's)."""
        name = self.settings.func_name
        return f"{name}_payload/{name}_{index}.h5"

    def _write_container(self, path: str, done: dict[int, dict[str, tuple[int, ...]]]) -> None:
        """The container: links ``comp_<i>`` to every call's file, or (stacking) a virtual
        dataset ``result_0`` plus links ``comp_<i>/result_<k>`` for further return values.
        ``done``: call index -> its datasets' shapes (empty before any call ran)."""
        import h5py

        st, n = self.stacking, self.settings.n_calls
        with h5py.File(path, "w") as h5:
            if st is None:
                link_all(h5, ((f"comp_{i}", self._payload(i), "/") for i in range(n)))
                return
            if st.unlimited is None or not done:
                create_stacked(h5, st, layout_of_files(st, n, self._payload))
            else:  # shapes known: the extent is the longest call's, padding reads 0
                sources = {i: (self._payload(i), "result_0", shapes["result_0"])
                           for i, shapes in done.items()}
                create_stacked(h5, st, layout_of_known(st, n, sources),
                               {i: shapes["result_0"] for i, shapes in done.items()})
            link_all(h5, ((f"comp_{i}/{key}", self._payload(i), key)
                          for i, shapes in sorted(done.items())
                          for key in sorted(shapes, key=lambda k: int(k[7:]))[1:]))

    def writer(self) -> HDF5FileWriter:
        return HDF5FileWriter(self.payload_dir, self.settings.func_name, self.stacking)

    def collect(self, outcome: CallOutcome) -> None:
        self._stored[outcome.index] = True
        if outcome.value != self._expected(outcome.index):  # pickled instead, or moved
            self._other[outcome.index] = outcome.value

    def collect_batch(self, batch: BatchOutcome) -> None:
        """:meth:`collect` for every call of a batch without failures."""
        self._stored[list(batch.indices)] = True
        prefix = self._prefix
        for index, path in zip(batch.indices, batch.values, strict=True):
            if path != f"{prefix}{index}.h5":  # pickled instead, or moved to its outFile
                self._other[index] = path

    @classmethod
    def load(cls, settings: StorageSettings) -> StoredResults:
        """The container's view when it exists, else every call's file (emergency
        pickling moved them into ``output_dir``)."""
        assert settings.output_dir is not None
        container = os.path.join(settings.output_dir, f"{settings.func_name}.h5")
        if os.path.isfile(container):
            return read_container(container, settings.n_calls)
        return read_files(settings.output_dir, settings.func_name, settings.n_calls,
                          wrapped=True)

    def damaged(self, indices: Iterable[int]) -> set[int]:
        """Calls of ``indices`` whose file is missing or does not open (truncated).

        Examples
        --------
        >>> from acme_core.storage.base import StorageSettings
        >>> from acme_core.storage.hdf5_files import HDF5FileStorage
        >>> storage = HDF5FileStorage(StorageSettings("f", 3, str(tmp_path / "o")))
        >>> storage.prepare()
        >>> _ = storage.writer().write(1, 7.0)
        >>> sorted(storage.damaged([0, 1, 2]))
        [0, 2]
        """
        return {i for i in indices if not _complete(self._find(i))}

    def finish(self) -> list[str] | ResultPaths:
        other = dict(self._other)
        for index in np.flatnonzero(~self._stored).tolist():  # resumed or failed calls
            path = self._find(index)
            if path != self._expected(index):
                other[index] = path
        paths = ResultPaths(self.payload_dir, self.settings.func_name, self.settings.n_calls,
                            ".h5", other)
        pickled = sorted(i for i, p in other.items() if p.endswith(".pickle"))
        if pickled:
            shown = ", ".join(map(str, pickled[:20])) + (" ..." if len(pickled) > 20 else "")
            log.warning(f"Could not write results of {len(pickled)} call(s) to HDF5 (calls "
                        f"{shown}); they have been pickled instead. Return values are most "
                        f"likely not suitable for storage in HDF5 containers.")
            return self._move_up(list(paths))
        if self.stacking is not None:
            self._rebuild_container(paths)
        return result_paths(self.payload_dir, self.settings.func_name, self.settings.n_calls,
                            ".h5", other)

    def _expected(self, index: int) -> str:
        return f"{self._prefix}{index}.h5"

    def _find(self, index: int) -> str:
        """Call ``index``'s file: where this run stored it, else what an earlier (resumed)
        run left."""
        expected = self._expected(index)
        if self._stored[index]:
            return self._other.get(index, expected)
        out, name = self.settings.output_dir, self.settings.func_name
        assert out is not None
        for candidate in (expected, expected[:-3] + ".pickle",
                          os.path.join(out, f"{name}_{index}.h5"),
                          os.path.join(out, f"{name}_{index}.pickle")):
            if os.path.exists(candidate):
                return candidate
        return expected

    def _rebuild_container(self, paths: Sequence[str]) -> None:
        """Further return values (``result_1``...) as links ``comp_<i>/result_<k>`` (ACME
        detects them from the first call's file), and along an unlimited axis the calls'
        own shapes; the container is rewritten atomically."""
        import h5py

        done = [(i, p) for i, p in enumerate(paths) if os.path.exists(p)]
        if not done:
            return
        assert self.stacking is not None
        shapes: dict[int, dict[str, tuple[int, ...]]] = {}
        if self.stacking.unlimited is not None:
            for i, path in done:
                with h5py.File(path, "r") as h5:
                    shapes[i] = {k: h5[k].shape for k in h5}
        else:
            with h5py.File(done[0][1], "r") as first:
                keys = {k: first[k].shape for k in first}
            if len(keys) == 1:
                return
            shapes = dict.fromkeys((i for i, _ in done), keys)
        atomic_write(self.results_container, lambda tmp: self._write_container(tmp, shapes))

    def _move_up(self, paths: list[str]) -> list[str]:
        """ACME's emergency-pickling layout: no container, every file in ``output_dir``."""
        log.warning(f"Results container {self.results_container} has been removed as it would "
                    f"comprise invalid file-links; every result file is now in "
                    f"{self.settings.output_dir}.")
        remove(self.results_container)
        self.results_container = None
        moved = []
        for path in paths:
            target = os.path.join(os.path.dirname(self.payload_dir), os.path.basename(path))
            if os.path.exists(path) and path != target:
                shutil.move(path, target)
            moved.append(target)
        shutil.rmtree(self.payload_dir, ignore_errors=True)
        return moved


def _complete(path: str) -> bool:
    """True when ``path`` holds a complete result: a pickle whose ending is intact, or an
    HDF5 file that opens (HDF5 refuses a file shorter than the end it recorded)."""
    if path.endswith(".pickle"):
        return pickle_complete(path)
    import h5py

    try:
        with h5py.File(path, "r", locking=False) as h5:
            return "result_0" in h5
    except (OSError, ValueError):
        return False
