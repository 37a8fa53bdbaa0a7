"""ACME's ``acme.frontend`` module path of :class:`~acme_core.ParallelMap`.

Examples
--------
>>> from acme.frontend import ParallelMap
>>> ParallelMap.__module__
'acme_core.parallel_map'
"""

from acme_core import ParallelMap

__all__ = ["ParallelMap"]
