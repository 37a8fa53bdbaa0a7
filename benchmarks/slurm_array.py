"""Backend "slurm-array" against bare dask-jobqueue on the local SLURM (never run by CI).

Workload: N calls of ``time.sleep(S)`` (default 2,000 x 0.2 s) on the cluster's slots
(8 on the local SLURM): the ideal is N x S / slots (50 s). Measured, one after another in
the same process and on the same cluster:

- ``slurm-array``: ``ParallelMap(..., backend="slurm-array")``, results in memory, from
  ``compute()`` to the last result (pilot array, job start latency and all included);
- ``dask-jobqueue``: a bare ``SLURMCluster`` of one-CPU workers, timed from
  ``cluster.scale(slots)`` (so its job start latency counts too) to the last result of
  ``client.map(..., pure=False)`` + ``gather``;
- ``submitit``: ``AutoExecutor.map_array`` (``nox -s benchmarks`` installs submitit), one
  array task per call as submitit makes them; it does not split an array that exceeds the
  site's ``MaxArraySize``, so with more calls than that its row reports sbatch's refusal.

Usage: ``python benchmarks/slurm_array.py [--calls 2000] [--seconds 0.2] [--slots 8]``.
Prints one line per variant with its wall time and its ratio to the ideal.
"""

from __future__ import annotations

import argparse
import tempfile
import time


def nap(x: int, seconds: float) -> int:
    """The benchmark's call."""
    time.sleep(seconds)
    return x


def ours(calls: int, seconds: float, slots: int) -> float:
    from acme_core import ParallelMap

    start = time.perf_counter()
    result = ParallelMap(nap, list(range(calls)), seconds, write_worker_results=False,
                         backend="slurm-array", n_workers=slots, verbose=False,
                         backend_options={"poll_interval": 5.0,
                                          "job_name": "acme-bench-array"}).compute()
    took = time.perf_counter() - start
    assert result == list(range(calls))
    return took


def bare_dask_jobqueue(calls: int, seconds: float, slots: int) -> float:
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    logs = tempfile.mkdtemp(prefix="bench_djq_")
    with SLURMCluster(cores=1, processes=1, memory="1GB", walltime="00:30:00",
                      interface="lo", log_directory=logs, job_name="acme-bench-djq",
                      scheduler_options={"dashboard_address": ":0"}) as cluster, \
            Client(cluster) as client:
        start = time.perf_counter()
        cluster.scale(slots)
        futures = client.map(nap, range(calls), seconds=seconds, pure=False)
        result = client.gather(futures)
        took = time.perf_counter() - start
    assert result == list(range(calls))
    return took


def submitit_map_array(calls: int, seconds: float, slots: int) -> float | None:
    try:
        import submitit
    except ImportError:
        return None
    folder = tempfile.mkdtemp(prefix="bench_submitit_")
    executor = submitit.AutoExecutor(folder=folder)
    executor.update_parameters(slurm_array_parallelism=slots, timeout_min=30)
    start = time.perf_counter()
    jobs = executor.map_array(nap, range(calls), [seconds] * calls)
    result = [job.result() for job in jobs]
    took = time.perf_counter() - start
    assert result == list(range(calls))
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=0.2)
    parser.add_argument("--slots", type=int, default=8)
    args = parser.parse_args()
    ideal = args.calls * args.seconds / args.slots
    print(f"{args.calls} calls of {args.seconds} s on {args.slots} slots: ideal {ideal:.1f} s")
    for name, bench in (("slurm-array", ours), ("dask-jobqueue", bare_dask_jobqueue),
                        ("submitit map_array", submitit_map_array)):
        others = other_jobs()
        try:
            took = bench(args.calls, args.seconds, args.slots)
        except Exception as exc:  # noqa: BLE001 - a peer's refusal is a result to print
            print(f"{name:20s} failed: {type(exc).__name__}: {str(exc).strip()[:300]}")
            continue
        if took is None:
            print(f"{name:20s} not installed")
        else:
            print(f"{name:20s} {took:7.1f} s   {took / ideal:5.2f} x ideal   ({others} other "
                  f"jobs in the queue at its start: a shared cluster makes it wait)")


def other_jobs() -> int:
    """Jobs (array tasks counted one by one) in squeue that are not this benchmark's."""
    import subprocess

    out = subprocess.run(["squeue", "-h", "-r", "-o", "%j"], capture_output=True, text=True,
                         timeout=60).stdout.split()
    return sum(1 for name in out if not name.startswith("acme-bench"))


if __name__ == "__main__":
    main()
