"""Replaying one call in this process: same arguments, same random streams, pdb works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import acme_core
from acme_core import ParallelComputationError, ParallelMap, payloads
from acme_core.replays import DIRNAME, replay_hint
from tests.helpers.repro_funcs import draw_then_fail, draws

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _failed_run(tmp_path):
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    with pytest.raises(ParallelComputationError) as err:
        ParallelMap(draw_then_fail, list(range(6)), str(marks), output_dir=str(out),
                    n_workers=2, verbose=False).compute()
    assert err.value.failures.indices == [3]
    assert f"`acme_core.replay({str(out)!r}, 3)` runs just call 3 here" in str(err.value)
    (ran,) = [p for p in marks.iterdir() if p.name.startswith("draw_3_")]
    return out, marks, ran.read_text()


def test_replay_in_another_process_reproduces_the_failure_and_its_draws_under_pdb(tmp_path):
    out, marks, drawn_in_run = _failed_run(tmp_path)
    script = textwrap.dedent(f"""
        import io, pdb, sys
        sys.path.insert(0, {REPO!r})
        import acme_core
        try:
            acme_core.replay({str(out)!r}, 3)
        except ValueError as exc:
            print("RAISED", exc)
            commands = io.StringIO("p x\\np repr(value)\\nwhere\\nq\\n")
            printed = io.StringIO()
            debugger = pdb.Pdb(stdin=commands, stdout=printed)
            debugger.use_rawinput = False
            debugger.reset()
            debugger.interaction(None, exc.__traceback__)
            print("PDB", printed.getvalue())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"RAISED bad trial 3: drew {drawn_in_run}" in done.stdout
    pdb_text = done.stdout.split("PDB", 1)[1]
    assert "(Pdb) 3\n" in pdb_text                       # p x: the call's own argument
    assert f"'{drawn_in_run}'" in pdb_text               # p repr(value): the run's draws
    assert "draw_then_fail" in pdb_text                  # where: in the user's function
    replayed = [p for p in marks.iterdir() if p.name.startswith("draw_3_")]
    assert len(replayed) == 2 and {p.read_text() for p in replayed} == {drawn_in_run}


def test_every_call_replays_with_the_values_it_returned(tmp_path):
    out = str(tmp_path / "run")
    got = ParallelMap(draws, list(range(30)), output_dir=out, write_pickle=True,
                      n_workers=2, verbose=False).compute()
    stored = acme_core.load(out)
    assert len(got) == 30
    for i in (0, 7, 29):
        assert np.array_equal(acme_core.replay(out, i), stored[i])


def test_replay_reads_only_its_own_call_when_split_arguments_are_large(tmp_path, monkeypatch):
    monkeypatch.setattr(payloads, "INLINE_SPLIT_BYTES", 0)   # as if each trial were big
    out = str(tmp_path / "run")
    trials = [np.full(1000, float(i)) for i in range(12)]
    ParallelMap(np.sum, trials, output_dir=out, verbose=False).compute()
    replay_dir = os.path.join(out, DIRNAME)
    assert sorted(os.listdir(replay_dir)) == ["calls.bin", "calls.idx.npy", "program.pkl",
                                              "run.json"]
    assert os.path.getsize(os.path.join(replay_dir, "program.pkl")) < 20_000  # no trial in it
    assert acme_core.replay(out, 11) == 11_000.0


def test_large_plain_arguments_are_kept_for_replay_as_the_arguments_themselves(tmp_path,
                                                                              monkeypatch):
    """Large split arguments of plain scalars are kept as one pickle of the arguments (not
    one per call); a later compute() whose arguments are not plain keeps per-call bytes
    instead, and the form it replaces is gone, so replay reads what the latest run ran."""
    monkeypatch.setattr(payloads, "INLINE_SPLIT_BYTES", 0)   # as if the lists were big
    out = str(tmp_path / "run")
    ParallelMap(pow, [1, 2, 3, 4], [2.0, 3.0, 0.5, 1.0], output_dir=out,
                verbose=False).compute()
    replay_dir = os.path.join(out, DIRNAME)
    assert sorted(os.listdir(replay_dir)) == ["calls.columns.pkl", "program.pkl", "run.json"]
    assert [acme_core.replay(out, i) for i in range(4)] == [1.0, 8.0, 3 ** 0.5, 4.0]

    bases = [np.array([1.0, 2.0]), np.array([2.0]), np.array([3.0]), np.array([4.0])]
    ParallelMap(pow, bases, [2.0, 3.0, 0.5, 1.0], output_dir=out,  # changed: all run again
                verbose=False).compute()
    assert sorted(os.listdir(replay_dir)) == ["calls.bin", "calls.idx.npy", "program.pkl",
                                              "run.json"]
    assert acme_core.replay(out, 0).tolist() == [1.0, 4.0]


def test_large_plain_arguments_of_a_local_list_class_replay_from_another_process(tmp_path,
                                                                               monkeypatch):
    """The replay file keeps plain lists, not the user's class (here one defined in a
    function, which pickle cannot name): the run starts, and a new process replays it."""
    monkeypatch.setattr(payloads, "INLINE_SPLIT_BYTES", 0)

    class Trials(list):
        pass

    out = str(tmp_path / "run")
    ParallelMap(pow, Trials([1, 2, 3]), 2, output_dir=out, verbose=False).compute()
    replay_dir = os.path.join(out, DIRNAME)
    assert sorted(os.listdir(replay_dir)) == ["calls.columns.pkl", "program.pkl", "run.json"]
    code = f"import acme_core; print(acme_core.replay({out!r}, 2))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "9", done.stderr


def test_pmap_replay_in_memory_draws_what_the_run_drew():
    pmap = ParallelMap(draws, list(range(10)), write_worker_results=False, verbose=False)
    got = pmap.compute()
    assert all(np.array_equal(pmap.replay(i), got[i]) for i in range(10))


def test_replay_leaves_the_run_and_the_callers_generators_unchanged(tmp_path):
    out = str(tmp_path / "run")
    ParallelMap(draws, list(range(4)), output_dir=out, write_pickle=True,
                verbose=False).compute()
    before = {n: os.path.getmtime(os.path.join(out, n)) for n in os.listdir(out)}
    np.random.seed(3)
    expected_next = np.random.rand()
    np.random.seed(3)
    acme_core.replay(out, 2)
    assert np.random.rand() == expected_next
    assert {n: os.path.getmtime(os.path.join(out, n)) for n in os.listdir(out)} == before


def test_replay_of_a_call_that_does_not_exist_or_of_no_run_says_so(tmp_path):
    out = str(tmp_path / "run")
    ParallelMap(pow, [1, 2], 2, output_dir=out, verbose=False).compute()
    with pytest.raises(IndexError, match="calls 0 to 1; there is no call 2"):
        acme_core.replay(out, 2)
    with pytest.raises(TypeError, match="call index has to be an integer"):
        acme_core.replay(out, "1")
    with pytest.raises(FileNotFoundError, match="no replayable acme-core run"):
        acme_core.replay(str(tmp_path), 0)


def test_replay_record_holds_the_runs_entropy(tmp_path):
    out = str(tmp_path / "run")
    ParallelMap(pow, [1, 2], 2, seed=1234, output_dir=out, verbose=False).compute()
    with open(os.path.join(out, DIRNAME, "run.json")) as fh:
        assert json.load(fh)["entropy"] == "1234"
    assert replay_hint(out, 1) == f"acme_core.replay({out!r}, 1)"


def test_the_failure_message_of_an_in_memory_run_names_pmap_replay(tmp_path):
    with pytest.raises(ParallelComputationError, match=r"`pmap.replay\(3\)` runs just call 3"):
        ParallelMap(draw_then_fail, list(range(5)), str(tmp_path), write_worker_results=False,
                    verbose=False).compute()


def test_a_program_that_cannot_be_pickled_is_replayed_in_its_own_process_only(tmp_path):
    import threading

    lock = threading.Lock()

    def guarded(x, lock):
        with lock:
            return x * 2
    out = str(tmp_path / "run")
    pmap = ParallelMap(guarded, [1, 2, 3], lock, backend="threads", output_dir=out,
                       verbose=False)
    pmap.compute()
    assert pmap.replay(2) == 6
    with pytest.raises(RuntimeError, match=r"could not keep its program for replay \(.*lock"):
        acme_core.replay(out, 2)


def test_status_and_the_failures_table_print_the_line_replaying_each_failed_call(tmp_path):
    out, _, _ = _failed_run(tmp_path)
    from acme_core.cli import run_status

    hint = f"acme_core.replay({str(out)!r}, 3)"
    text, complete = run_status(str(out))
    assert not complete and f"replay a failed call here (pdb works):\n  {hint}" in text
    pmap = ParallelMap(draw_then_fail, list(range(6)), str(tmp_path / "marks"),
                       write_worker_results=False, verbose=False)
    with pytest.raises(ParallelComputationError):
        pmap.compute()
    assert str(pmap.failures).endswith("replay a failed call here (pdb works):\n"
                                       "  pmap.replay(3)")
