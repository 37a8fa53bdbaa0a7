"""The joblib (loky) executor.

The run's program (function, broadcast arguments, storage writer) is written once to a
temporary file that every worker loads once per run, so broadcast arguments cost one
transfer per worker, not one per call. Batches are submitted to a loky process pool that
stays alive between runs (idle workers exit after ``idle_timeout`` seconds).

The pool is our own, not loky's process-wide reusable executor: that singleton is shared
with ``joblib.Parallel``, and resizing or re-configuring it from here would break a user's
joblib code running in the same interpreter.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from typing import Any

from acme_core.calls import CallBatch, ProgramFile, run_batch
from acme_core.executor import ExecutorSettings, FuturesExecutor, RunContext

log = logging.getLogger("acme_joblib")

OPTIONS = {
    "idle_timeout": "seconds an idle worker stays alive for the next run (default 300)",
}


#: Thread pools of numerical libraries, limited in workers so n workers do not each start
#: one thread per core (joblib does the same).
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

_pool_lock = threading.Lock()
_shared: dict[str, Any] = {"pool": None, "key": None}


def usable_cores() -> int:
    """Cores this process may use (affinity and cgroup limits respected)."""
    from joblib import cpu_count

    return max(1, cpu_count(only_physical_cores=False))


def _thread_limits(n_workers: int) -> dict[str, str]:
    per_worker = str(max(1, usable_cores() // n_workers))
    return {var: per_worker for var in _THREAD_VARIABLES if var not in os.environ}


def shared_pool(n_workers: int, idle_timeout: float) -> Any:
    """The process pool of this interpreter, started anew when it broke or its size changed."""
    from joblib.externals.loky.process_executor import ProcessPoolExecutor

    with _pool_lock:
        pool, key = _shared["pool"], (n_workers, idle_timeout)
        usable = pool is not None and not (pool._flags.broken or pool._flags.shutdown)
        if usable and _shared["key"] == key:
            return pool
        if usable:
            pool.shutdown(wait=False, kill_workers=True)
        pool = ProcessPoolExecutor(max_workers=n_workers, timeout=idle_timeout,
                                   env=_thread_limits(n_workers))
        _shared.update(pool=pool, key=key)
        return pool


def shutdown_pool() -> None:
    """Kill this interpreter's worker processes (``stop_client=True``, Ctrl-C)."""
    with _pool_lock:
        pool, _shared["pool"] = _shared["pool"], None
    if pool is not None:
        pool.shutdown(wait=True, kill_workers=True)


class JoblibExecutor(FuturesExecutor):
    """Runs batches in loky worker processes.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> ParallelMap(abs, [-1, -2], write_worker_results=False, backend="joblib",
    ...             n_workers=2, verbose=False).compute()
    [1, 2]
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        super().__init__(settings)
        timeout = settings.options.get("idle_timeout", 300)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(
                f"backend_options['idle_timeout'] has to be a number of seconds > 0, not {timeout!r}.")
        self._timeout = timeout
        n = settings.n_workers
        self._n = usable_cores() if n == "auto" else int(n)
        self._pool: Any = None
        self._ref: ProgramFile | None = None

    @property
    def n_workers(self) -> int:
        return self._n

    def _get_pool(self) -> Any:
        return shared_pool(self._n, self._timeout)

    def start(self, run: RunContext) -> None:
        assert run.program_bytes is not None
        fd, path = tempfile.mkstemp(prefix=f"acme_core_{run.info.run_id}_", suffix=".pickle")
        with os.fdopen(fd, "wb") as fh:
            fh.write(run.program_bytes)
        self._ref = ProgramFile(path, run.info.run_id, run.sys_path)
        self._pool = self._get_pool()

    def _submit_future(self, batch: CallBatch) -> Any:
        if self._pool._flags.broken or self._pool._flags.shutdown:
            log.warning("The worker pool broke (a worker died); starting a fresh one.")
            self._pool = self._get_pool()
        return self._pool.submit(run_batch, self._ref, batch)

    def _is_lost_worker(self, exc: BaseException) -> bool:
        from joblib.externals.loky.process_executor import BrokenProcessPool

        return isinstance(exc, BrokenProcessPool)

    def cancel(self) -> None:
        """Ctrl-C: drop pending batches and kill the workers, so nothing keeps running."""
        super().cancel()
        self.shutdown()

    def close(self) -> None:
        if self._ref is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._ref.path)
            self._ref = None
        if self.settings.stop_client is True:
            self.shutdown()

    def shutdown(self) -> None:
        self._pool = None
        shutdown_pool()
