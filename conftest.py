"""Root fixtures, for the tests and for the docstring examples (doctests) alike."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path, monkeypatch):
    """Runs write ``ACME_*`` folders into the CWD: keep them in the test's tmp dir."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace, tmp_path):
    """Docstring examples may use ``tmp_path`` for their output directories."""
    doctest_namespace["tmp_path"] = tmp_path


pytest_plugins = ["pytester"]
