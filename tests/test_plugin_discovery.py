"""Backends and storages are found by name through their plugins: unknown names list the
known ones, ``acme_core plugins`` lists them with their distributions, ``ACME_CORE_PLUGINS``
selects them, and with no backend installed the error says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

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


def test_entry_points_are_the_ones_importlib_metadata_finds():
    from importlib import metadata

    from acme_core.entry_points import entry_points

    def described(eps):
        return sorted((ep.name, ep.value, ep.dist.name, ep.dist.version) for ep in eps)

    ours = described(entry_points("acme_core"))
    assert ours == described(metadata.entry_points(group="acme_core"))
    assert ("joblib", "acme_joblib.plugin", "acme-joblib") in [e[:3] for e in ours]


def _fake_distribution(folder, name, version, entry_points_text, module_text):
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points_text)
    (folder / f"{name}.py").write_text(module_text)


def test_a_plugin_installed_on_the_path_loads_and_a_shadowed_copy_does_not(tmp_path):
    plugin = """
        from acme_core import StorageSpec, hookimpl

        @hookimpl
        def acme_core_storages():
            return [StorageSpec(name="{storage}", factory="acme_core.storage.memory:MemoryStorage",
                                on_disk=False)]
    """
    first, second = tmp_path / "first", tmp_path / "second"
    entry = "[console_scripts]\nx = y:z\n\n[acme_core]\nfakeplug = fakeplug [extra]\n"
    _fake_distribution(first, "fakeplug", "1.0", entry,
                       textwrap.dedent(plugin.format(storage="fake-first")))
    _fake_distribution(second, "fakeplug", "2.0", entry,
                       textwrap.dedent(plugin.format(storage="fake-second")))
    code = """
        from acme_core import ParallelMap, plugins
        found = plugins.storages()
        print(sorted(n for n in found if n.startswith("fake")), found["fake-first"].version)
        print(ParallelMap(abs, [-1, -2], storage="fake-first", verbose=False).compute())
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(first), str(second)]),
           "ACME_CORE_PLUGINS": "fakeplug,joblib"}
    out = run_code(code, tmp_path, env)
    assert out.stdout.splitlines() == ["['fake-first'] 1.0", "[1, 2]"], out.stderr


def test_a_default_run_imports_no_other_backend_or_storage(tmp_path):
    # loading the plugins names every backend and storage without importing them: a run
    # imports only the ones it uses (and not importlib.metadata, a tenth of a cold start)
    code = """
        import sys
        from acme_core import ParallelMap
        assert ParallelMap(abs, [-1, -2], write_worker_results=False, verbose=False,
                           backend="joblib").compute() == [1, 2]
        loaded = [m for m in ("acme_dask.executor", "acme_slurm.executor",
                              "acme_slurm_esi.executor", "acme_core.storage.hdf5_shards",
                              "acme_core.storage.hdf5_files", "importlib.metadata",
                              "acme_joblib.executor", "acme_core.storage.memory")
                  if m in sys.modules]
        print(loaded)
    """
    out = run_code(code, tmp_path)
    assert out.stdout.strip() == "['acme_joblib.executor', 'acme_core.storage.memory']", (
        out.stdout + out.stderr)
