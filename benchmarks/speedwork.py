"""Functions the speed benchmarks map (importable by name in every worker: loky, dask, SLURM
jobs get ``benchmarks/`` on their PYTHONPATH) and the RSS sampler they share."""

from __future__ import annotations

import contextlib
import os
import threading
import time


def add(x, y):
    """The tiny workload: ``f(x, y) = x + y``."""
    return x + y


#: A module constant, as real functions read them (1: the results stay those of ``add``).
SCALE = 1


def add_scaled(x, y):
    """``add`` as most real functions are written: reading a module constant. Its code names
    a global, so the run must read it to know it draws nothing (else 6 us a call of seeding)."""
    return (x + y) * SCALE


def nap(x):
    """The sleep workload: 10 ms of nothing."""
    time.sleep(0.01)
    return x


def pid(_=None):
    return os.getpid()


class RssSampler:
    """Peak RSS of this process and of the processes ``pids()`` names, sampled every
    ``interval`` s in a thread (used only in the untimed RSS pass: sampling costs CPU)."""

    def __init__(self, pids, interval=0.02):
        import psutil

        self._psutil, self._pids, self.interval = psutil, pids, interval
        self._me = psutil.Process()
        self._procs = {}
        self.base = self._me.memory_info().rss
        self.parent_peak = self.base
        self.worker_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self):
        ps = self._psutil
        self.parent_peak = max(self.parent_peak, self._me.memory_info().rss)
        try:
            wanted = set(self._pids())
        except Exception:  # noqa: BLE001 - a pool between two states: next sample
            wanted = set(self._procs)
        for p in wanted:
            if p not in self._procs:
                try:
                    self._procs[p] = ps.Process(p)
                except ps.Error:
                    continue
            with contextlib.suppress(ps.Error):
                self.worker_peak = max(self.worker_peak, self._procs[p].memory_info().rss)

    def _loop(self):
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
