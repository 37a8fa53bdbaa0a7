"""Backend ``"futures"``: calls run in a ``concurrent.futures.ProcessPoolExecutor``.

Examples
--------
>>> from acme_core import ParallelMap
>>> ParallelMap(abs, [-1, -2], write_worker_results=False, backend="futures",
...             verbose=False).compute()
[1, 2]
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from acme_core import ExecutorSpec, hookimpl
from acme_core.calls import CallBatch, PickledProgram, load_program, run_batch
from acme_core.executor import ExecutorSettings, FuturesExecutor, RunContext

_program: Any = None  # the run's program, set once per worker process


def _load(ref: PickledProgram) -> None:
    global _program
    _program = load_program(ref)


def _run(batch: CallBatch) -> Any:
    return run_batch(_program, batch)


class FuturesProcessExecutor(FuturesExecutor):
    """One process pool per run; the program travels once per worker (``initializer``)."""

    def __init__(self, settings: ExecutorSettings) -> None:
        super().__init__(settings)
        n = settings.n_workers
        self._n = multiprocessing.cpu_count() if n == "auto" else int(n)
        self._pool: ProcessPoolExecutor | None = None
        self._ref: PickledProgram | None = None

    @property
    def n_workers(self) -> int:
        return self._n

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self._n, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_load, initargs=(self._ref,))

    def start(self, run: RunContext) -> None:
        assert run.program_bytes is not None
        self._ref = PickledProgram(run.program_bytes, run.info.run_id, run.sys_path)
        self._pool = self._new_pool()

    def _submit_future(self, batch: CallBatch) -> Any:
        assert self._pool is not None
        try:
            return self._pool.submit(_run, batch)
        except BrokenProcessPool:  # a worker died: its siblings' calls come back as lost
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(_run, batch)

    def _is_lost_worker(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def cancel(self) -> None:
        super().cancel()
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()  # do not wait for calls nobody will collect
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@hookimpl
def acme_core_executors() -> list[ExecutorSpec]:
    """Backend ``"futures"``."""
    return [ExecutorSpec(
        name="futures", factory=FuturesProcessExecutor,
        description="concurrent.futures process pool (example outside plugin)",
        needs_pickle=True, parameters=("n_workers",),
        capabilities=frozenset({"processes", "kill-worker", "cancel", "imports-main"}))]
