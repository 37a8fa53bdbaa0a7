"""The conformance suite every backend runs (see :mod:`acme_core.testing`)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from typing import Any, ClassVar

import numpy as np
import pytest

from .. import ParallelComputationError, ParallelMap
from . import funcs


def _run_with_timeout(function: Any, timeout: float) -> Any:
    """Run ``function()`` in a thread; fail the test if it has not returned in time (a
    backend that loses a call must never hang a run silently)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = function()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"compute() did not return within {timeout} s: the backend lost calls "
                    f"or never reported them")
    if "error" in box:
        raise box["error"]
    return box.get("value")


class BackendConformance:
    """Behaviours every backend must show; subclass it and set ``backend``.

    Class attributes
    ----------------
    backend : str
        The backend's name.
    backend_options : dict
        Passed as ``backend_options``.
    n_workers : int
        Workers to ask for (small: the suite runs on a 2-core CI machine).
    timeout : float
        Seconds one ``compute()`` may take before the test fails.

    Notes
    -----
    A subclass may override :meth:`pmap` (add the backend's own keywords) and
    :meth:`live_workers`: what of the backend's workers is alive now, as a set of
    hashable ids. The leftover test waits (15 s at most) until nothing is alive that was
    not alive before its run. The default lists this process's living child processes;
    backends whose workers are not children of the test process (SLURM jobs, remote pods)
    return their own ids, e.g. SLURM job ids.

    Sharing workers across tests: starting workers for every test is slow on a batch
    system, so a subclass may start them once per class (a class-scoped fixture the runs
    attach to, as ACME users do with ``slurm_cluster_setup``). Tests marked
    ``acme_own_workers`` (the leftover test: it runs with ``stop_client=True`` and checks
    what its run leaves) must not attach to shared workers: a sharing subclass stops them
    before such a test (its fixture asks
    ``request.node.get_closest_marker("acme_own_workers")``) and starts them again for the
    next test that needs them. Subclasses that share nothing need not care.

    Examples
    --------
    >>> from acme_core.testing import BackendConformance
    >>> class TestThreads(BackendConformance):
    ...     backend = "threads"
    >>> TestThreads.backend
    'threads'
    """

    backend: ClassVar[str] = ""
    backend_options: ClassVar[dict[str, Any]] = {}
    n_workers: ClassVar[int] = 2
    timeout: ClassVar[float] = 120.0

    # ------------------------------------------------------------------ helpers
    def pmap(self, func: Any, *args: Any, **kwargs: Any) -> ParallelMap:
        """A ParallelMap on this backend (quiet, small)."""
        kwargs.setdefault("verbose", False)
        kwargs.setdefault("n_workers", self.n_workers)
        return ParallelMap(func, *args, backend=self.backend,
                           backend_options=dict(self.backend_options) or None, **kwargs)

    def compute(self, pmap: ParallelMap) -> Any:
        """``pmap.compute()`` with the suite's time limit."""
        return _run_with_timeout(pmap.compute, self.timeout)

    def live_workers(self) -> set[Any]:
        """Ids of the backend's workers alive now (default: pids of living child processes
        of this process; zombies count as gone). Override when workers are not children
        of the test process, e.g. to return the backend's SLURM job ids."""
        import psutil

        alive = set()
        for child in psutil.Process().children(recursive=True):
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    alive.add(child.pid)
            except psutil.NoSuchProcess:
                continue
        return alive

    # ------------------------------------------------------------------ distribution
    def test_seed_example_in_memory(self, acme_backend_spec: Any) -> None:
        pmap = self.pmap(funcs.f, [2, 4, 6, 8], 4, write_worker_results=False)
        assert self.compute(pmap) == [18, 24, 30, 36]

    def test_keyword_split_and_broadcast_array(self, acme_backend_spec: Any) -> None:
        grid = np.arange(4.0).reshape(2, 2)  # 2-D: every call gets all of it
        pmap = self.pmap(funcs.scaled_row, [1, 2, 3], grid, write_worker_results=False)
        assert [r.tolist() for r in self.compute(pmap)] == [(grid * k).tolist() for k in (1, 2, 3)]
        pmap = self.pmap(funcs.f, 0, 4, z=[3, 4, 5, 6], write_worker_results=False)
        assert self.compute(pmap) == [12, 16, 20, 24]

    def test_identical_calls_all_run(self, acme_backend_spec: Any, tmp_path: Any) -> None:
        pmap = self.pmap(funcs.fail_until_marker, 1, str(tmp_path), -1, n_inputs=6,
                         write_worker_results=False)
        assert self.compute(pmap) == [2] * 6
        assert len([n for n in os.listdir(tmp_path) if n.startswith("ran_")]) == 6

    def test_results_come_back_in_call_order(self, acme_backend_spec: Any) -> None:
        pmap = self.pmap(funcs.finish_out_of_order, list(range(20)), write_worker_results=False)
        assert self.compute(pmap) == list(range(20))

    def test_every_storage_holds_the_same_results(self, acme_backend_spec: Any, acme_storage: str,
                                                  tmp_path: Any) -> None:
        from ..reading import load

        on_disk = acme_storage != "memory"
        pmap = self.pmap(funcs.f, [2, 4, 6, 8], 4, storage=acme_storage,
                         write_worker_results=on_disk, output_dir=str(tmp_path / "run"))
        returned = self.compute(pmap)
        results = load(str(tmp_path / "run")) if on_disk else returned
        assert [int(np.ravel(r)[0]) for r in results] == [18, 24, 30, 36]

    # ------------------------------------------------------------------ failures
    def test_a_failed_call_keeps_the_others(self, acme_backend_spec: Any, tmp_path: Any) -> None:
        pmap = self.pmap(funcs.fail_on, list(range(8)), 5, output_dir=str(tmp_path / "run"))
        with pytest.raises(ParallelComputationError) as info:
            self.compute(pmap)
        assert info.value.failures.indices == [5]
        assert info.value.failures[0].exc_type == "ValueError"
        from ..errors import MissingResultsWarning
        from ..reading import load

        with pytest.warns(MissingResultsWarning, match="call 5"):
            results, missing = load(str(tmp_path / "run"), return_missing=True)
        assert [int(np.ravel(results[i])[0]) for i in (0, 1, 7)] == [0, 10, 70]
        assert missing == [5] and results[5] is None

    def test_retries_rerun_a_raising_call(self, acme_backend_spec: Any, tmp_path: Any) -> None:
        pmap = self.pmap(funcs.fail_until_marker, [0, 1, 2], str(tmp_path), 1, retries=2,
                         write_worker_results=False)
        open(os.path.join(tmp_path, "fixed"), "w").close()
        assert self.compute(pmap) == [1, 2, 3]

    @pytest.mark.acme_capability("kill-worker")
    def test_a_killed_worker_loses_no_call(self, acme_backend_spec: Any, tmp_path: Any) -> None:
        pmap = self.pmap(funcs.kill_worker_once, list(range(8)), str(tmp_path), 3,
                         write_worker_results=False)
        assert self.compute(pmap) == list(range(8))
        assert os.path.exists(tmp_path / "killed_3")

    def test_resume_runs_only_failed_calls(self, acme_backend_spec: Any, tmp_path: Any) -> None:
        out = str(tmp_path / "run")
        counts = tmp_path / "counts"
        counts.mkdir()
        with pytest.raises(ParallelComputationError):
            self.compute(self.pmap(funcs.fail_until_marker, list(range(6)), str(counts), 4,
                                   output_dir=out))
        open(counts / "fixed", "w").close()
        self.compute(self.pmap(funcs.fail_until_marker, list(range(6)), str(counts), 4,
                               output_dir=out))
        runs = Counter(int(n.split("_")[1]) for n in os.listdir(counts) if n.startswith("ran_"))
        assert runs == Counter({0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 1})

    # ------------------------------------------------------------------ life cycle
    @pytest.mark.acme_capability("cancel")
    def test_ctrl_c_cancels_pending_calls(self, acme_backend_spec: Any, tmp_path: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            pytest.skip("Ctrl-C can only be simulated from the main thread")
        pmap = self.pmap(funcs.nap, list(range(40)), 0.3, output_dir=str(tmp_path / "run"))
        timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                pmap.compute()
        finally:
            timer.cancel()
        assert time.monotonic() - start < 40 * 0.3 / 2  # far less than running everything
        again = self.pmap(funcs.nap, list(range(40)), 0.0, output_dir=str(tmp_path / "other"))
        assert len(self.compute(again)) == 40  # the backend still works afterwards

    @pytest.mark.acme_capability("processes")
    @pytest.mark.acme_own_workers
    def test_no_worker_process_is_left(self, acme_backend_spec: Any) -> None:
        before = self.live_workers()
        with self.pmap(funcs.f, [1, 2, 3, 4], 1, write_worker_results=False,
                       stop_client=True) as pmap:
            assert self.compute(pmap) == [6, 9, 12, 15]
        deadline = time.monotonic() + 15
        while (left := self.live_workers() - before) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"workers left behind 15 s after the run: {sorted(left, key=str)}"
