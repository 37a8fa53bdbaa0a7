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

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    ArgumentMismatchError,
    ParallelComputationError,
    PluginError,
    UnknownKeywordError,
)
from .hookspecs import AutoClaim, ExecutorSpec, StorageSpec, hookimpl
from .load import load
from .parallel_map import ParallelMap

try:
    __version__ = version("acme-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ArgumentMismatchError",
    "AutoClaim",
    "ExecutorSpec",
    "ParallelComputationError",
    "ParallelMap",
    "PluginError",
    "StorageSpec",
    "UnknownKeywordError",
    "__version__",
    "hookimpl",
    "load",
]
