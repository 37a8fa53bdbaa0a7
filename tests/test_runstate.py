"""A run's state is always true, told as a new user lives it: fix a function and re-run only
what needs it, change one keyword, compute() again on the same object, two ParallelMaps at
once, a ParallelMap that is never computed. Real processes: each script run is a fresh
interpreter (its own ``PYTHONHASHSEED``), calls run on joblib's worker processes, every
execution of a call leaves a file (so the tests count what really ran)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest

from acme_core import ParallelComputationError, ParallelMap, manifest
from acme_core.cli import run_status
from acme_core.output_dir import MARKER
from tests.helpers.funcs import broken_while_flagged

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRIALS_V1 = '''
import os, uuid

def analyse(trial, counts, gain):
    """One trial's spectrum (here: a number)."""
    open(os.path.join(counts, f"{trial}_{uuid.uuid4().hex}"), "w").close()
    if trial == 5:
        raise ValueError("trial 5 has no samples")
    return trial * gain
'''
# The fix: trial 5 no longer raises (and a comment) -- a new code version.
TRIALS_V2 = TRIALS_V1.replace('''    if trial == 5:
        raise ValueError("trial 5 has no samples")
''', '''    # trial 5 was recorded without samples: use its mean instead
''')

SCRIPT = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from trials import analyse
    from acme_core import ParallelComputationError, ParallelMap
    counts, out, options = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    gain = options.pop("gain", [1.0] * 20)
    pmap = ParallelMap(analyse, list(range(20)), counts, gain, output_dir=out,
                       backend="joblib", n_workers=2, **options)
    try:
        pmap.compute()
        print("RESULT ok")
    except ParallelComputationError as err:
        print("RESULT failed", err.failures.indices)
''')


def executions(counts) -> Counter:
    """How often each call index ran (one file per execution)."""
    return Counter(int(name.split("_")[0]) for name in os.listdir(counts))


class Story:
    """The user's folder: their module, their counter directory, their output_dir."""

    def __init__(self, base) -> None:
        self.code, self.counts, self.out = base / "code", base / "counts", base / "run"
        self.code.mkdir()
        self.counts.mkdir()

    def write(self, source: str) -> None:
        (self.code / "trials.py").write_text(source)

    def run(self, seed: str = "random", **options):
        """Run the user's script once in a new interpreter; returns (stdout, stderr, ran)."""
        before = executions(self.counts)
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": ROOT}
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(self.code), str(self.counts), str(self.out),
             json.dumps(options)], capture_output=True, text=True, env=env, timeout=600)
        assert "RESULT" in proc.stdout, proc.stderr
        return proc.stdout, proc.stderr, executions(self.counts) - before


@pytest.mark.slow
def test_new_user_fixes_the_function_and_reruns_only_the_failed_trial(tmp_path):
    story = Story(tmp_path)
    story.write(TRIALS_V1)
    out, err, ran = story.run(seed="1")
    assert "RESULT failed [5]" in out and sum(ran.values()) == 20

    story.write(TRIALS_V2)  # the fix
    out, err, ran = story.run(seed="2")
    assert "RESULT ok" in out
    assert ran == Counter({5: 1})  # exactly the failed call ran
    assert "19 of 20 results" in err and "earlier version of `analyse`" in err
    text, complete = run_status(str(story.out))
    assert complete and "done 20, failed 0, missing 0" in text
    assert "19 of the 20 results come from an earlier version" in text
    state = manifest.read(str(story.out))
    assert len(state.runs) == 2 and state.older_code == set(range(20)) - {5}

    out, err, ran = story.run(seed="3", rerun="changed")  # the 19 older results too
    assert "RESULT ok" in out and ran == Counter({i: 1 for i in range(20) if i != 5})
    assert manifest.read(str(story.out)).older_code == set()
    with h5py.File(os.path.join(story.out, "analyse.h5"), "r") as h5:
        assert [h5[f"comp_{i}"]["result_0"][0] for i in range(20)] == list(range(20))


def test_after_the_fix_rerun_changed_runs_every_call(tmp_path):
    story = Story(tmp_path)
    story.write(TRIALS_V1)
    assert "RESULT failed [5]" in story.run()[0]
    story.write(TRIALS_V2)
    out, err, ran = story.run(rerun="changed")
    assert "RESULT ok" in out and ran == Counter({i: 1 for i in range(20)})
    assert "earlier version" in err and "19 result(s)" in err
    out, err, ran = story.run(rerun="all")
    assert "RESULT ok" in out and ran == Counter({i: 1 for i in range(20)})


def test_a_changed_split_keyword_reruns_exactly_the_calls_it_touches(tmp_path):
    story = Story(tmp_path)
    story.write(TRIALS_V2)
    out, _, ran = story.run()
    assert "RESULT ok" in out and sum(ran.values()) == 20
    gain = [1.0] * 10 + [2.0] * 10  # only calls 10-19 get another gain
    out, err, ran = story.run(gain=gain)
    assert "RESULT ok" in out
    assert ran == Counter({i: 1 for i in range(10, 20)})
    assert "'gain' (10 calls)" in err
    with h5py.File(os.path.join(story.out, "analyse.h5"), "r") as h5:
        assert [h5[f"comp_{i}"]["result_0"][0] for i in range(20)] == [
            i * g for i, g in enumerate(gain)]  # never the old gain's results
    out, err, ran = story.run(gain=gain)  # unchanged: nothing runs, and the log says so
    assert "RESULT ok" in out and not ran and "Nothing to run" in err


@pytest.mark.slow
def test_the_seven_code_edits_are_detected_on_resume(tmp_path):
    """Each edit makes 2*x into 3*x outside the function's own bytecode; a resume after it
    never mixes silently: it warns with the count, and rerun="changed" recomputes."""
    from tests.helpers.code_edits import EDITS

    for edit, (v1, v2) in EDITS.items():
        base = tmp_path / edit
        base.mkdir()
        for k, source in ((1, v1), (2, v2)):
            script = textwrap.dedent(f'''
                import sys
                sys.path.insert(0, {str(base / f"v{k}")!r})
                import mod
                from acme_core import ParallelMap
                ParallelMap(mod.TARGET, [1, 2, 3], output_dir={str(base / "run")!r},
                            backend="threads", n_workers=1, verbose=False).compute()
            ''')
            (base / f"v{k}").mkdir()
            (base / f"v{k}" / "mod.py").write_text(source)
            proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                  text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
            assert proc.returncode == 0, proc.stderr
        assert "3 of 3 results" in proc.stderr, f"{edit}: not detected: {proc.stderr}"
        state = manifest.read(str(base / "run"))
        assert state.older_code == {0, 1, 2}, edit


def test_a_set_argument_run_resumes_in_an_interpreter_with_another_hash_seed(tmp_path):
    # Set iteration order (and pickle/repr of a set) depends on PYTHONHASHSEED: an
    # unchanged run with a set argument could never be resumed.
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "tagged.py").write_text(textwrap.dedent('''
        import os, uuid
        CHANNELS = {"theta", "alpha", "beta", "gamma", "delta", "lfp", "spikes", "eeg"}
        def tagged(x, counts, flags, channels):
            open(os.path.join(counts, f"{x}_{uuid.uuid4().hex}"), "w").close()
            if x == 17 and os.path.exists(os.path.join(flags, "broken")):
                raise ValueError("not yet")
            return x * len(channels & CHANNELS)
    '''))
    script = textwrap.dedent('''
        import sys
        sys.path.insert(0, sys.argv[1])
        from tagged import tagged
        from acme_core import ParallelMap
        names = {"theta", "alpha", "beta", "gamma", "delta", "lfp", "spikes", "eeg", "meg"}
        ParallelMap(tagged, list(range(20)), sys.argv[2], sys.argv[3], names,
                    output_dir=sys.argv[4], backend="joblib", n_workers=2).compute()
    ''')
    flags, counts, out = tmp_path / "flags", tmp_path / "counts", tmp_path / "run"
    flags.mkdir()
    counts.mkdir()
    (flags / "broken").touch()
    runs = []
    for seed in ("11", "12"):
        proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "code"),
                               str(counts), str(flags), str(out)],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": ROOT, "PYTHONHASHSEED": seed})
        runs.append(proc)
        (flags / "broken").unlink(missing_ok=True)
    assert runs[0].returncode != 0 and "1/20 tasks failed" in runs[0].stderr
    assert runs[1].returncode == 0, runs[1].stderr
    assert executions(counts) == Counter({**{i: 1 for i in range(20)}, 17: 2})
    assert "earlier version" not in runs[1].stderr  # same code, whatever the seed


@pytest.mark.parametrize("backend", ["joblib", "dask", "slurm"])
def test_compute_again_on_the_same_object_is_a_recorded_run(request, tmp_path, backend):
    options = {"n_workers": 2}
    if backend == "slurm":
        request.getfixturevalue("slurm")
        options["setup_interactive"] = False
    if backend in ("dask", "slurm"):
        request.getfixturevalue("no_dask_client_left")
    flags, counts, out = tmp_path / "flags", tmp_path / "counts", tmp_path / "run"
    flags.mkdir()
    counts.mkdir()
    (flags / "broken").touch()
    pmap = ParallelMap(broken_while_flagged, list(range(20)), str(flags), str(counts),
                       output_dir=str(out), backend=backend, **options)
    with pytest.raises(ParallelComputationError):
        pmap.compute()
    assert "done 19, failed 1, missing 0" in run_status(str(out))[0]
    (flags / "broken").unlink()  # the fix
    pmap.compute()
    assert executions(counts) == Counter({**{i: 1 for i in range(20)}, 17: 2})
    text, complete = run_status(str(out))
    assert complete and "done 20, failed 0, missing 0" in text
    pmap.compute(debug=True)  # a finished run: says so, runs nothing, and is recorded
    assert executions(counts)[3] == 1
    state = manifest.read(str(out))
    assert sorted(state.runs) == [1, 2, 3] and sorted(state.ends) == [1, 2, 3]
    assert [state.ends[k]["ran"] for k in (1, 2, 3)] == [20, 1, 0]
    assert state.runs[3]["debug"] is True
    log = Path(pmap.logfile).read_text()
    assert log.count("This is acme-core") == 3 and "Nothing to run" in log
    assert "Parallel computation failed: 1/20 tasks failed" in log  # the failure summary
    assert log.count(" calls/s ") == 3  # every run's log ends with its figures


def test_a_parallel_map_constructed_and_dropped_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pmap = ParallelMap(broken_while_flagged, list(range(4)), str(tmp_path), str(tmp_path),
                       logfile=True, backend="joblib")
    assert pmap.output_dir.startswith(str(tmp_path)) and pmap.results_container
    del pmap
    explicit = ParallelMap(broken_while_flagged, [1], str(tmp_path), str(tmp_path),
                           output_dir=str(tmp_path / "mine"), backend="joblib")
    assert explicit.results_container == str(tmp_path / "mine" / "broken_while_flagged.h5")
    del explicit
    assert os.listdir(tmp_path) == []


def test_two_parallel_maps_alive_at_once_keep_their_own_logs(tmp_path):
    counts = tmp_path / "counts"
    counts.mkdir()
    first = ParallelMap(broken_while_flagged, [1, 2], str(tmp_path), str(counts),
                        output_dir=str(tmp_path / "a"), backend="joblib", n_workers=1)
    second = ParallelMap(broken_while_flagged, [1, 2, 3], str(tmp_path), str(counts),
                         output_dir=str(tmp_path / "b"), backend="joblib", n_workers=1)
    first.compute()
    second.compute()
    first.compute()
    a, b = Path(first.logfile).read_text(), Path(second.logfile).read_text()
    assert str(tmp_path / "a") in a and str(tmp_path / "b") not in a
    assert str(tmp_path / "b") in b and str(tmp_path / "a") not in b
    assert a.count("This is acme-core") == 2 and b.count("This is acme-core") == 1
    assert "3 calls of" in b and "3 calls of" not in a


def test_a_failed_runs_log_ends_with_the_failure_summary_then_the_figures(tmp_path):
    (tmp_path / "broken").touch()
    pmap = ParallelMap(broken_while_flagged, list(range(20)), str(tmp_path), str(tmp_path),
                       output_dir=str(tmp_path / "run"), backend="joblib", n_workers=2,
                       verbose=False)
    with pytest.raises(ParallelComputationError):
        pmap.compute()
    lines = Path(pmap.logfile).read_text().splitlines()
    assert "ERROR: Parallel computation failed: 1/20 tasks failed. First failure: call 17" \
        in lines[-2] and "ArithmeticError: bad input 17" in lines[-2]
    assert "Failed calls: [17]" in lines[-2]
    assert "Run ended after" in lines[-1] and "19 of 20 calls finished, 1 failed" in lines[-1]
    assert "calls/s on 2 worker(s)" in lines[-1]


def test_a_sessions_elapsed_time_includes_writing_its_results(tmp_path, monkeypatch):
    """The log's closing line, the manifest's end line and status count the whole session:
    here a storage whose final writing takes 0.4 s (as copying a large single file does)
    after calls that take far less."""
    import time as clock

    from acme_core.storage.hdf5_single import HDF5SingleStorage

    real_finish = HDF5SingleStorage.finish

    def slow_finish(self):
        clock.sleep(0.4)  # stands for a long final copy; what is measured is its presence
        return real_finish(self)

    monkeypatch.setattr(HDF5SingleStorage, "finish", slow_finish)
    out = str(tmp_path / "run")
    pmap = ParallelMap(abs, list(range(-5, 5)), storage="hdf5-single", output_dir=out,
                       verbose=False)
    pmap.compute()
    end = [e for e in map(json.loads, Path(out, manifest.NAME).read_text().splitlines())
           if "end" in e and "s" not in e][-1]
    assert end["elapsed"] >= end["calls_elapsed"] + 0.4
    last = Path(pmap.logfile).read_text().splitlines()[-1]
    shown = float(last.split("Run ended after ", 1)[1].split(" s:", 1)[0])
    assert shown >= 0.4 and f"in the {end['calls_elapsed']:.1f} s the calls ran" in last
    from acme_core.runstatus import read_status

    status = read_status(out)
    assert status.state == "complete" and status.elapsed >= 0.4


# ------------------------------------------------------------------ checks before any work
def test_a_backend_check_rejects_a_partition_in_the_constructor(register, tmp_path,
                                                                  monkeypatch):
    """ExecutorSpec.check: how a SLURM plugin answers partition= when the ParallelMap is
    made (here a test plugin with a fixed list of partitions)."""
    from acme_threads import ThreadExecutor

    from acme_core import ExecutorSpec, hookimpl

    asked = []

    def check(settings):
        asked.append(settings.partition)
        valid = ["8GBS", "16GBL"]
        if settings.partition not in ("auto", *valid):
            raise ValueError(f"`partition={settings.partition!r}` is not a partition of this "
                             f"cluster; valid: {', '.join(valid)}.")

    class Plugin:
        @hookimpl
        def acme_core_executors(self):
            return [ExecutorSpec(name="checked", factory=ThreadExecutor, needs_pickle=False,
                                 parameters=("n_workers", "partition"), check=check)]

    register(Plugin(), "checked-test")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="valid: 8GBS, 16GBL"):
        ParallelMap(broken_while_flagged, [1, 2], str(tmp_path), str(tmp_path),
                    partition="NOPE", backend="checked")
    assert asked == ["NOPE"] and os.listdir(tmp_path) == []
    pmap = ParallelMap(broken_while_flagged, [1, 2], str(tmp_path), str(tmp_path),
                       partition="8GBS", backend="checked", verbose=False)
    assert len(pmap.compute()) == 2


def test_a_result_that_does_not_fit_result_shape_stops_the_run_at_once(tmp_path):
    from acme_core.errors import ResultShapeError
    from tests.helpers.funcs import slow_count

    counts = tmp_path / "counts"
    counts.mkdir()
    pmap = ParallelMap(slow_count, list(range(50)), str(counts), 1.0, result_shape=(None, 3),
                       output_dir=str(tmp_path / "run"), backend="joblib", n_workers=2,
                       verbose=False)
    with pytest.raises(ResultShapeError, match="result_shape` expects \\(3,\\)"):
        pmap.compute()
    stopped = time.time()
    first_result = min(os.stat(counts / n).st_mtime for n in os.listdir(counts)) + 1.0
    assert stopped - first_result < 5, f"stopped {stopped - first_result:.1f} s after"
    assert sum(executions(counts).values()) < 10  # not 50
    print(f"stopped {stopped - first_result:.1f} s after the first result, "
          f"{sum(executions(counts).values())} of 50 calls started")


def test_function_names_are_safe_in_file_names(tmp_path):
    paths = ParallelMap(lambda x: x + 1, [1, 2], output_dir=str(tmp_path / "run"),
                        backend="joblib", n_workers=1, verbose=False).compute()
    assert [os.path.basename(p) for p in paths] == ["lambda__0.h5", "lambda__1.h5"]
    assert os.path.isfile(tmp_path / "run" / "lambda_.h5")


# ------------------------------------------------------------------ damaged state, the lock
def test_a_damaged_manifest_or_marker_is_a_clear_error_naming_the_file(tmp_path):
    from acme_core.manifest import ManifestError

    out = tmp_path / "run"
    ParallelMap(broken_while_flagged, [1, 2], str(tmp_path), str(tmp_path), output_dir=str(out),
                backend="joblib", verbose=False).compute()
    manifest_text = (out / manifest.NAME).read_text()
    (out / manifest.NAME).write_text('{"func": "broken_wh')  # torn first line
    with pytest.raises(ManifestError, match=f"{out / manifest.NAME}.*damaged.*new output_dir"):
        ParallelMap(broken_while_flagged, [1, 2], str(tmp_path), str(tmp_path),
                    output_dir=str(out))
    (out / manifest.NAME).write_text(manifest_text)
    (out / MARKER).write_text("{")
    with pytest.raises(ManifestError, match=f"{MARKER} is damaged"):
        ParallelMap(broken_while_flagged, [1, 2], str(tmp_path), str(tmp_path),
                    output_dir=str(out))
    (out / manifest.NAME).unlink()
    (out / MARKER).write_text("")
    with pytest.raises(ManifestError, match=f"{MARKER} is damaged"):
        ParallelMap(broken_while_flagged, [1, 2], str(tmp_path), str(tmp_path),
                    output_dir=str(out))


@pytest.mark.slow
def test_a_second_concurrent_run_on_one_output_dir_is_refused_naming_the_first(tmp_path):
    from acme_core.output_dir import RunLockedError
    from tests.helpers.funcs import slow_count

    counts, out = tmp_path / "counts", tmp_path / "run"
    counts.mkdir()
    script = textwrap.dedent('''
        import sys
        from acme_core import ParallelMap
        from tests.helpers.funcs import slow_count
        ParallelMap(slow_count, list(range(40)), sys.argv[1], 1.0, output_dir=sys.argv[2],
                    backend="joblib", n_workers=1, verbose=False).compute()
    ''')
    first = subprocess.Popen([sys.executable, "-c", script, str(counts), str(out)],
                             env={**os.environ, "PYTHONPATH": ROOT}, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (manifest.exists(str(out)) and manifest.read(str(out)).done):
            assert first.poll() is None and time.monotonic() < deadline  # still computing
            time.sleep(0.05)
        second = ParallelMap(slow_count, list(range(40)),
                             str(counts), 1.0, output_dir=str(out), backend="joblib")
        with pytest.raises(RunLockedError, match=f"process {first.pid} on"):
            second.compute()
        os.killpg(first.pid, signal.SIGKILL)  # the first run dies: its lock is stale
        first.wait(timeout=60)
        done_before = manifest.read(str(out)).done
        ran_before = executions(counts)
        second.compute()
        assert len(manifest.read(str(out)).done) == 40 and 0 < len(done_before) < 40
        ran = executions(counts) - ran_before
        assert not set(ran) & done_before and set(ran) | done_before == set(range(40))
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)


def test_rerun_is_validated_like_every_parameter(tmp_path):
    with pytest.raises(ValueError, match="`rerun` has to be one of 'missing', 'changed', 'all'"):
        ParallelMap(broken_while_flagged, [1], str(tmp_path), str(tmp_path), rerun="failed")
    with pytest.raises(TypeError, match="`rerun`"):
        ParallelMap(broken_while_flagged, [1], str(tmp_path), str(tmp_path), rerun=True)
    assert os.listdir(tmp_path) == []


def test_argument_keys_are_per_call_and_match_their_digests():
    import numpy as np

    from acme_core.arguments import build_call_plan
    from acme_core.callkeys import ArgumentKeys, combine

    def g(x, y, z=3):
        return x

    for args, kwargs in ((([1, 2, 3], np.arange(3.0)), {"z": {"b", "a"}}), ((7, 8), {})):
        plan = build_call_plan(g, args, kwargs, 3, 1024)
        keys = ArgumentKeys.of(plan)
        assert [keys.key(i) for i in range(3)] == [combine(keys.of_call(i)) for i in range(3)]
    changed = ArgumentKeys.of(build_call_plan(g, ([1, 2, 4], np.arange(3.0)), {"z": {"a", "b"}},
                                              3, 1024))
    before = ArgumentKeys.of(build_call_plan(g, ([1, 2, 3], np.arange(3.0)), {"z": {"b", "a"}},
                                             3, 1024))
    assert [changed.key(i) == before.key(i) for i in range(3)] == [True, True, False]


@pytest.mark.parametrize("values", [list(range(40)), tuple(x / 4 for x in range(40)),
                                    range(100, 140), [x % 3 == 0 for x in range(40)]])
def test_a_calls_digest_is_the_same_whichever_calls_are_hashed_with_it(values):
    """A done record hashes the calls of its batches together (by slices of their runs of
    consecutive calls, or one by one): each call's digest must not depend on that."""
    from acme_core.callkeys import digests_for, element_digests, scheme_of

    alone = element_digests(values, len(values))
    assert len({row.tobytes() for row in alone}) == len(set(values))  # a digest per value
    scheme = scheme_of(values, len(values))
    rng = np.random.default_rng(0)
    for calls in (np.arange(40), np.arange(5, 17), np.r_[0:9, 20:31, 39], np.r_[3, 5, 7, 8],
                  rng.permutation(40), np.array([12]), np.zeros(0, dtype=np.int64)):
        assert (digests_for(values, scheme, calls) == alone[calls]).all(), calls


@pytest.mark.parametrize("storage", ["hdf5", "hdf5-single", "hdf5-shards", "pickle"])
@pytest.mark.parametrize("shape", [None, (None,)])
def test_every_storage_holds_only_the_new_results_of_calls_run_again(tmp_path, storage, shape):
    """Re-running calls whose arguments changed replaces their results in every storage:
    load() never returns a result of the old argument values."""
    from acme_core import load
    from tests.helpers.funcs import slow_count

    if storage == "pickle" and shape is not None:
        pytest.skip("pickle storage has no result_shape (ACME)")
    out = str(tmp_path / "run")
    options = {"output_dir": out, "storage": storage, "backend": "joblib", "n_workers": 2,
               "verbose": False, "result_shape": shape}
    ParallelMap(slow_count, list(range(8)), str(tmp_path), 0.0, **options).compute()
    new = list(range(4)) + [100 + i for i in range(4, 8)]
    ParallelMap(slow_count, new, str(tmp_path), 0.0, **options).compute()
    results = load(out)
    assert [float(np.ravel(r)[0]) for r in results] == [x + 1000 for x in new]


def test_two_parallel_maps_computing_at_once_in_threads_keep_their_own_logs(tmp_path):
    import threading

    from tests.helpers.funcs import slow_count

    maps = [ParallelMap(slow_count, list(range(n)), str(tmp_path), 0.2,
                        output_dir=str(tmp_path / name), backend="joblib", n_workers=1)
            for name, n in (("a", 6), ("b", 7))]
    threads = [threading.Thread(target=m.compute) for m in maps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    a, b = (Path(m.logfile).read_text() for m in maps)
    assert "6 calls of" in a and "7 calls of" not in a and str(tmp_path / "b") not in a
    assert "7 calls of" in b and "6 calls of" not in b and str(tmp_path / "a") not in b
    assert "6 of 6 calls finished" in a and "7 of 7 calls finished" in b


def test_a_result_recorded_done_but_gone_runs_again_with_one_warning(tmp_path):
    counts, out = tmp_path / "counts", tmp_path / "run"
    counts.mkdir()
    run = dict(output_dir=str(out), backend="joblib", n_workers=2)
    from tests.helpers.funcs import slow_count

    ParallelMap(slow_count, list(range(6)), str(counts), 0.0, verbose=False, **run).compute()
    os.remove(out / "slow_count_payload" / "slow_count_3.h5")  # lost behind our back
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f'''
            from acme_core import ParallelMap
            from tests.helpers.funcs import slow_count
            ParallelMap(slow_count, list(range(6)), {str(counts)!r}, 0.0, output_dir={str(out)!r},
                        backend="joblib", n_workers=2).compute()
        ''')], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT},
        timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert executions(counts)[3] == 2 and sum(executions(counts).values()) == 7
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "missing or unreadable result" in warnings[0]
    assert "calls 3)" in warnings[0]


def test_a_done_record_holds_every_calls_columns_and_reads_back(tmp_path):
    from acme_core.arguments import build_call_plan
    from acme_core.callkeys import ArgumentKeys
    from acme_core.records import BatchOutcome, CallOutcome
    from acme_core.session import Session

    def g(x, y, z=3):
        return x

    keys = ArgumentKeys.of(build_call_plan(g, ([1, 2, 3], ['a"b', "c", "d"]), {"z": 5}, "auto",
                                           1024))
    writer = manifest.ManifestWriter(str(tmp_path), {"func": "g", "n_inputs": 3})
    session = Session.after(None, "c0de", keys, writer)
    session.seen(CallOutcome(2, None, None, 0.25, 'host"name:12/slurm-7', attempt=2))
    session.seen_batch(BatchOutcome((0, 1), [None, None], [0.5, 0.125], {}, "w:1", 1, 100.0))
    writer.done([2, 0, 1])
    writer.close()
    line = (tmp_path / manifest.NAME).read_text().splitlines()[-1]
    record = json.loads(line)
    assert line == json.dumps(record, separators=(",", ":"))  # the digests spliced in as JSON
    assert list(record) == ["s", "i", "run", "code", "n", "attempt", "worker", "end", "t0",
                            "dur", "a"]
    assert record["i"] == [2, 1, 0, 2] and record["n"] == [1, 2]
    assert record["attempt"] == [2, 1] and record["worker"] == ['host"name:12/slurm-7', "w:1"]
    assert record["dur"] == [250000, 500000, 125000] and record["t0"] == [None, 100.0]
    assert record["run"] == 1 and record["code"] == "c0de"
    assert record["a"]["y"] == "".join(keys.split_of(i)["y"] for i in (2, 0, 1))
    state = manifest.read(str(tmp_path))
    assert state.done == {0, 1, 2} and state.n_missing == 0
    assert [state.calls[i]["a"] for i in range(3)] == [keys.split_of(i) for i in range(3)]
    assert {state.calls[i]["code"] for i in range(3)} == {"c0de"}


def _format2_run(tmp_path: Path) -> str:
    """A copy of tests/data/format2_run: 6 calls of ``f(x, y, z=3)`` (x = 0..5, y = 0.0..5.0,
    z = 3) into hdf5, written by the previous version (manifest format 2, a line per call,
    and the bookkeeping files under their earlier, visible names)."""
    import shutil

    out = str(tmp_path / "old_run")
    shutil.copytree(os.path.join(ROOT, "tests", "data", "format2_run"), out)
    return out


def test_a_format_2_manifest_is_read_and_its_run_resumed_call_by_call(tmp_path):
    from acme_core import load
    from tests.helpers.funcs import f

    out = _format2_run(tmp_path)
    state = manifest.read(out)
    assert state.header["acme_core_manifest"] == 2 and state.done == set(range(6))
    assert state.calls[3]["a"] == {"x": "94167688d4d1", "y": "773ad70635f2"}
    text, complete = run_status(out)
    assert complete and "done 6, failed 0, missing 0" in text

    xs, ys = list(range(6)), np.arange(6.0)
    ParallelMap(f, xs, ys, z=3, output_dir=out, n_workers=2, verbose=False).compute()
    state = manifest.read(out)
    assert state.runs[2]["todo"] == 0 and state.runs[2]["kept"] == 6  # same keys as before
    ys[4] = 40.0
    ParallelMap(f, xs, ys, z=3, output_dir=out, n_workers=2, verbose=False).compute()
    state = manifest.read(out)
    assert state.runs[3]["todo"] == 1 and state.done == set(range(6))
    assert [float(np.ravel(v)[0]) for v in load(out)] == [(x + y) * 3 for x, y in zip(xs, ys, strict=True)]
    ParallelMap(f, xs, ys, z=3, output_dir=out, n_workers=2, verbose=False).compute()
    assert manifest.read(out).runs[4]["todo"] == 0  # the mixed file (format 2, then 3) too
