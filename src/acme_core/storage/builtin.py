"""acme-core's own storages, registered through the same hook as any outside plugin."""

from __future__ import annotations

from ..hookspecs import StorageSpec, hookimpl


@hookimpl
def acme_core_storages() -> list[StorageSpec]:
    """The built-in storages."""
    from .hdf5_files import HDF5FileStorage
    from .memory import MemoryStorage

    return [
        StorageSpec(
            name="memory",
            factory=MemoryStorage,
            description="return values in a list (or one array with result_shape), in call order",
            on_disk=False,
        ),
        StorageSpec(
            name="hdf5",
            factory=HDF5FileStorage,
            description="ACME's layout: one HDF5 file per call plus a container of links",
            on_disk=True,
        ),
    ]
