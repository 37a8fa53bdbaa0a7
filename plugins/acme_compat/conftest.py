"""The compat package's doctests run only where it is installed (``nox -s syncopy`` and
``nox -s acme_tests``): it is never installed into the test environment, because it
owns the import name ``acme`` (as esi-acme and certbot's acme do)."""

import importlib.util

_spec = importlib.util.find_spec("acme")
collect_ignore_glob = [] if _spec is not None and "acme_compat" in str(_spec.origin) else ["src/*"]
