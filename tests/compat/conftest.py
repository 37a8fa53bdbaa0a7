"""The SyNCoPy and ACME-test sessions' files (``nox -s syncopy``, ``nox -s acme_tests``).

They need SyNCoPy and the ``acme`` compat package, which the test environment never has
(the compat package conflicts with esi-acme; SyNCoPy pins numpy<2): outside those sessions
nothing here is collected.
"""

import importlib.util

_have = all(importlib.util.find_spec(name) is not None for name in ("syncopy", "acme"))
collect_ignore_glob = [] if _have else ["*.py"]
