"""A package's public names imported on first use (PEP 562 ``__getattr__``).

acme-core imports every installed plugin's entry-point module for every ``ParallelMap``, to
learn the backend and storage names. A plugin package whose ``__init__`` imports its
executor, dask or a scheduler's client makes every run pay for them; with its names listed
here they are imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package`` that imports ``name`` from the submodule
    ``names[name]`` on first use (and keeps it, so the next lookup is a plain one).

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping of str to str
        Public name to the submodule (relative to the package) that defines it.

    Returns
    -------
    callable
        To assign as the package's ``__getattr__``.

    Examples
    --------
    In ``my_plugin/__init__.py``::

        from acme_core.lazy_exports import lazy_exports

        __all__ = ["MyExecutor"]
        __getattr__ = lazy_exports(__name__, {"MyExecutor": "executor"})

    >>> from acme_core.lazy_exports import lazy_exports
    >>> getter = lazy_exports("acme_core", {"ParallelMap": "parallel_map"})
    >>> getter("ParallelMap").__name__
    'ParallelMap'
    """
    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{names[name]}", package), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
