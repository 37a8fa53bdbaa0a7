"""Failures, retries, resume and cancellation, with real processes."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter

import h5py
import psutil
import pytest

from acme_core import ParallelComputationError, ParallelMap, hookimpl
from acme_core.cli import main as cli_main
from tests.helpers.funcs import broken_while_flagged, fail_first_attempt, slow_count
from tests.helpers.manifests import done_calls
from tests.helpers.scripts import start_script
from tests.helpers.waiting import wait_for


def executions(counter_dir) -> Counter:
    """How often each call index ran (one file per execution)."""
    return Counter(int(name.split("_")[0]) for name in os.listdir(counter_dir))


@pytest.fixture
def dirs(tmp_path):
    flags, counts = tmp_path / "flags", tmp_path / "counts"
    flags.mkdir()
    counts.mkdir()
    return str(flags), str(counts)


def test_one_percent_failing_keeps_the_rest_and_rerun_runs_only_the_failed(tmp_path, dirs):
    flags, counts = dirs
    open(os.path.join(flags, "broken"), "w").close()
    out = str(tmp_path / "run")
    pmap = ParallelMap(broken_while_flagged, list(range(500)), flags, counts, output_dir=out,
                       verbose=False)
    with pytest.raises(ParallelComputationError) as info:
        pmap.compute()
    failing = [17, 117, 217, 317, 417]
    assert info.value.failures.indices == failing
    assert {row.exc_type for row in info.value.failures} == {"ArithmeticError"}
    assert str(info.value).startswith("Parallel computation failed: 5/500 tasks failed")
    assert "ArithmeticError: bad input 17" in str(info.value)
    with h5py.File(pmap.results_container, "r") as h5:
        for i in set(range(500)) - set(failing):
            assert h5[f"comp_{i}"]["result_0"][0] == i * i

    os.remove(os.path.join(flags, "broken"))  # the "fix"
    before = executions(counts)
    again = ParallelMap(broken_while_flagged, list(range(500)), flags, counts, output_dir=out,
                        verbose=False)
    paths = again.compute()
    assert executions(counts) - before == Counter(failing)  # only the 5 ran again
    assert len(paths) == 500
    with h5py.File(again.results_container, "r") as h5:
        assert [h5[f"comp_{i}"]["result_0"][0] for i in failing] == [i * i for i in failing]


def _refuse_odd(x):
    if x % 2:
        raise ValueError(f"odd input {x} is not allowed.")  # a message ending in a period
    return x


def _ask_odd(x):
    if x % 2:
        raise ValueError(f"is {x} odd?")  # a message ending in a question mark
    return x


def test_the_error_message_ends_each_sentence_once(tmp_path):
    with pytest.raises(ParallelComputationError) as err:
        ParallelMap(_refuse_odd, [0, 1, 2, 3], output_dir=str(tmp_path / "o"),
                    verbose=False).compute()
    text = str(err.value)
    assert "raised ValueError: odd input 1 is not allowed. Failed calls: [1, 3]." in text
    assert ".." not in text
    with pytest.raises(ParallelComputationError) as err:
        ParallelMap(_ask_odd, [0, 1], output_dir=str(tmp_path / "q"), verbose=False).compute()
    assert "raised ValueError: is 1 odd? Failed calls: [1]." in str(err.value)


def test_compute_again_on_the_same_object_reruns_only_failed_calls(tmp_path, dirs):
    flags, counts = dirs
    open(os.path.join(flags, "broken"), "w").close()
    pmap = ParallelMap(broken_while_flagged, list(range(30)), flags, counts,
                       output_dir=str(tmp_path / "run"), verbose=False)
    with pytest.raises(ParallelComputationError):
        pmap.compute()
    os.remove(os.path.join(flags, "broken"))
    pmap.compute()
    assert executions(counts)[17] == 2 and executions(counts)[3] == 1


def test_retries_rerun_calls_whose_function_raised(tmp_path):
    marker = tmp_path / "m"
    marker.mkdir()
    results = ParallelMap(fail_first_attempt, [1, 2, 3], str(marker), retries=1,
                          write_worker_results=False, verbose=False).compute()
    assert results == [1, 2, 3]


def test_without_retries_a_transient_failure_is_reported_with_its_attempts(tmp_path):
    marker = tmp_path / "m"
    marker.mkdir()
    with pytest.raises(ParallelComputationError) as info:
        ParallelMap(fail_first_attempt, [1, 2], str(marker), write_worker_results=False,
                    verbose=False).compute()
    rows = info.value.failures
    assert rows.indices == [0, 1]
    assert all(r.attempts == 1 and r.kind == "error" and r.exc_type == "RuntimeError" for r in rows)
    assert all(r.worker.split(":")[1].isdigit() for r in rows)  # host:pid of the worker


def test_killed_worker_is_logged_and_its_calls_resubmitted(tmp_path, caplog):
    from tests.helpers.funcs import kill_once

    with caplog.at_level(logging.WARNING, logger="acme_core"):
        results = ParallelMap(kill_once, list(range(6)), str(tmp_path),
                              write_worker_results=False, n_workers=2).compute()
    assert results == [100 + i for i in range(6)]
    # the call that killed its worker is named, with the signal that killed it
    lost = [r.getMessage() for r in caplog.records if "killed its worker" in r.getMessage()]
    assert len(lost) == 1 and lost[0].startswith("call 2 killed its worker") and "SIGKILL" in lost[0]


def test_a_different_function_never_mixes_and_changed_arguments_rerun_per_call(tmp_path, dirs,
                                                                              caplog):
    # Until the per-call argument keys, any changed argument refused the whole run
    # ("different arguments"); now only the calls whose own arguments changed run again.
    flags, counts = dirs
    out = str(tmp_path / "run")
    ParallelMap(broken_while_flagged, [1, 2, 3], flags, counts, output_dir=out,
                verbose=False).compute()
    with caplog.at_level(logging.INFO, logger="acme_core"):
        paths = ParallelMap(broken_while_flagged, [1, 2, 4], flags, counts,
                            output_dir=out).compute()
    assert executions(counts) == Counter({1: 1, 2: 1, 3: 1, 4: 1})  # only the changed call
    with h5py.File(paths[2], "r") as h5:
        assert h5["result_0"][()] == 16  # 4*4, never the old 3*3
    assert any("'x' (1 call)" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="different function name"):
        ParallelMap(slow_count, [1, 2, 3], counts, output_dir=out)
    with pytest.raises(ValueError, match="different number of calls"):
        ParallelMap(broken_while_flagged, [1, 2, 3, 4], flags, counts, output_dir=out)


def test_resuming_a_complete_run_runs_nothing(tmp_path, dirs):
    flags, counts = dirs
    out = str(tmp_path / "run")
    first = ParallelMap(broken_while_flagged, [1, 2, 3], flags, counts, output_dir=out,
                        verbose=False).compute()
    again = ParallelMap(broken_while_flagged, [1, 2, 3], flags, counts, output_dir=out,
                        verbose=False).compute()
    assert first == again
    assert executions(counts) == Counter({1: 1, 2: 1, 3: 1})


def test_status_command_shows_counts_and_failures(tmp_path, dirs, capsys):
    flags, counts = dirs
    open(os.path.join(flags, "broken"), "w").close()
    out = str(tmp_path / "run")
    with pytest.raises(ParallelComputationError):
        ParallelMap(broken_while_flagged, list(range(20)), flags, counts, output_dir=out,
                    verbose=False).compute()
    assert cli_main(["status", out]) == 1
    text = capsys.readouterr().out
    assert "done 19, failed 1, missing 0" in text
    assert "ArithmeticError: bad input 17" in text and "x=17" in text


class Recorder:
    """A plugin that records lifecycle events."""

    def __init__(self):
        self.events = []

    @hookimpl
    def acme_core_run_started(self, run):
        self.events.append(("started", run.n_calls))

    @hookimpl
    def acme_core_call_finished(self, run, outcome):
        self.events.append(("finished", outcome.index))

    @hookimpl
    def acme_core_call_failed(self, run, outcome):
        self.events.append(("failed", outcome.index, outcome.failure.exc_type))

    @hookimpl
    def acme_core_run_finished(self, run, summary):
        self.events.append(("done", summary.n_done, summary.n_failed))


def test_lifecycle_hooks_observe_a_run(register):
    from tests.helpers.funcs import fail_on_3

    rec = register(Recorder(), "recorder")
    with pytest.raises(ParallelComputationError):
        ParallelMap(fail_on_3, [1, 2, 3, 4], write_worker_results=False, backend="threads",
                    verbose=False).compute()
    assert rec.events[0] == ("started", 4) and rec.events[-1] == ("done", 3, 1)
    assert sorted(e[1] for e in rec.events if e[0] == "finished") == [0, 1, 3]
    assert ("failed", 2, "ValueError") in rec.events


def test_progress_bar_when_asked(capsys):
    ParallelMap(abs, [-1, -2, -3], write_worker_results=False, backend="threads",
                progress=True).compute()
    err = capsys.readouterr().err
    assert "3/3" in err and "call" in err


# ---------------------------------------------------------------------- real interruptions
SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from acme_core import ParallelMap
from tests.helpers.funcs import slow_count

if __name__ == "__main__":
    pmap = ParallelMap(slow_count, list(range({n})), {counts!r}, {seconds}, output_dir={out!r},
                       n_workers=2, verbose=False)
    pmap.compute()
    print("ALL DONE")
"""


def _start(tmp_path, counts, n, seconds):
    out = str(tmp_path / "run")
    proc = start_script(tmp_path, "run_script", SCRIPT, n=n, counts=counts, seconds=seconds,
                        out=out)
    return proc, out


def _done_in_manifest(out) -> set[int]:
    return done_calls(out)


def test_parent_killed_at_half_resumes_only_missing_calls(tmp_path, dirs):
    _, counts = dirs
    n = 40
    proc, out = _start(tmp_path, counts, n, 0.1)
    assert wait_for(lambda: len(_done_in_manifest(out)) >= n // 2, 60), proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    done_before = _done_in_manifest(out)
    assert 0 < len(done_before) < n

    pmap = ParallelMap(slow_count, list(range(n)), counts, 0.1, output_dir=out, n_workers=2,
                       verbose=False)
    paths = pmap.compute()
    runs = executions(counts)
    assert all(runs[i] == 1 for i in done_before)  # no finished call ran again
    assert set(runs) == set(range(n))
    with h5py.File(pmap.results_container, "r") as h5:
        assert [h5[f"comp_{i}"]["result_0"][0] for i in range(n)] == [i + 1000 for i in range(n)]
    assert len(paths) == n


def test_sigint_stops_quickly_leaves_no_worker_and_keeps_results(tmp_path, dirs):
    _, counts = dirs
    proc, out = _start(tmp_path, counts, 40, 1.0)
    assert wait_for(lambda: len(_done_in_manifest(out)) >= 2, 60), proc.communicate()
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert "ALL DONE" not in stdout
    assert "KeyboardInterrupt" in stderr and "only the missing calls run" in stderr
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive
    done = _done_in_manifest(out)
    assert done
    with h5py.File(os.path.join(out, "slow_count.h5"), "r") as h5:
        assert all(h5[f"comp_{i}"]["result_0"][0] == i + 1000 for i in done)
