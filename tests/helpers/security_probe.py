"""A second Unix user probes a running run: its scheduler, its workers, its dashboard and
the owner's files (the security tests of the dask and SLURM backends)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import textwrap
import time

import pytest

from tests.helpers.scripts import ROOT as REPO

PROBE_USER = "acmeprobe"

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
        from tests.helpers.dask_funcs import reveal_and_wait

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
