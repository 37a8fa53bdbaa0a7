"""Backend "dask" against its workers: how programs load there, who can reach them, what a
dying worker costs, and what Ctrl-C and a killed parent leave behind. Real clusters, real
processes, a real second Unix user."""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from acme_dask import cluster_cleanup, local_cluster_setup

from acme_core import ParallelComputationError, ParallelMap
from tests.test_dask_funcs import crash_on

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE_USER = "acmeprobe"

pytestmark = pytest.mark.usefixtures("no_dask_client_left")


# ------------------------------------------------------------------ helpers
def _import_fresh(folder, name: str, source: str):
    """Write module ``name`` into ``folder``, put it on sys.path and import it (the parent's
    own SIGINT handler is kept: the module may replace it)."""
    import importlib

    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(folder))
    before = signal.getsignal(signal.SIGINT)
    try:
        sys.modules.pop(name, None)
        return importlib.import_module(name)
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture
def sigmod(tmp_path):
    """Issue reproducer: a module that installs a SIGINT handler when imported."""
    module = _import_fresh(tmp_path, "sigmod", """
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
    client = local_cluster_setup(n_workers=2, interactive=False)
    yield client
    if client.status == "running":
        cluster_cleanup(client)


# ------------------------------------------------------------------ programs load in the main thread
def test_signal_handler_module_on_the_runs_own_cluster(sigmod):
    pmap = ParallelMap(sigmod.double, [1, 2], write_worker_results=False, backend="dask",
                       n_workers=2)
    assert pmap.compute() == [2, 4]


def test_signal_handler_module_on_a_users_restarted_cluster(sigmod, user_client):
    user_client.restart()                 # fresh workers: none has imported sigmod yet
    pmap = ParallelMap(sigmod.double, [1, 2], write_worker_results=False)
    assert pmap.backend == "dask"
    assert pmap.compute() == [2, 4]
    assert user_client.status == "running"


def test_a_program_that_cannot_load_on_workers_fails_each_call_once(tmp_path, caplog):
    mod = _import_fresh(tmp_path, f"parentonly_{uuid.uuid4().hex[:6]}", f"""
        import os

        if os.getpid() != {os.getpid()}:
            raise ImportError("this module imports only in the parent process")


        def double(x):
            return 2 * x
    """)
    pmap = ParallelMap(mod.double, [1, 2, 3], write_worker_results=False, backend="dask",
                       n_workers=2)
    with caplog.at_level(logging.WARNING), pytest.raises(ParallelComputationError) as info:
        pmap.compute()
    rows = list(info.value.failures)
    assert [r.index for r in rows] == [0, 1, 2]
    assert {(r.kind, r.exc_type, r.attempts) for r in rows} == {("error", "ImportError", 1)}
    assert all("imports only in the parent process" in r.message for r in rows)
    assert "lost" not in caplog.text.lower(), caplog.text     # no worker was lost, no retry
    sys.path.remove(str(tmp_path))


# ------------------------------------------------------------------ only the owner reaches the run
_PROBE = textwrap.dedent("""
    import json, os, sys, urllib.request
    from distributed import Client
    from distributed.comm import connect
    from distributed.security import Security
    from distributed.utils import sync
    import asyncio

    info, secret, uid, gid = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.setgroups([]); os.setgid(gid); os.setuid(uid)      # from here on: the other user
    try:
        open(secret).read()
        print("READ-SECRET-DIRECTLY")
    except OSError:
        print("no direct access to the secret")

    def try_client(what, address, security=None):
        try:
            c = Client(address, security=security, timeout="5s")
        except Exception as exc:
            print("REFUSED", what, type(exc).__name__, flush=True)
            return
        print("CONNECTED", what, flush=True)
        try:
            print("RAN-CODE", c.run(lambda: open(secret).read()), flush=True)
        finally:
            c.close()

    address = info["scheduler"]
    try_client("scheduler plain", address)
    try_client("scheduler tcp", address.replace("tls://", "tcp://"))
    try_client("scheduler foreign tls", address, Security.temporary())

    async def comm(addr):
        c = await connect(addr, timeout=5)
        await c.write({"op": "identity"})
        print("WORKER-ANSWERED", addr, await c.read(), flush=True)

    for addr in info["workers"]:
        for variant in (addr, addr.replace("tls://", "tcp://")):
            try:
                asyncio.run(comm(variant))
            except Exception as exc:
                print("REFUSED worker", type(exc).__name__, flush=True)

    host = address.split("://")[1].rsplit(":", 1)[0]
    ports = [info["services"].get("dashboard")]
    ports += [s.get("dashboard") for s in info["workers"].values()]
    for port in filter(None, ports):
        for path in ("/json/identity.json", "/info/main/workers.html", "/info/main/logs.html",
                     "/metrics", "/health"):
            try:
                with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
                    print("HTTP-READABLE", port, path, r.status, r.read()[:80], flush=True)
            except Exception as exc:
                print("HTTP-REFUSED", port, path, type(exc).__name__, flush=True)
""")


def probe_user() -> pwd.struct_passwd:
    """The second Unix user of the security tests (made once with ``useradd``)."""
    try:
        return pwd.getpwnam(PROBE_USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        PROBE_USER], check=False, capture_output=True)
        return pwd.getpwnam(PROBE_USER)


def run_victim_and_probe(tmp_path, backend: str, extra: str = "") -> str:
    """A run of ``backend`` whose calls wait; meanwhile another Unix user probes it. Returns
    the probe's output."""
    user = probe_user()
    secret = tmp_path / "secret.txt"
    secret.write_text("the victim's data")
    secret.chmod(0o600)
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from acme_core import ParallelMap
        from tests.test_dask_funcs import reveal_and_wait

        if __name__ == "__main__":
            out = ParallelMap(reveal_and_wait, [0, 1], {str(tmp_path)!r}, backend={backend!r},
                              n_workers=2, write_worker_results=False, verbose=False{extra}
                              ).compute()
            print("VICTIM-DONE", out, flush=True)
    """))
    victim = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not (tmp_path / "cluster.json").exists():
            assert victim.poll() is None, victim.stdout.read()
            assert time.monotonic() < deadline, "the victim's run never started"
            time.sleep(0.2)
        probe = tmp_path / "probe.py"
        probe.write_text(_PROBE)
        found = subprocess.run([sys.executable, str(probe), str(tmp_path / "cluster.json"),
                                str(secret), str(user.pw_uid), str(user.pw_gid)],
                               capture_output=True, text=True, timeout=180)
        (tmp_path / "release").touch()
        out, _ = victim.communicate(timeout=120)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert "VICTIM-DONE [0, 1]" in out, out
    return found.stdout + found.stderr


needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="creates a second Unix user (useradd); CI runs as root")


@needs_root
def test_another_user_cannot_reach_a_dask_run(tmp_path):
    text = run_victim_and_probe(tmp_path, "dask")
    print(text)
    assert "no direct access to the secret" in text, text
    assert text.count("REFUSED scheduler") == 3, text
    assert text.count("REFUSED worker") == 4, text
    assert "CONNECTED" not in text and "RAN-CODE" not in text and "WORKER-ANSWERED" not in text
    assert "HTTP-READABLE" not in text, text


# ------------------------------------------------------------------ a dying worker costs one call
def _crash_run(n_runs: int) -> list[tuple[list[int], str]]:
    """``n_runs`` runs of 40 calls where call 17 segfaults: (failed indices, message)."""
    seen = []
    for _ in range(n_runs):
        pmap = ParallelMap(crash_on, list(range(40)), 17, write_worker_results=False,
                           backend="dask", n_workers=2, verbose=False)
        with pytest.raises(ParallelComputationError) as info:
            pmap.compute()
        seen.append((info.value.failures.indices, str(info.value)))
    return seen


def test_a_segfaulting_call_costs_only_itself():
    for failed, message in _crash_run(2):
        assert failed == [17]
        assert "1/40 tasks failed" in message     # the other 39 have their results


@pytest.mark.slow
def test_a_segfaulting_call_costs_only_itself_ten_runs_of_ten():
    outcomes = [failed for _ in range(10) for failed, _ in _crash_run(10)]
    assert outcomes == [[17]] * 100
