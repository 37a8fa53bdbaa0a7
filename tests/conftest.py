"""Fixtures for the plugin machinery."""

from __future__ import annotations

import pytest

from acme_core import plugins


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
