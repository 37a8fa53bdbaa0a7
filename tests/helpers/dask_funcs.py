"""Functions the dask and SLURM tests map (an importable module, as ACME's docs recommend).

Kept apart from ``tests/helpers/funcs.py`` so that this backend's tests own their helpers.
"""

from __future__ import annotations

import os
import time


def node_of(x, seconds=0.0):
    """``(x, SLURM node name)``: tells the virtual nodes n1/n2 apart (hostnames are equal)."""
    time.sleep(seconds)
    return x, os.environ.get("SLURMD_NODENAME", "")


def worker_address(x):
    """The address of the dask worker running the call."""
    from distributed import get_worker

    return get_worker().address


def with_broadcast(x, table):
    """x plus the sum of a broadcast list."""
    return x + sum(table)


def triple_sum(x, y):
    """Deterministic, with an array result: ``[x, y, x * y]``."""
    import numpy as np

    return np.array([x, y, x * y], dtype=float)


def reveal_and_wait(x, folder):
    """Call 0 writes what another user would try to reach (the scheduler, the workers and
    their HTTP ports) to ``folder/cluster.json``; every call then waits for
    ``folder/release``."""
    import json
    from pathlib import Path

    from distributed import get_worker

    folder = Path(folder)
    if x == 0:
        info = get_worker().client.scheduler_info()
        workers = {a: w.get("services", {}) for a, w in info["workers"].items()}
        found = {"scheduler": info["address"], "services": info.get("services", {}),
                 "workers": workers}
        (folder / "cluster.tmp").write_text(json.dumps(found))
        (folder / "cluster.tmp").rename(folder / "cluster.json")
    deadline = time.monotonic() + 300
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return x


def crash_on(x, bad):
    """Returns ``x``; call ``bad`` reads address 0 through ctypes (a segfault)."""
    if x == bad:
        import ctypes

        ctypes.string_at(0)
    return x


def nap_counted(x, seconds, folder):
    """Sleeps ``seconds`` and leaves ``folder/<x>`` behind (counts calls that ran)."""
    from pathlib import Path

    (Path(folder) / f"started-{x}").touch()
    time.sleep(seconds)
    return x


def dashboard_status(x):
    """HTTP status of the run's scheduler dashboard page ``/json/identity.json``."""
    import urllib.error
    import urllib.request

    from distributed import get_worker

    info = get_worker().client.scheduler_info()
    port = info["services"]["dashboard"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/identity.json",
                                    timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
