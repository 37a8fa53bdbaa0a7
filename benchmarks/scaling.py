"""How acme-core's cost grows with the number of calls, beside the bare pools (``nox -s
benchmarks -- scaling``; never run by CI).

Every (variant, N) pair runs in a fresh Python process, so the parent's memory growth is
its own: the child starts its pool, warms it with a few calls, takes its RSS, runs the timed
map while a thread samples the parent's RSS (every 50 ms) and the workers' RSS, checks the
results and prints one JSON line. Repetitions alternate the variants (the order rotates),
medians are reported.

Sections:

- ``tiny``: ``f(x, y) = x + y`` over N pairs, results in memory: ours (default backend;
  ``ours-globals`` maps the same sum written as real functions are, reading a module
  constant) against ``ProcessPoolExecutor.map(chunksize=N / (4 x workers))``,
  ``multiprocessing.Pool.starmap``, ``joblib.Parallel`` and ``mpire.WorkerPool.map`` (when
  installed). Reported: wall time, time per call, parent peak RSS growth per call, worker
  peak RSS, and our ratio to each peer.
- ``disk``: the same calls into ``hdf5-shards``, ``hdf5`` (per-call files; only up to
  ``--disk-max``) and ``memory``, with the time of ``acme_core.load()`` of every result, beside
  joblib + h5py writing the same values into one file per worker; then, for the on-disk
  storages, ``compute()`` again on the finished run (a resume with nothing to run: it reads
  the manifest, checks the stored results and rebuilds the container): its time and the
  parent's peak RSS growth.

Usage: ``python benchmarks/scaling.py [--sizes 1000 10000 100000 1000000] [--repeat 3]
[--workers 2] [--only tiny disk] [--disk-max 100000]``. Prints markdown tables and writes the
raw numbers to ``benchmarks/results/scaling-<stamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join([HERE, *filter(None, [os.environ.get("PYTHONPATH")])])
sys.path.insert(0, HERE)

TINY = ["ours", "ours-globals", "ppe", "pool", "joblib", "mpire"]
DISK = ["shards", "hdf5", "memory", "joblib-h5py"]


# ---------------------------------------------------------------------------- child side
def _pool_pids(pool_kind: str, handle) -> list[int]:
    if pool_kind.startswith("ours"):
        from acme_joblib.executor import _shared

        pool = _shared["pool"]
        return list(pool._processes) if pool is not None else []
    if pool_kind == "ppe":
        return list(handle._processes or ())
    if pool_kind == "pool":
        return [p.pid for p in handle._pool]
    if pool_kind == "joblib":
        from joblib.externals.loky import reusable_executor

        pool = reusable_executor._executor
        return list(pool._processes) if pool is not None else []
    if pool_kind == "mpire":
        return [w.pid for w in handle._workers if w is not None]
    return []


def _tiny_runner(kind: str, workers: int):
    """(run(n) -> results, pool handle, close()) for one tiny-call variant."""
    from speedwork import add, add_scaled

    if kind.startswith("ours"):
        from acme_core import ParallelMap

        func = add_scaled if kind == "ours-globals" else add

        def run(xs):
            return ParallelMap(func, xs, xs, write_worker_results=False, verbose=False,
                               n_workers=workers).compute()
        return run, None, lambda: None
    if kind == "ppe":
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers)

        def run(xs):
            return list(pool.map(add, xs, xs, chunksize=max(1, len(xs) // (4 * workers))))
        return run, pool, pool.shutdown
    if kind == "pool":
        import multiprocessing

        pool = multiprocessing.Pool(workers)

        def run(xs):
            return pool.starmap(add, zip(xs, xs, strict=True))
        return run, pool, pool.terminate
    if kind == "joblib":
        from joblib import Parallel, delayed

        def run(xs):
            return Parallel(n_jobs=workers)(delayed(add)(x, x) for x in xs)
        return run, None, lambda: None
    if kind == "mpire":
        from mpire import WorkerPool

        pool = WorkerPool(n_jobs=workers, keep_alive=True)

        def run(xs):
            return pool.map(add, zip(xs, xs, strict=True))
        return run, pool, pool.terminate
    raise SystemExit(f"unknown tiny variant {kind!r}")


def _disk_runner(kind: str, workers: int, where: str):
    """(run(n) -> None, load(n) -> results) for one on-disk variant."""
    from speedwork import add

    if kind in ("shards", "hdf5", "memory"):
        from acme_core import ParallelMap, load

        storage = {"shards": "hdf5-shards", "hdf5": "hdf5", "memory": "memory"}[kind]
        state = {}

        def run(xs):
            n = len(xs)
            out = os.path.join(where, f"{kind}-{n}")
            kw = ({"write_worker_results": False} if kind == "memory"
                  else {"storage": storage, "output_dir": out})
            state["result"] = ParallelMap(add, xs, xs, verbose=False, n_workers=workers,
                                          logfile=False, **kw).compute()
            state["out"] = out

        def load_all(n):
            if kind == "memory":
                return state["result"]
            return load(state["out"])
        return run, load_all
    if kind == "joblib-h5py":
        import h5py
        import numpy as np
        from joblib import Parallel, delayed

        def part(lo, hi, path):
            values = np.array([add(x, x) for x in range(lo, hi)])
            with h5py.File(path, "w") as fh:
                fh["result"] = values
                fh["index"] = np.arange(lo, hi)

        def run(xs):
            n = len(xs)
            cuts = np.linspace(0, n, workers + 1).astype(int)
            Parallel(n_jobs=workers)(
                delayed(part)(int(cuts[k]), int(cuts[k + 1]),
                              os.path.join(where, f"peer-{n}-{k}.h5")) for k in range(workers))

        def load_all(n):
            values = []
            for k in range(workers):
                with h5py.File(os.path.join(where, f"peer-{n}-{k}.h5"), "r") as fh:
                    values.extend(fh["result"][()].tolist())
            return values
        return run, load_all
    raise SystemExit(f"unknown disk variant {kind!r}")


def child(section: str, kind: str, n: int, workers: int) -> None:
    import numpy as np
    from speedwork import RssSampler

    with tempfile.TemporaryDirectory(prefix="acme-scaling-") as where:
        # the inputs are the user's, made before the baseline: only what the map itself
        # holds counts as its growth
        xs = list(range(n))
        if section == "tiny":
            run, handle, close = _tiny_runner(kind, workers)
            run(list(range(4 * workers)))  # warm the pool
            with RssSampler(lambda: _pool_pids(kind, handle), interval=0.05) as rss:
                t0 = time.perf_counter()
                result = run(xs)
                wall = time.perf_counter() - t0
            assert list(result) == [2 * i for i in range(n)], "wrong results"
            del result  # the results are the user's too: the sampler has its peak
            close()
            record = {"wall": wall, "load": None}
        else:
            run, load_all = _disk_runner(kind, workers, where)
            run(list(range(4 * workers)))
            pool = "ours" if kind != "joblib-h5py" else "joblib"
            with RssSampler(lambda: _pool_pids(pool, None), interval=0.05) as rss:
                t0 = time.perf_counter()
                run(xs)
                wall = time.perf_counter() - t0
            t1 = time.perf_counter()
            values = load_all(n)
            loaded = time.perf_counter() - t1
            got = [int(np.ravel(v)[0]) for v in values]
            assert got == [2 * i for i in range(n)], "wrong results read back"
            del values, got
            record = {"wall": wall, "load": loaded, "resume": None, "resume_growth": None}
            if kind in ("shards", "hdf5"):  # compute() again on the finished run: none runs
                with RssSampler(lambda: _pool_pids(pool, None), interval=0.05) as again:
                    t2 = time.perf_counter()
                    run(xs)
                    record["resume"] = time.perf_counter() - t2
                record["resume_growth"] = again.parent_peak - again.base
    record.update(parent_growth=rss.parent_peak - rss.base, worker_peak=rss.worker_peak)
    print(json.dumps(record))


# ---------------------------------------------------------------------------- parent side
def _measure(section: str, kind: str, n: int, workers: int) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", section, kind, str(n),
           "--workers", str(workers)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {section}/{kind} N={n}: failed ({tail})", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _available(kind: str) -> bool:
    if kind != "mpire":
        return True
    try:
        import mpire  # noqa: F401
    except ImportError:
        print("  mpire is not installed: its column is left out", file=sys.stderr)
        return False
    return True


def measure_all(section: str, kinds: list[str], sizes: list[int], repeat: int,
                workers: int) -> dict:
    rows: dict = {}
    for n in sizes:
        samples: dict[str, list[dict]] = {k: [] for k in kinds}
        for rep in range(repeat):
            order = kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]
            for kind in order:
                got = _measure(section, kind, n, workers)
                if got is not None:
                    samples[kind].append(got)
        rows[n] = {k: _median(v) for k, v in samples.items() if v}
        print(f"  {section} N={n}: " + ", ".join(
            f"{k} {r['wall']:.3f} s" for k, r in rows[n].items()), file=sys.stderr)
    return rows


def _median(records: list[dict]) -> dict:
    keys = records[0].keys()
    return {k: (statistics.median(r[k] for r in records) if records[0][k] is not None
                else None) for k in keys}


def _table(section: str, rows: dict, ours: str, peers: list[str]) -> str:
    lines = [f"### {section}", "",
             "| N | variant | wall s | µs/call | parent B/call | worker peak MB | load s | "
             "resume s | resume B/call | ours / it |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n, by_kind in rows.items():
        mine = by_kind.get(ours)
        for kind, r in by_kind.items():
            ratio = (f"{mine['wall'] / r['wall']:.2f}x" if mine and kind in peers else "")
            load = f"{r['load']:.3f}" if r.get("load") is not None else ""
            again = (f"{r['resume']:.3f} | {r['resume_growth'] / n:.1f}"
                     if r.get("resume") is not None else " | ")
            lines.append(
                f"| {n:,} | {kind} | {r['wall']:.3f} | {1e6 * r['wall'] / n:.2f} | "
                f"{r['parent_growth'] / n:.1f} | {r['worker_peak'] / 2**20:.1f} | {load} | "
                f"{again} | {ratio} |")
    flat = [n for n in rows if ours in rows[n]]
    if len(flat) >= 2:  # the target compares N = 10^6 with N = 10^4 (fixed costs amortised)
        lo, hi = (10_000 if 10_000 in flat[:-1] else flat[0]), flat[-1]
        per = {n: rows[n][ours]["wall"] / n for n in (lo, hi)}
        lines += ["", f"Our time per call at N = {hi:,} is {per[hi] / per[lo]:.2f}x that at "
                      f"N = {lo:,}."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", nargs="+", choices=["tiny", "disk"], default=["tiny", "disk"])
    p.add_argument("--disk-max", type=int, default=100000,
                   help="largest N for the per-call-file storage hdf5 (N files)")
    p.add_argument("--child", nargs=3, metavar=("SECTION", "VARIANT", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.workers)
        return
    load1 = os.getloadavg()[0]
    report = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_before": load1,
              "python": platform.python_version(), "sizes": args.sizes, "repeat": args.repeat}
    text = [f"Machine: {report['machine']}, {report['cpus']} CPUs, load {load1:.2f} before the "
            f"run, Python {report['python']}, {args.workers} workers, median of {args.repeat}. "
            f"Parent growth: peak RSS over the RSS after the inputs were made (the returned "
            f"results count: the peers return them too)."]
    if "tiny" in args.only:
        kinds = [k for k in TINY if _available(k)]
        report["tiny"] = measure_all("tiny", kinds, args.sizes, args.repeat, args.workers)
        text.append(_table("tiny (results in memory)", report["tiny"], "ours",
                           [k for k in kinds if not k.startswith("ours")]))
    if "disk" in args.only:
        rows: dict = {}
        for n in args.sizes:
            kinds = [k for k in DISK if k != "hdf5" or n <= args.disk_max]
            rows.update(measure_all("disk", kinds, [n], args.repeat, args.workers))
        report["disk"] = rows
        text.append(_table("disk (write, then load() everything)", rows, "shards",
                           ["joblib-h5py"]))
    report["load_after"] = os.getloadavg()[0]
    text.append(f"Load after the run: {report['load_after']:.2f}.")
    print("\n\n".join(text))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(HERE, "results", f"scaling-{stamp}.json"), "w") as fh:
        json.dump(report, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
