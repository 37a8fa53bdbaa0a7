"""``storage="pickle"`` (``write_pickle=True``, as ACME): one pickle per call.

::

    <output_dir>/<func>_<i>.pickle     the raw return value of call i (a tuple stays a tuple)

No container (``results_container`` is None); ``compute()`` returns the N paths in call
order. Each file is written under a temporary name in the same folder and renamed, so it is
complete or absent. ``result_shape`` does not apply (ParallelMap warns and ignores it).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..records import BatchOutcome, CallOutcome, StorageSettings, StoredResults
from ..result_paths import ResultPaths, result_paths
from .atomic import atomic_write, remove_temporaries
from .base import Storage
from .readback import pickle_complete, read_files

__all__ = ["PickleStorage", "PickleWriter", "pickle_complete"]


@dataclass
class PickleWriter:
    """Worker side: pickle call ``index``'s return value to ``<func>_<index>.pickle``.

    Examples
    --------
    >>> from acme_core.storage.pickle_files import PickleWriter
    >>> PickleWriter(str(tmp_path), "f").write(3, {"a": 1}).endswith("f_3.pickle")
    True
    """

    output_dir: str
    func_name: str

    def write(self, index: int, value: Any) -> str:
        """Write the file atomically; return its path."""
        final = os.path.join(self.output_dir, f"{self.func_name}_{index}.pickle")

        def dump(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                pickle.dump(value, fh)

        atomic_write(final, dump)
        return final


class PickleStorage(Storage):
    """One pickle file per call, directly in ``output_dir`` (ACME's ``write_pickle=True``).

    Examples
    --------
    >>> import pickle
    >>> from acme_core import ParallelMap
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> with ParallelMap(f, [2, 4], 4, write_pickle=True, verbose=False,
    ...                  output_dir=str(tmp_path / "pk")) as pmap:
    ...     paths = pmap.compute()
    >>> [p.rsplit("/", 1)[1] for p in paths], pmap.results_container
    (['f_0.pickle', 'f_1.pickle'], None)
    >>> with open(paths[1], "rb") as fh:
    ...     pickle.load(fh)
    24
    """

    results_container = None

    def __init__(self, settings: StorageSettings) -> None:
        super().__init__(settings)
        assert settings.output_dir is not None

    def _path(self, index: int) -> str:
        assert self.settings.output_dir is not None
        return os.path.join(self.settings.output_dir, f"{self.settings.func_name}_{index}.pickle")

    def writer(self) -> PickleWriter:
        assert self.settings.output_dir is not None
        return PickleWriter(self.settings.output_dir, self.settings.func_name)

    def prepare(self) -> None:
        assert self.settings.output_dir is not None
        remove_temporaries(self.settings.output_dir, f"{self.settings.func_name}_*.pickle")

    def collect(self, outcome: CallOutcome) -> None:
        """Nothing to do: the file is written where the call ran."""

    def collect_batch(self, batch: BatchOutcome) -> None:
        """Nothing to do for a whole batch either."""

    def damaged(self, indices: Iterable[int]) -> set[int]:
        """Calls of ``indices`` whose pickle is missing or truncated (:func:`pickle_complete`).

        Examples
        --------
        >>> from acme_core.storage.base import StorageSettings
        >>> from acme_core.storage.pickle_files import PickleStorage
        >>> storage = PickleStorage(StorageSettings("f", 2, str(tmp_path)))
        >>> _ = storage.writer().write(0, [1, 2])
        >>> storage.damaged([0, 1])
        {1}
        """
        return {i for i in indices if not pickle_complete(self._path(i))}

    def finish(self) -> list[str] | ResultPaths:
        assert self.settings.output_dir is not None
        return result_paths(self.settings.output_dir, self.settings.func_name,
                            self.settings.n_calls, ".pickle")

    @classmethod
    def load(cls, settings: StorageSettings) -> StoredResults:
        """Every call's pickle, unpickled (a tuple stays a tuple)."""
        assert settings.output_dir is not None
        return read_files(settings.output_dir, settings.func_name, settings.n_calls,
                          wrapped=False)
