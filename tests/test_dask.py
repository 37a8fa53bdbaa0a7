"""Backend "dask" and ACME's local helpers (acme-dask): client reuse, stop_client, loopback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from acme_dask import cluster_cleanup, count_online_workers, local_cluster_setup
from acme_dask.setup import running_client

from acme_core import ParallelComputationError, ParallelMap
from acme_core.testing import BackendConformance
from tests.helpers.dask_funcs import with_broadcast, worker_address
from tests.helpers.funcs import f, fail_on_3

# every test ends without a default dask client (backend="auto" elsewhere would attach to it)
pytestmark = pytest.mark.usefixtures("no_dask_client_left")


class TestDask(BackendConformance):
    """The conformance kit on backend "dask" (a local cluster per run)."""

    backend = "dask"


def test_own_cluster_is_loopback_only_and_stopped_after_the_run():
    with ParallelMap(worker_address, list(range(4)), write_worker_results=False,
                     backend="dask", n_workers=2) as pmap:
        addresses = pmap.compute()
    # TLS with per-run credentials on loopback (was plain tcp:// before the cluster had TLS)
    assert all(a.startswith("tls://127.0.0.1:") for a in addresses), addresses
    assert running_client() is None                      # stop_client="auto": the run's own client stopped
    from distributed import get_client

    with pytest.raises(ValueError):
        get_client()


def test_stop_client_false_keeps_the_client_and_the_next_run_attaches(caplog):
    with ParallelMap(f, [2, 4, 6, 8], 4, write_worker_results=False, backend="dask",
                     n_workers=1, stop_client=False) as pmap:
        assert pmap.compute() == [18, 24, 30, 36]
    client = running_client()
    assert client is not None and count_online_workers(client) == 1
    with caplog.at_level(logging.INFO, logger="acme_dask"):
        again = ParallelMap(f, [1, 2], 4, write_worker_results=False)   # backend="auto"
        assert again.backend == "dask"
        assert again.compute() == [15, 18]
    assert "Attaching to parallel computing client" in caplog.text
    assert running_client() is client
    cluster_cleanup()
    assert running_client() is None


def test_a_users_client_survives_unless_stop_client_is_true(user_client):
    with ParallelMap(f, [2, 4, 6, 8], 4, write_worker_results=False) as pmap:
        assert pmap.backend == "dask"
        assert pmap.compute() == [18, 24, 30, 36]
        assert pmap._executor.n_workers == 2
    assert user_client.status == "running" and running_client() is user_client
    with ParallelMap(f, [2, 4], 4, write_worker_results=False, stop_client=True) as pmap:
        assert pmap.compute() == [18, 24]
    assert user_client.status != "running"
    assert running_client() is None


def test_attaching_ignores_n_workers_with_a_warning(user_client, caplog):
    with caplog.at_level(logging.WARNING, logger="acme_dask"):
        pmap = ParallelMap(f, [1, 2], 4, write_worker_results=False, backend="dask", n_workers=7)
        assert pmap.compute() == [15, 18]
    assert "n_workers=7" in caplog.text and "ignored" in caplog.text


def test_fifty_back_to_back_runs_with_the_same_broadcast_argument(user_client):
    table = list(range(100))                       # the very same value in every run
    for _ in range(50):
        pmap = ParallelMap(with_broadcast, [0, 1, 2, 3], table, n_inputs=4,
                           write_worker_results=False, verbose=False)
        assert pmap.compute() == [4950, 4951, 4952, 4953]
    assert user_client.status == "running"


def test_functions_from_a_local_module_reach_running_workers(user_client, tmp_path, monkeypatch):
    # the workers started before this folder was on sys.path: only forwarding can help
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "my_local_mod.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(folder))
    import my_local_mod

    pmap = ParallelMap(my_local_mod.twice, [1, 2, 3], write_worker_results=False)
    assert pmap.compute() == [2, 4, 6]


def test_a_failed_call_is_reported_and_the_others_are_stored(tmp_path):
    pmap = ParallelMap(fail_on_3, [1, 2, 3, 4], backend="dask", n_workers=2,
                       output_dir=str(tmp_path / "run"))
    with pytest.raises(ParallelComputationError, match="1/4 tasks failed") as info:
        pmap.compute()
    assert info.value.failures.indices == [2]
    assert running_client() is None


def test_local_cluster_setup_sizes_workers_and_memory():
    client = local_cluster_setup(n_workers=2, mem_per_worker="2GB", interactive=False)
    try:
        workers = client.scheduler_info()["workers"]
        assert [w["memory_limit"] for w in workers.values()] == [2e9, 2e9]
        assert client.scheduler.address.startswith("tls://127.0.0.1:")
    finally:
        cluster_cleanup(client)


def test_helpers_reject_wrong_arguments_as_acme(caplog):
    with caplog.at_level(logging.WARNING, logger="acme_dask"):
        cluster_cleanup()                                          # no client: a warning
    assert "No dangling clients or clusters found." in caplog.text
    with pytest.raises(TypeError, match="has to be a dask client object"):
        cluster_cleanup(3)
    with pytest.raises(TypeError, match="interactive"):
        local_cluster_setup(interactive="x")
    # interactive without a terminal: ACME's question is answered with its default "no"
    assert local_cluster_setup(interactive=True) is None


def test_backend_options_are_checked_before_anything_starts():
    with pytest.raises(ValueError, match="threads_per_worker"):
        ParallelMap(f, [1, 2], 4, backend="dask", backend_options={"threads_per_worker": 0})
    with pytest.raises(ValueError, match="accepted: 'threads_per_worker'"):
        ParallelMap(f, [1, 2], 4, backend="dask", backend_options={"cores": 2})


def test_auto_claim_is_cheap_and_imports_nothing():
    code = textwrap.dedent("""
        import sys
        from acme_core import plugins
        from acme_dask.plugin import acme_core_claim_auto
        assert acme_core_claim_auto() is None
        assert plugins.resolve_auto_backend().backend != "dask"
        assert "distributed" not in sys.modules and "dask_jobqueue" not in sys.modules
        import distributed
        assert acme_core_claim_auto() is None       # imported, but no client
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_auto_claim_with_a_running_client(user_client):
    from acme_dask.plugin import acme_core_claim_auto

    claim = acme_core_claim_auto()
    assert (claim.backend, claim.priority) == ("dask", 200)


def test_in_memory_results_match_joblib():
    args = (list(range(20)), np.arange(20.0))
    on_dask = ParallelMap(f, *args, write_worker_results=False, backend="dask",
                          n_workers=2).compute()
    on_joblib = ParallelMap(f, *args, write_worker_results=False, backend="joblib").compute()
    assert on_dask == on_joblib


def test_credentials_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    import socket
    import subprocess
    import sys

    from acme_dask.setup import OWNER_FILE, private_directory

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    for name, owner in (("tls-stale", f"{socket.gethostname()} {dead}"),
                        ("tls-other-host", f"another-node {dead}"),
                        ("tls-alive", f"{socket.gethostname()} {os.getpid()}")):
        (tmp_path / name).mkdir()
        (tmp_path / name / OWNER_FILE).write_text(owner)
    mine = private_directory(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["tls-other-host", "tls-alive", os.path.basename(mine)])
    assert (tmp_path / os.path.basename(mine) / OWNER_FILE).read_text().split()[1] == str(os.getpid())
