"""Shared fixtures: every test runs in its own working directory."""

from __future__ import annotations

import os

import pytest

from acme_core import plugins


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path, monkeypatch):
    """Runs write ``ACME_*`` folders into the CWD: keep them in the test's tmp dir."""
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def fresh_plugins(monkeypatch):
    """A plugin manager loaded anew for this test, and again afterwards."""
    plugins.reset_plugin_manager()
    yield plugins
    plugins.reset_plugin_manager()


@pytest.fixture
def register(fresh_plugins):
    """Register an extra plugin object (a class or module with @hookimpl functions)."""
    names = []

    def _register(obj, name):
        fresh_plugins.get_plugin_manager().register(obj, name=name)
        names.append(name)
        return obj

    yield _register
    for name in names:
        pm = fresh_plugins.get_plugin_manager()
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)


def pytest_collection_modifyitems(config, items):
    """Doctests in src/ write into tmp_path like every other test."""
    for item in items:
        if isinstance(item, pytest.DoctestItem):
            item.add_marker(pytest.mark.usefixtures("_doctest_namespace"))


@pytest.fixture
def _doctest_namespace(doctest_namespace, tmp_path):
    doctest_namespace["tmp_path"] = tmp_path
    doctest_namespace["os"] = os
