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


@pytest.fixture(scope="session")
def slurm():
    """A usable SLURM cluster (``shared/slurm/start-slurm.sh``), or skip; with
    ``REQUIRE_SLURM=1`` (CI) a missing cluster fails instead. Shared by every SLURM test
    module."""
    import os
    import shutil
    import subprocess

    ok = False
    if shutil.which("sinfo"):
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                           timeout=30)
        ok = r.returncode == 0 and any(s in r.stdout for s in ("idle", "mix", "alloc"))
    if not ok:
        if os.environ.get("REQUIRE_SLURM") == "1":
            pytest.fail("REQUIRE_SLURM=1 but no usable SLURM cluster (run start-slurm.sh)")
        pytest.skip("no SLURM cluster available")
    return {"default_partition": "8GBS", "slots": 8}


@pytest.fixture
def no_dask_client_left(request):
    """Fail a test that leaves a dask client running, after stopping it; the one copy of
    this check (a module applies it with ``pytestmark``). A test class whose tests share one
    cluster on purpose says so with ``shares_a_dask_client = True``."""
    yield
    if not getattr(request.node.cls, "shares_a_dask_client", False):
        from acme_dask import cluster_cleanup
        from acme_dask.setup import running_client

        client = running_client()
        if client is not None:
            cluster_cleanup(client)
            pytest.fail(f"a dask client was left running: {client}")


@pytest.fixture
def sigmod(tmp_path):
    """A module that installs a SIGINT handler when imported (dask-jobqueue does), on
    sys.path; workers must import it in their main thread."""
    import sys

    from tests.helpers.modules import import_fresh

    module = import_fresh(tmp_path, "sigmod", """
        import signal
        import sys

        signal.signal(signal.SIGINT, lambda *_: sys.exit())


        def double(x):
            return 2 * x
    """)
    yield module
    sys.path.remove(str(tmp_path))
    sys.modules.pop("sigmod", None)



@pytest.fixture
def user_client():
    """A dask client the user made beforehand (ACME: ``local_cluster_setup(n_workers=2)``),
    stopped afterwards unless the test stopped it."""
    from acme_dask import cluster_cleanup, local_cluster_setup

    client = local_cluster_setup(n_workers=2, interactive=False)
    yield client
    if client.status == "running":
        cluster_cleanup(client)
