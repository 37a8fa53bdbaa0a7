"""Root fixtures, for the tests and for the docstring examples (doctests) alike."""

from __future__ import annotations

import os

import pytest

# SLURM tests run on one machine: keep the scheduler and its workers on loopback (dask-jobqueue
# reads this when a run does not name an interface), so no test traffic uses eth0's address.
os.environ.setdefault("DASK_JOBQUEUE__SLURM__INTERFACE", "lo")


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path, monkeypatch):
    """Runs write ``ACME_*`` folders into the CWD: keep them in the test's tmp dir."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace, tmp_path):
    """Docstring examples may use ``tmp_path`` for their output directories."""
    doctest_namespace["tmp_path"] = tmp_path


pytest_plugins = ["pytester"]
