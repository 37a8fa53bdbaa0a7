"""The pytest plugin of the conformance kit (entry point ``pytest11``: ``acme_core``)."""

from __future__ import annotations

import pytest

from .. import plugins


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "acme_capability(name): skip unless the backend declares this capability")
    config.addinivalue_line(
        "markers", "acme_own_workers: the test's runs must start workers of their own, so a "
                   "class that shares workers across tests stops them first")


@pytest.fixture
def acme_backend_spec(request: pytest.FixtureRequest):
    """The :class:`~acme_core.records.ExecutorSpec` of the class's ``backend``."""
    name = request.cls.backend
    if not name:
        pytest.fail("set `backend = '<name>'` on your BackendConformance subclass")
    return plugins.get_executor_spec(name)


@pytest.fixture(autouse=True)
def _acme_capabilities(request: pytest.FixtureRequest) -> None:
    """Skip a conformance test whose capability the backend does not declare."""
    marker = request.node.get_closest_marker("acme_capability")
    if marker is None or getattr(request.cls, "backend", None) is None:
        return
    spec = plugins.get_executor_spec(request.cls.backend)
    if marker.args[0] not in spec.capabilities:
        pytest.skip(f"backend {spec.name!r} does not declare capability {marker.args[0]!r}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "acme_storage" in metafunc.fixturenames:
        metafunc.parametrize("acme_storage", sorted(plugins.storages()))
