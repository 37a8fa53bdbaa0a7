"""Storage ``"npy"``: one NumPy ``.npy`` file per call, written where the call ran and
read back by ``acme_core.load`` through :meth:`NpyStorage.load`.

Examples
--------
>>> from acme_core import ParallelMap, load
>>> out = str(tmp_path / "npy-run")
>>> paths = ParallelMap(abs, [-1, -2], storage="npy", output_dir=out, verbose=False).compute()
>>> [os.path.basename(p) for p in paths], [int(v) for v in load(out)]
(['0.npy', '1.npy'], [1, 2])
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from acme_core import StorageSpec, hookimpl
from acme_core.records import StorageSettings, StoredResults
from acme_core.storage.atomic import atomic_write
from acme_core.storage.base import Storage


def _path(settings: StorageSettings, index: int) -> str:
    assert settings.output_dir is not None
    return os.path.join(settings.output_dir, f"{settings.func_name}_npy", f"{index}.npy")


@dataclass
class NpyWriter:
    """Worker side: call ``index``'s value as ``<index>.npy`` (complete or absent)."""

    settings: StorageSettings

    def write(self, index: int, value: Any) -> str:
        def save(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(value), allow_pickle=False)

        atomic_write(_path(self.settings, index), save)
        return _path(self.settings, index)


class NpyStorage(Storage):
    """Parent side: make the folder, return the paths, say which files are gone."""

    def prepare(self) -> None:
        os.makedirs(os.path.dirname(_path(self.settings, 0)), exist_ok=self.settings.resume)

    def writer(self) -> NpyWriter:
        return NpyWriter(self.settings)

    def collect(self, outcome: Any) -> None:
        """Nothing to do: the file was written where the call ran."""

    def finish(self) -> list[str]:
        return [_path(self.settings, i) for i in range(self.settings.n_calls)]

    def damaged(self, indices: Iterable[int]) -> set[int]:
        return {i for i in indices if not os.path.isfile(_path(self.settings, i))}

    @classmethod
    def load(cls, settings: StorageSettings) -> StoredResults:
        paths = [_path(settings, i) for i in range(settings.n_calls)]
        values = [np.load(p) if os.path.isfile(p) else None for p in paths]
        return StoredResults(values, [i for i, v in enumerate(values) if v is None])


@hookimpl
def acme_core_storages() -> list[StorageSpec]:
    return [StorageSpec(name="npy", factory=NpyStorage, on_disk=True,
                        description="one NumPy .npy file per call (example plugin)")]
