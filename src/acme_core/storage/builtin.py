"""acme-core's own storages, registered through the same hook as any outside plugin."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..records import StorageSpec


@hookimpl
def acme_core_storages() -> list[StorageSpec]:
    """The built-in storages (named, not imported: only the one a run uses is imported)."""
    return [
        StorageSpec(
            name="memory",
            factory="acme_core.storage.memory:MemoryStorage",
            description="return values in a list (or one array with result_shape), in call order",
            on_disk=False,
        ),
        StorageSpec(
            name="hdf5",
            factory="acme_core.storage.hdf5_files:HDF5FileStorage",
            description="ACME's layout: one HDF5 file per call plus a container of links",
            on_disk=True,
        ),
        StorageSpec(
            name="hdf5-single",
            factory="acme_core.storage.hdf5_single:HDF5SingleStorage",
            description="ACME's single_file=True: one HDF5 file, written by the parent process",
            on_disk=True,
        ),
        StorageSpec(
            name="hdf5-shards",
            factory="acme_core.storage.hdf5_shards:HDF5ShardStorage",
            description="one HDF5 file per worker process plus a container: O(workers) files",
            on_disk=True,
        ),
        StorageSpec(
            name="pickle",
            factory="acme_core.storage.pickle_files:PickleStorage",
            description="ACME's write_pickle=True: one pickle file per call",
            on_disk=True,
        ),
    ]
