"""The conformance kit run against the backends of this repository."""

from __future__ import annotations

from acme_core.testing import BackendConformance


class TestJoblib(BackendConformance):
    backend = "joblib"


class TestThreads(BackendConformance):
    backend = "threads"


class TestFuturesExample(BackendConformance):
    """The example outside plugin of docs/examples/acme_futures."""

    backend = "futures"
