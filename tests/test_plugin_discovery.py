"""Backends and storages are found by name through their plugins: unknown names list the
known ones, ``acme_core plugins`` lists them with their distributions, ``ACME_CORE_PLUGINS``
selects them, and with no backend installed the error says what to install."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from acme_core import ParallelMap
from tests.helpers.funcs import f
from tests.helpers.scripts import run_code


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown backend 'nope'.*'joblib'.*'threads'"):
        ParallelMap(f, [1, 2], 3, backend="nope")


def test_unknown_storage_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown storage 'nope'.*'hdf5'.*'memory'"):
        ParallelMap(f, [1, 2], 3, storage="nope")


def test_plugins_command_lists_backends_and_storages(tmp_path):
    out = subprocess.run([sys.executable, "-m", "acme_core", "plugins"], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    for name, dist in (("joblib", "acme-joblib"), ("threads", "acme-threads-test-plugin"),
                       ("memory", "acme-core"), ("hdf5", "acme-core")):
        assert any(line.split()[:2] == [name, dist] for line in out.splitlines()), out


def test_plugin_selection_by_environment(tmp_path):
    code = """
        from acme_core import plugins
        print(sorted(plugins.executors()), sorted(plugins.storages()))
    """
    env = {**os.environ, "ACME_CORE_PLUGINS": ""}
    # built-ins always load: the storages left with no plugin selected
    nothing = run_code(code, tmp_path, env).stdout.strip()
    assert nothing.startswith("[] [")
    builtin_storages = nothing[3:]
    assert "'hdf5'" in builtin_storages and "'memory'" in builtin_storages
    env["ACME_CORE_PLUGINS"] = "threads"
    assert run_code(code, tmp_path, env).stdout.strip() == f"['threads'] {builtin_storages}"
    # without the variable every installed plugin loads, outside storages (acme-npy) too
    executors, storages = run_code(code, tmp_path).stdout.strip().split("] [")
    assert "'threads'" in executors and "'joblib'" in executors
    assert set(builtin_storages.strip("[]").split(", ")) < set(storages.strip("[]").split(", "))


def test_without_any_backend_the_error_says_how_to_install_one(tmp_path):
    code = """
        from acme_core import ParallelMap
        try:
            ParallelMap(abs, [1, 2])
        except Exception as exc:
            print(type(exc).__name__, exc)
    """
    out = run_code(code, tmp_path, {**os.environ, "ACME_CORE_PLUGINS": ""}).stdout
    assert out.startswith("PluginError") and "pip install acme-joblib" in out
    assert not list(tmp_path.glob("ACME_*"))
