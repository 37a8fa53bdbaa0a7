"""acme-core storage benchmarks against bare peers (``nox -s benchmarks``; never run by CI).

Every scenario alternates our ParallelMap and bare peers (joblib.Parallel and
concurrent.futures.ProcessPoolExecutor writing the same bytes with h5py) within the same
repetition, rotating their order, and reports medians:

- ``percall``: 200 calls returning an 800 KB array, one HDF5 file per call (the files are
  counted and read after each timed run); besides the bare peers, joblib + h5py with the
  guarantee ours gives (temporary name, fsync, rename, fsync of the folder);
- ``stacked``: the same calls stacked into one (200, 1000, 100) dataset
  (``result_shape=(None, 1000, 100)``, storages ``hdf5`` and ``hdf5-single``; the peers
  return the arrays and the parent writes them into one preallocated dataset);
- ``parent-rss``: the parent's peak RSS growth over its own baseline while 500 such
  results go to disk (each variant in a fresh process);
- ``worker-rss``: a worker's RSS after 100 and after 1000 calls (fresh processes);
- ``shards``: N tiny calls into ``hdf5-shards`` (files made, seconds, load time).

Usage: ``python benchmarks/run.py [--repeat 5] [--workers 2] [--quick] [--only NAME ...]``.
Prints a markdown table and writes the raw numbers to ``benchmarks/results/<stamp>.json``.
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

HERE = os.path.dirname(os.path.abspath(__file__))
# workers (loky, spawn) must import ``workloads`` by name
os.environ["PYTHONPATH"] = os.pathsep.join([HERE, *filter(None, [os.environ.get("PYTHONPATH")])])
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import workloads  # noqa: E402

N_CALLS, N_RSS = 200, 500


# ---------------------------------------------------------------------------- variants
def ours(n, storage="hdf5", stacked=False, workers=2, out=None):
    from acme_core import ParallelMap

    kwargs = {"result_shape": (None, *workloads.SHAPE)} if stacked else {}
    with ParallelMap(workloads.big, range(n), storage=storage, backend="joblib",
                     n_workers=workers, verbose=False, output_dir=out, **kwargs) as pmap:
        pmap.compute()


def joblib_files(n, workers=2, out=None, durable=False):
    from joblib import Parallel, delayed

    os.makedirs(out, exist_ok=True)
    write = workloads.write_one_durable if durable else workloads.write_one
    Parallel(n_jobs=workers)(delayed(write)(i, out) for i in range(n))


def verify(out, n):
    """Every variant's run left ``n`` complete HDF5 files holding the right values (checked
    after the timing, so a variant cannot win by writing less)."""
    import h5py

    files = sorted(os.path.join(root, name) for root, _, names in os.walk(out)
                   for name in names if name.startswith("big_") and name.endswith(".h5"))
    assert len(files) == n, f"{out}: {len(files)} result files, expected {n}"
    for path in (files[0], files[-1]):
        with h5py.File(path, "r") as h5:
            index = int(os.path.basename(path)[4:-3])
            assert float(h5["result_0"][0, 0]) == index, path


def _write_stack(out, results, n):
    import h5py

    os.makedirs(out, exist_ok=True)
    with h5py.File(os.path.join(out, "big.h5"), "w") as h5:
        ds = h5.create_dataset("result_0", shape=(n, *workloads.SHAPE), dtype="float64")
        for i, arr in enumerate(results):
            ds[i] = arr


def joblib_stacked(n, workers=2, out=None):
    from joblib import Parallel, delayed

    results = Parallel(n_jobs=workers, return_as="generator")(
        delayed(workloads.big)(i) for i in range(n))
    _write_stack(out, results, n)


_ppe = None


def _pool(workers):
    global _ppe
    from concurrent.futures import ProcessPoolExecutor

    if _ppe is None:  # kept warm across repetitions, like joblib's and ours
        _ppe = ProcessPoolExecutor(workers)
    return _ppe


def ppe_files(n, workers=2, out=None):
    os.makedirs(out, exist_ok=True)
    list(_pool(workers).map(workloads.write_one, range(n), [out] * n))


def ppe_stacked(n, workers=2, out=None):
    _write_stack(out, _pool(workers).map(workloads.big, range(n)), n)


TIMED = {
    "percall": {
        "ours hdf5": lambda n, w, out: ours(n, "hdf5", False, w, out),
        "joblib + h5py": lambda n, w, out: joblib_files(n, w, out),
        "joblib + h5py + fsync": lambda n, w, out: joblib_files(n, w, out, durable=True),
        "ProcessPoolExecutor + h5py": lambda n, w, out: ppe_files(n, w, out),
    },
    "stacked": {
        "ours hdf5 (VDS)": lambda n, w, out: ours(n, "hdf5", True, w, out),
        "ours hdf5-single": lambda n, w, out: ours(n, "hdf5-single", True, w, out),
        "joblib + h5py": lambda n, w, out: joblib_stacked(n, w, out),
        "ProcessPoolExecutor + h5py": lambda n, w, out: ppe_stacked(n, w, out),
    },
}


def warm(workers, scratch):
    """Start every pool once (not timed): loky's reusable pool, the ProcessPoolExecutor."""
    ours(4, "hdf5", False, workers, os.path.join(scratch, "warm-ours"))
    joblib_files(4, workers, os.path.join(scratch, "warm-joblib"))
    ppe_files(4, workers, os.path.join(scratch, "warm-ppe"))


def timed(repeat, workers, scratch):
    raw = {}
    for scenario, variants in TIMED.items():
        names = list(variants)
        raw[scenario] = {name: [] for name in names}
        for rep in range(repeat):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for name in order:
                out = os.path.join(scratch, f"{scenario}-{rep}-{names.index(name)}")
                start = time.perf_counter()
                variants[name](N_CALLS, workers, out)
                raw[scenario][name].append(time.perf_counter() - start)
                if scenario == "percall":
                    verify(out, N_CALLS)
                shutil.rmtree(out, ignore_errors=True)
    return raw


# ---------------------------------------------------------------------------- memory
RSS_CHILD = r"""
import json, os, sys, threading, time
sys.path.insert(0, {here!r})
import psutil, run
variant, n, workers, out = {variant!r}, {n}, {workers}, {out!r}
me = psutil.Process()
fn = {{"ours hdf5": lambda: run.ours(n, "hdf5", False, workers, out),
      "ours hdf5-single": lambda: run.ours(n, "hdf5-single", True, workers, out),
      "joblib + h5py": lambda: run.joblib_files(n, workers, out),
      "joblib stacked + h5py": lambda: run.joblib_stacked(n, workers, out),
      "ProcessPoolExecutor + h5py": lambda: run.ppe_files(n, workers, out)}}[variant]
warm = out + "-warm"
{{"ours hdf5": lambda: run.ours(2, "hdf5", False, workers, warm),
  "ours hdf5-single": lambda: run.ours(2, "hdf5-single", True, workers, warm),
  "joblib + h5py": lambda: run.joblib_files(2, workers, warm),
  "joblib stacked + h5py": lambda: run.joblib_stacked(2, workers, warm),
  "ProcessPoolExecutor + h5py": lambda: run.ppe_files(2, workers, warm)}}[variant]()
import gc; gc.collect()
base = me.memory_info().rss
peak = [base]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], me.memory_info().rss)
        time.sleep(0.005)
t = threading.Thread(target=sample, daemon=True); t.start()
fn()
stop.set(); t.join()
peak[0] = max(peak[0], me.memory_info().rss)
workers_rss = [c.memory_info().rss for c in me.children(recursive=True)
               if c.cmdline() and "resource_tracker" not in " ".join(c.cmdline())]
print(json.dumps({{"base": base, "peak": peak[0], "growth": peak[0] - base,
                  "workers_rss": workers_rss}}))
"""


def _child(variant, n, workers, scratch):
    out = os.path.join(scratch, f"rss-{variant.replace(' ', '_')}-{n}")
    code = RSS_CHILD.format(here=HERE, variant=variant, n=n, workers=workers, out=out)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=scratch, timeout=900)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out + "-warm", ignore_errors=True)
    if proc.returncode:
        raise RuntimeError(f"{variant}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parent_rss(repeat, workers, scratch):
    names = ["ours hdf5", "ours hdf5-single", "joblib + h5py", "joblib stacked + h5py",
             "ProcessPoolExecutor + h5py"]
    raw = {name: [] for name in names}
    for rep in range(repeat):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            raw[name].append(_child(name, N_RSS, workers, scratch)["growth"])
    return raw


def worker_rss(repeat, workers, scratch):
    raw = {}
    for name in ["ours hdf5", "ours hdf5-single", "joblib + h5py"]:
        for n in (100, 1000):
            raw[f"{name} {n} calls"] = [max(_child(name, n, workers, scratch)["workers_rss"])
                                        for _ in range(repeat)]
    return raw


# ---------------------------------------------------------------------------- shards
def shards(n, workers, scratch):
    from acme_core import ParallelMap, load

    out = os.path.join(scratch, "shards")
    start = time.perf_counter()
    with ParallelMap(workloads.tiny, range(n), storage="hdf5-shards", backend="joblib",
                     n_workers=workers, verbose=False, output_dir=out) as pmap:
        pmap.compute()
    elapsed = time.perf_counter() - start
    files = sum(len(names) for _, _, names in os.walk(out))
    start = time.perf_counter()
    values = load(out)
    load_s = time.perf_counter() - start
    assert [int(v[0]) for v in values] == list(range(n))
    shutil.rmtree(out, ignore_errors=True)
    return {"calls": n, "seconds": elapsed, "files": files, "load_seconds": load_s}


# ---------------------------------------------------------------------------- report
def table(raw):
    lines = ["| scenario | variant | median | ratio to best peer |", "|---|---|---|---|"]
    for scenario, unit, scale in (("percall", "s", 1), ("stacked", "s", 1),
                                  ("parent-rss", "MB", 1e-6)):
        if scenario not in raw:
            continue
        medians = {k: statistics.median(v) for k, v in raw[scenario].items()}
        peers = [v for k, v in medians.items() if not k.startswith("ours")]
        best = min(peers) if peers else None
        for name, value in medians.items():
            ratio = f"{value / best:.2f}x" if best else "-"
            lines.append(f"| {scenario} | {name} | {value * scale:.3f} {unit} | {ratio} |")
    if "worker-rss" in raw:
        for name, values in raw["worker-rss"].items():
            lines.append(f"| worker-rss | {name} | {statistics.median(values) / 1e6:.1f} MB | - |")
    if "shards" in raw:
        s = raw["shards"]
        lines.append(f"| shards | {s['calls']} tiny calls | {s['seconds']:.1f} s, {s['files']} "
                     f"files, load {s['load_seconds']:.1f} s | - |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards-calls", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 10,000 shard calls")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["timed", "parent-rss", "worker-rss", "shards"])
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.shards_calls = 3, 10_000
    only = set(args.only or ["timed", "parent-rss", "worker-rss", "shards"])
    scratch = tempfile.mkdtemp(prefix="acme_core_bench_")
    raw = {"meta": {"started": dt.datetime.now().isoformat(timespec="seconds"),
                    "python": platform.python_version(), "cpus": os.cpu_count(),
                    "workers": args.workers, "repeat": args.repeat,
                    "numpy": np.__version__}}
    try:
        warm(args.workers, scratch)
        if "timed" in only:
            raw.update(timed(args.repeat, args.workers, scratch))
        if "parent-rss" in only:
            raw["parent-rss"] = parent_rss(args.repeat, args.workers, scratch)
        if "worker-rss" in only:
            raw["worker-rss"] = worker_rss(max(1, args.repeat // 2), args.workers, scratch)
        if "shards" in only:
            raw["shards"] = shards(args.shards_calls, args.workers, scratch)
    finally:
        if _ppe is not None:
            _ppe.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    text = table(raw)
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    with open(path, "w") as fh:
        json.dump({**raw, "table": text}, fh, indent=1)
    print(f"\nraw numbers: {path}")


if __name__ == "__main__":
    main()
