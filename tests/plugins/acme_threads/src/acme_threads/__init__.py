"""A test-only outside plugin: backend ``"threads"``, a thread pool in the calling process.

It is installed like any third-party plugin (its own distribution, entry point group
``acme_core``) and proves that an outside package adds a backend without touching the core.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from acme_core import ExecutorSpec, hookimpl
from acme_core.calls import CallBatch, run_batch
from acme_core.executor import ExecutorSettings, FuturesExecutor, RunContext


class ThreadExecutor(FuturesExecutor):
    """Runs batches on a thread pool; arguments are passed as they are, never pickled."""

    def __init__(self, settings: ExecutorSettings) -> None:
        super().__init__(settings)
        n = settings.n_workers
        self._n = 2 if n == "auto" else int(n)
        self._pool: ThreadPoolExecutor | None = None
        self._program: Any = None

    @property
    def n_workers(self) -> int:
        return self._n

    def start(self, run: RunContext) -> None:
        self._pool = ThreadPoolExecutor(self._n, thread_name_prefix="acme-threads")
        self._program = run.program

    def _submit_future(self, batch: CallBatch) -> Any:
        assert self._pool is not None
        return self._pool.submit(run_batch, self._program, batch)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@hookimpl
def acme_core_executors() -> list[ExecutorSpec]:
    """Backend ``"threads"``."""
    return [ExecutorSpec(name="threads", factory=ThreadExecutor,
                         description="a thread pool in the calling process (test plugin)",
                         needs_pickle=False, parameters=("n_workers",),
                         capabilities=frozenset({"cancel"}))]
