"""acme-core speed benchmarks against the bare peers (``nox -s benchmarks``; never run by CI).

One run measures, alternating ours and the bare peers on the same workloads (the order
rotates every repetition), and reports medians, the spread (min-max) and ratios:

- ``tiny``: ``f(x, y) = x + y`` over N = 1,000 and 100,000 pairs, results in memory;
  peers ``joblib.Parallel`` (default batching), ``multiprocessing.Pool.starmap`` (its
  default chunksize), ``ProcessPoolExecutor.map(chunksize=N / (4 x workers))``. Every pool,
  ours included, is warm (started before timing).
- ``sleep``: 200 calls of 10 ms (the ideal, N x 10 ms / workers, is printed).
- ``cold``: the whole ``python -c`` process for 1,000 tiny calls, pool start included, ours
  (default backend) vs joblib; ``python -c "import acme_core"`` and ``python -c pass``.
- ``dask``: ours on ``backend="dask"`` vs bare ``client.map`` + ``gather`` on the same
  LocalCluster (N = 1,000 and 10,000; ``pure=False`` like ours, so nothing is cached).
- ``slurm``: ours on ``backend="slurm"`` (attached to one client made with
  ``acme_dask.slurm_cluster_setup``, as ACME users do) vs bare ``client.map`` on that
  client's dask-jobqueue cluster on the local SLURM, N = 1,000, 4 workers up before timing.
- ``disk-rss``: ours writing tiny results to per-call HDF5 (the default storage) at N =
  1,000 and 10,000, each in a fresh process: parent RSS growth and worker peak RSS.

Peak RSS (parent growth over its own start, and the largest worker) comes from one extra,
untimed repetition per variant sampled with psutil every 20 ms (sampling costs CPU, so the
timed repetitions run without it). Every SLURM job and dask process started here is stopped
at the end; ``squeue`` is checked for leftovers.

Usage: ``python benchmarks/speed.py [--repeat 5] [--slurm-repeat 7] [--workers 2] [--quick]
[--only tiny sleep cold dask slurm disk-rss]``. Prints a markdown table and writes the raw
numbers to ``benchmarks/results/speed-<stamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
# workers (loky, multiprocessing, dask nannies, SLURM jobs) import ``speedwork`` by name
os.environ["PYTHONPATH"] = os.pathsep.join([HERE, *filter(None, [os.environ.get("PYTHONPATH")])])
sys.path.insert(0, HERE)

import speedwork  # noqa: E402
from speedwork import RssSampler, add, nap  # noqa: E402

SECTIONS = ["cold", "tiny", "sleep", "dask", "slurm", "disk-rss"]
SLEEP_N, SLEEP_S = 200, 0.01


# ---------------------------------------------------------------------------- variants
class Variant:
    """A way to run a map; ``run(n)`` is timed, ``pids()`` names its worker processes."""

    family = "local"
    ours = False

    def __init__(self, name, workers):
        self.name, self.workers = name, workers

    def warm(self):
        self.run("tiny", 4 * self.workers)

    def pids(self):
        return []


def _inputs(n):
    return list(range(n)), list(range(n))


def _check(kind, n, result):
    if kind == "tiny":
        assert list(result) == [2 * i for i in range(n)], "wrong results"
    else:
        assert list(result) == list(range(n)), "wrong results"


class Ours(Variant):
    ours = True

    def __init__(self, name, workers, backend="auto"):
        super().__init__(name, workers)
        self.backend = backend
        self.family = "local" if backend in ("auto", "joblib") else backend

    def run(self, kind, n):
        from acme_core import ParallelMap

        kw = {} if self.backend in ("dask", "slurm") else {"n_workers": self.workers}
        if self.backend != "auto":
            kw["backend"] = self.backend
        args = _inputs(n) if kind == "tiny" else (list(range(n)),)
        func = add if kind == "tiny" else nap
        result = ParallelMap(func, *args, write_worker_results=False, verbose=False,
                             **kw).compute()
        _check(kind, n, result)

    def pids(self):
        if self.family != "local":
            return dask_pids()
        from acme_joblib.executor import _shared

        pool = _shared["pool"]
        return list(pool._processes) if pool is not None else []


class JoblibPeer(Variant):
    def run(self, kind, n):
        from joblib import Parallel, delayed

        if kind == "tiny":
            xs, ys = _inputs(n)
            result = Parallel(n_jobs=self.workers)(delayed(add)(x, y) for x, y in zip(xs, ys, strict=True))
        else:
            result = Parallel(n_jobs=self.workers)(delayed(nap)(x) for x in range(n))
        _check(kind, n, result)

    def pids(self):
        from joblib.externals.loky import reusable_executor

        pool = reusable_executor._executor
        return list(pool._processes) if pool is not None else []


class PoolPeer(Variant):
    def __init__(self, name, workers):
        super().__init__(name, workers)
        self.pool = None

    def run(self, kind, n):
        import multiprocessing

        if self.pool is None:
            self.pool = multiprocessing.Pool(self.workers)
        if kind == "tiny":
            result = self.pool.starmap(add, zip(*_inputs(n), strict=True))
        else:
            result = self.pool.map(nap, range(n))
        _check(kind, n, result)

    def pids(self):
        return [p.pid for p in self.pool._pool] if self.pool is not None else []

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


class PPEPeer(Variant):
    def __init__(self, name, workers):
        super().__init__(name, workers)
        self.pool = None

    def run(self, kind, n):
        from concurrent.futures import ProcessPoolExecutor

        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers)
        chunk = max(1, n // (4 * self.workers))
        if kind == "tiny":
            result = list(self.pool.map(add, *_inputs(n), chunksize=chunk))
        else:
            result = list(self.pool.map(nap, range(n), chunksize=chunk))
        _check(kind, n, result)

    def pids(self):
        return list(self.pool._processes or ()) if self.pool is not None else []

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None


class DaskPeer(Variant):
    """Bare ``client.map`` + ``client.gather`` on the default (running) client."""

    def __init__(self, name, workers, family):
        super().__init__(name, workers)
        self.family = family
        self._pids = None

    def run(self, kind, n):
        from distributed import default_client

        client = default_client()
        if kind == "tiny":
            futures = client.map(add, *_inputs(n), pure=False)
        else:
            futures = client.map(nap, range(n), pure=False)
        result = client.gather(futures)
        del futures
        _check(kind, n, result)

    def pids(self):
        return dask_pids()


def dask_pids():
    from distributed import default_client

    return list(default_client().run(speedwork.pid).values())


# ---------------------------------------------------------------------------- timing
def measure(workload, kind, n, variants, repeat, raw, note=""):
    """Time every variant ``repeat`` times, rotating the order; then one sampled RSS pass."""
    names = [v.name for v in variants]
    entry = raw.setdefault(workload, {"kind": kind, "n": n, "note": note, "variants": {}})
    for v in variants:
        entry["variants"][v.name] = {"seconds": [], "family": v.family, "ours": v.ours}
    entry["load_before"] = os.getloadavg()
    for rep in range(repeat):
        k = rep % len(variants)
        for v in variants[k:] + variants[:k]:
            start = time.perf_counter()
            v.run(kind, n)
            entry["variants"][v.name]["seconds"].append(time.perf_counter() - start)
    for v in variants:
        # pids computed once, before the pass (asking a dask client every 20 ms would
        # itself load the workers)
        fixed = v.pids()
        getter = (lambda fixed=fixed: fixed) if v.family != "local" else v.pids
        with RssSampler(getter) as sampler:
            v.run(kind, n)
        entry["variants"][v.name].update(parent_growth=sampler.parent_peak - sampler.base,
                                         parent_peak=sampler.parent_peak,
                                         worker_peak=sampler.worker_peak)
    entry["load_after"] = os.getloadavg()
    line = ", ".join(f"{name} {statistics.median(entry['variants'][name]['seconds']):.3f} s"
                     for name in names)
    print(f"[{workload}] {line}", flush=True)


def local_variants(workers, with_peers=True):
    ours = Ours("ours (default backend)", workers)
    if not with_peers:
        return [ours]
    return [ours, JoblibPeer("joblib.Parallel", workers),
            PoolPeer("multiprocessing.Pool", workers),
            PPEPeer("ProcessPoolExecutor(chunksize)", workers)]


def section_local(raw, args):
    variants = local_variants(args.workers)
    for v in variants:
        v.warm()
    try:
        if "tiny" in args.only:
            for n in args.tiny_n:
                measure(f"tiny N={n:,}", "tiny", n, variants, args.repeat, raw,
                        "warm pools")
        if "sleep" in args.only:
            ideal = SLEEP_N * SLEEP_S / args.workers
            measure(f"sleep N={SLEEP_N} x 10 ms", "sleep", SLEEP_N, variants, args.repeat, raw,
                    f"ideal {ideal:.2f} s")
            raw[f"sleep N={SLEEP_N} x 10 ms"]["ideal"] = ideal
    finally:
        for v in variants:
            if hasattr(v, "close"):
                v.close()


def section_dask(raw, args):
    from acme_dask import cluster_cleanup, local_cluster_setup

    client = local_cluster_setup(n_workers=args.workers, interactive=False)
    try:
        variants = [Ours("ours backend=dask", args.workers, "dask"),
                    DaskPeer("dask client.map", args.workers, "dask")]
        for v in variants:
            v.warm()
        for n in args.dask_n:
            measure(f"dask N={n:,}", "tiny", n, variants, args.repeat, raw,
                    f"LocalCluster {args.workers} workers x 1 thread")
    finally:
        cluster_cleanup(client)


def _squeue(name):
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True,
                         text=True, timeout=30)
    return out.stdout.split("\n") if out.stdout.strip() else []


def section_slurm(raw, args):
    try:
        ok = subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        print("[slurm] skipped: sinfo does not answer (start the local SLURM first)")
        raw["slurm-skipped"] = "sinfo does not answer"
        return
    from acme_dask import cluster_cleanup, slurm_cluster_setup

    name = f"acme_bench_speed_{os.getpid()}"
    logs = tempfile.mkdtemp(prefix="acme_bench_slurm_logs_")
    client = None
    try:
        client = slurm_cluster_setup(n_workers=4, mem_per_worker="1GB", timeout=180,
                                     n_workers_startup=4, interactive=False, job_name=name,
                                     log_directory=logs, reuse=False)
        client.wait_for_workers(4, timeout=180)
        variants = [Ours("ours backend=slurm", 4, "slurm"),
                    DaskPeer("dask-jobqueue client.map", 4, "slurm")]
        for v in variants:
            v.warm()
        measure("slurm N=1,000", "tiny", 1000, variants, args.slurm_repeat, raw,
                "dask-jobqueue, 4 one-CPU jobs up before timing, TLS")
    finally:
        if client is not None:
            cluster_cleanup(client)
        deadline = time.monotonic() + 60
        while _squeue(name) and time.monotonic() < deadline:
            time.sleep(1)
        left = _squeue(name)
        if left:
            subprocess.run(["scancel", "-n", name], timeout=30)
        raw["slurm-cleanup"] = {"job_name": name, "left_after_cleanup": left}
        print(f"[slurm] squeue -n {name} after cleanup: {left or 'empty'}")
        shutil.rmtree(logs, ignore_errors=True)


# ---------------------------------------------------------------------------- processes
COLD = {
    "ours (default backend)": (
        "import sys; sys.path.insert(0, {here!r}); from speedwork import add\n"
        "from acme_core import ParallelMap\n"
        "r = ParallelMap(add, list(range(1000)), list(range(1000)), n_workers={w},\n"
        "                write_worker_results=False, verbose=False).compute()\n"
        "assert r[-1] == 1998"),
    "joblib.Parallel": (
        "import sys; sys.path.insert(0, {here!r}); from speedwork import add\n"
        "from joblib import Parallel, delayed\n"
        "r = Parallel(n_jobs={w})(delayed(add)(x, x) for x in range(1000))\n"
        "assert r[-1] == 1998"),
    "import acme_core": "import acme_core",
    "python -c pass": "pass",
}


def _timed_process(code, cwd):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, timeout=300)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return elapsed


def section_cold(raw, args, scratch):
    names = list(COLD)
    entry = raw.setdefault("cold start", {"kind": "process", "n": 1000, "variants": {},
                                          "note": "whole python -c process, pool start "
                                                  "included"})
    for name in names:
        entry["variants"][name] = {"seconds": [], "ours": name.startswith("ours")
                                   or name == "import acme_core", "family": "local"}
    entry["load_before"] = os.getloadavg()
    codes = {k: v.format(here=HERE, w=args.workers) for k, v in COLD.items()}
    _timed_process("pass", scratch)  # page cache
    for rep in range(max(args.repeat, 5)):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            entry["variants"][name]["seconds"].append(_timed_process(codes[name], scratch))
    entry["load_after"] = os.getloadavg()
    print("[cold] " + ", ".join(f"{n} {statistics.median(entry['variants'][n]['seconds']):.3f} s"
                                for n in names), flush=True)


DISK_CHILD = r"""
import json, os, sys, shutil
sys.path.insert(0, {here!r})
from speedwork import RssSampler, add
from acme_core import ParallelMap
from acme_joblib.executor import _shared
n, out = {n}, {out!r}
ParallelMap(add, [1, 2], [3, 4], n_workers={w}, verbose=False, output_dir=out + "-warm").compute()
import gc; gc.collect()
pids = lambda: list(_shared["pool"]._processes) if _shared["pool"] is not None else []
with RssSampler(pids) as s:
    ParallelMap(add, list(range(n)), list(range(n)), n_workers={w}, verbose=False,
                output_dir=out).compute()
print(json.dumps({{"parent_growth": s.parent_peak - s.base, "parent_peak": s.parent_peak,
                  "worker_peak": s.worker_peak}}))
"""


def section_disk_rss(raw, args, scratch):
    entry = raw.setdefault("disk-rss", {})
    for n in args.disk_n:
        runs = []
        for rep in range(args.disk_repeat):
            out = os.path.join(scratch, f"disk-{n}-{rep}")
            code = DISK_CHILD.format(here=HERE, n=n, out=out, w=args.workers)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  cwd=scratch, timeout=1800)
            elapsed = time.perf_counter() - start
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(out + "-warm", ignore_errors=True)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-2000:])
            runs.append({**json.loads(proc.stdout.strip().splitlines()[-1]),
                         "process_seconds": elapsed})
        entry[str(n)] = runs
        print(f"[disk-rss] N={n}: parent +{_mb(statistics.median(r['parent_growth'] for r in runs))}"
              f" MB, worker {_mb(statistics.median(r['worker_peak'] for r in runs))} MB",
              flush=True)


# ---------------------------------------------------------------------------- report
def _mb(value):
    return f"{value / 1e6:.1f}"


#: The peer each speed target in benchmarks/RESULTS.md is stated against.
TARGET_PEER = {"local": "joblib.Parallel", "dask": "dask client.map",
               "slurm": "dask-jobqueue client.map"}


def table(raw):
    lines = ["| workload | variant | median | spread (min-max) | vs best peer | "
             "vs target peer | parent peak growth | worker peak RSS |",
             "|---|---|---|---|---|---|---|---|"]
    for workload, entry in raw.items():
        if not isinstance(entry, dict) or "variants" not in entry:
            continue
        variants = entry["variants"]
        medians = {k: statistics.median(v["seconds"]) for k, v in variants.items()}
        for name, v in variants.items():
            peers = [medians[k] for k, p in variants.items()
                     if not p["ours"] and p["family"] == v["family"] and k != "python -c pass"]
            best = min(peers) if peers else None
            ratio = f"{medians[name] / best:.2f}x" if best and not name.startswith("python") \
                and name != "import acme_core" else "-"
            target = TARGET_PEER.get(v["family"])
            vs = f"{medians[name] / medians[target]:.2f}x" if v["ours"] and target in medians \
                and name != "import acme_core" else "-"
            spread = f"{min(v['seconds']):.3f}-{max(v['seconds']):.3f} s"
            parent = f"+{_mb(v['parent_growth'])} MB" if "parent_growth" in v else "-"
            worker = f"{_mb(v['worker_peak'])} MB" if v.get("worker_peak") else "-"
            label = f"**{name}**" if v["ours"] else name
            lines.append(f"| {workload} ({entry['note']}) | {label} | {medians[name]:.3f} s | "
                         f"{spread} | {ratio} | {vs} | {parent} | {worker} |")
    for n, runs in raw.get("disk-rss", {}).items():
        lines.append(f"| disk-rss N={int(n):,} (per-call HDF5, fresh process) | **ours** | "
                     f"{statistics.median(r['process_seconds'] for r in runs):.3f} s (process) | - "
                     f"| - | - | +{_mb(statistics.median(r['parent_growth'] for r in runs))} MB | "
                     f"{_mb(statistics.median(r['worker_peak'] for r in runs))} MB |")
    return "\n".join(lines)


def describe():
    import psutil

    versions = {}
    for dist in ("acme-core", "acme-joblib", "acme-dask", "joblib", "dask", "distributed",
                 "dask-jobqueue", "numpy", "h5py", "psutil"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        slurm = subprocess.run(["sinfo", "-V"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except OSError:
        slurm = None
    return {"started": dt.datetime.now().isoformat(timespec="seconds"),
            "python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "load_avg": os.getloadavg(), "versions": versions, "slurm": slurm}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slurm-repeat", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats, tiny N = 1,000 and 10,000, no 10,000-file disk run")
    parser.add_argument("--only", nargs="*", default=None, choices=SECTIONS)
    args = parser.parse_args(argv)
    args.only = set(args.only or SECTIONS)
    args.tiny_n, args.dask_n, args.disk_n, args.disk_repeat = \
        [1_000, 100_000], [1_000, 10_000], [1_000, 10_000], 2
    if args.quick:
        args.repeat, args.slurm_repeat = 3, 5
        args.tiny_n, args.disk_n, args.disk_repeat = [1_000, 10_000], [1_000], 1
    scratch = tempfile.mkdtemp(prefix="acme_core_speed_")
    raw = {"meta": {**describe(), "workers": args.workers, "repeat": args.repeat,
                    "slurm_repeat": args.slurm_repeat}}
    os.chdir(scratch)  # ours never leaves an ACME_* folder behind in the repository
    try:
        if "cold" in args.only:
            section_cold(raw, args, scratch)
        if args.only & {"tiny", "sleep"}:
            section_local(raw, args)
        if "dask" in args.only:
            section_dask(raw, args)
        if "slurm" in args.only:
            section_slurm(raw, args)
        if "disk-rss" in args.only:
            section_disk_rss(raw, args, scratch)
    finally:
        from acme_joblib.executor import shutdown_pool

        shutdown_pool()
        os.chdir(HERE)
        shutil.rmtree(scratch, ignore_errors=True)
    raw["meta"]["load_avg_end"] = os.getloadavg()
    text = table(raw)
    print()
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results",
                        "speed-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    with open(path, "w") as fh:
        json.dump({**raw, "table": text}, fh, indent=1)
    print(f"\nraw numbers: {path}")


if __name__ == "__main__":
    main()
