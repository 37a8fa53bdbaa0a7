"""acme-core: run a function concurrently over many inputs, keep every result safe on disk.

Examples
--------
>>> from acme_core import ParallelMap
>>> def f(x, y, z=3):
...     return (x + y) * z
>>> ParallelMap(f, [2, 4, 6, 8], 4, write_worker_results=False,
...             verbose=False).compute()
[18, 24, 30, 36]
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    ArgumentMismatchError,
    ManifestError,
    MissingResultsWarning,
    ParallelComputationError,
    PluginError,
    ResultShapeError,
    RunLockedError,
    UnknownKeywordError,
    UnpicklableError,
)
from .mainguard import MainGuardError
from .records import AutoClaim, ExecutorSpec, StorageSpec

if TYPE_CHECKING:  # imported on first use: worker processes only need acme_core.calls
    from .hookspecs import hookimpl
    from .parallel_map import ParallelMap
    from .reading import load
    from .replays import replay
    from .seeding import rng

_LAZY = {"ParallelMap": "parallel_map", "load": "reading", "replay": "replays", "rng": "seeding",
         "hookimpl": "hookspecs"}  # hookspecs imports pluggy, which workers never need


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from .entry_points import version

        try:
            globals()[name] = version("acme-core")
        except LookupError:  # pragma: no cover - running from a source tree
            globals()[name] = "0+unknown"
        return globals()[name]
    raise AttributeError(f"module 'acme_core' has no attribute {name!r}")


__all__ = [
    "ArgumentMismatchError",
    "AutoClaim",
    "ExecutorSpec",
    "MainGuardError",
    "ManifestError",
    "MissingResultsWarning",
    "ParallelComputationError",
    "ParallelMap",
    "PluginError",
    "ResultShapeError",
    "RunLockedError",
    "StorageSpec",
    "UnknownKeywordError",
    "UnpicklableError",
    "__version__",
    "hookimpl",
    "load",
    "replay",
    "rng",
]
