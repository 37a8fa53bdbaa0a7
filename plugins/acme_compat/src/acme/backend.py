"""ACME's ``acme.backend`` module path of ``ACMEdaemon`` (``pmap.daemon``'s class).

Examples
--------
>>> from acme.backend import ACMEdaemon
>>> ACMEdaemon("not a ParallelMap")
Traceback (most recent call last):
...
TypeError: <ACMEdaemon> `pmap` has to be a `ParallelMap` instance, not <class 'str'>
"""

from acme_core.acme_attributes import Daemon as ACMEdaemon

__all__ = ["ACMEdaemon"]
