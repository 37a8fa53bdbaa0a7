"""The conformance kit: the behaviours every acme-core backend must show.

An executor author runs it against their backend with a test module of three lines::

    # tests/test_conformance.py
    from acme_core.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "mine"

The pytest plugin (entry point ``pytest11``, loaded automatically when acme-core is
installed) adds the fixtures the suite uses. Tests a backend's declared capabilities rule
out (``ExecutorSpec.capabilities``: "kill-worker", "cancel", "processes") are skipped.

Slow-starting backends (SLURM) may start their workers once per test class and let the
runs attach to them; tests marked ``acme_own_workers`` must then get fresh ones, and
``live_workers()`` says what "left behind" means for workers that are not child processes
(see :class:`BackendConformance`).
"""

from .suites import BackendConformance

__all__ = ["BackendConformance"]
