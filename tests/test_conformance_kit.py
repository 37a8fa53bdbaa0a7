"""The conformance kit catches broken backends (run in a separate pytest process)."""

from __future__ import annotations

BROKEN = '''
from concurrent.futures import ThreadPoolExecutor

from acme_core import ExecutorSpec, hookimpl, plugins
from acme_core.calls import run_batch
from acme_core.executor import FuturesExecutor
from acme_core.testing import BackendConformance


class DropsOne(FuturesExecutor):
    """Returns every batch's outcome without that of call 2."""

    def start(self, run):
        self._pool, self._program = ThreadPoolExecutor(2), run.program

    def _submit_future(self, batch):
        return self._pool.submit(lambda: run_batch(self._program, batch).without({2}))

    def close(self):
        self._pool.shutdown()


class SwallowsOne(DropsOne):
    """Never reports call 2 at all (bypasses the base class's bookkeeping)."""

    def collect(self, timeout):
        return [b.without({2}) for b in super().collect(timeout)]


class Plugin:
    @hookimpl
    def acme_core_executors(self):
        return [ExecutorSpec(name="drops-one", factory=DropsOne, needs_pickle=False),
                ExecutorSpec(name="swallows-one", factory=SwallowsOne, needs_pickle=False)]


plugins.get_plugin_manager().register(Plugin(), name="broken-test-plugin")


class TestDropsOne(BackendConformance):
    backend = "drops-one"


class TestSwallowsOne(BackendConformance):
    backend = "swallows-one"
    timeout = 5
'''


def test_kit_fails_a_backend_that_drops_a_result(pytester):
    pytester.makepyfile(test_broken=BROKEN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "seed_example",
                                           "-W", "ignore::UserWarning")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "FAILED test_broken.py::TestDropsOne::test_seed_example_in_memory" in out
    assert "Parallel computation failed: 1/4 tasks failed" in out
    assert "returned no outcome for this call" in out
    assert "FAILED test_broken.py::TestSwallowsOne::test_seed_example_in_memory" in out
    assert "did not return within 5 s" in out


def test_kit_passes_a_correct_backend(pytester):
    pytester.makepyfile(test_good="""
        from acme_core.testing import BackendConformance

        class TestThreads(BackendConformance):
            backend = "threads"
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "seed or order",
                                           "-W", "ignore::UserWarning")
    result.assert_outcomes(passed=2)
