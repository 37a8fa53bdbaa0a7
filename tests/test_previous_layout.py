"""A run folder written by an earlier acme-core, whose bookkeeping had names without the leading
dot (``acme_manifest.jsonl``, ``acme_run.json``, ``acme_run.lock``, ``acme_replay/``), still
resumes and answers ``status``, ``load()`` and ``replay(i)``; the run that takes it up gives
the entries their hidden names (acme_core.previous_names)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter

import pytest

import acme_core
from acme_core import MissingResultsWarning, ParallelComputationError, ParallelMap, load
from acme_core.cli import main as cli_main
from acme_core.output_dir import LOCK, MARKER, RunLockedError, cleanup_old_runs
from acme_core.replays import DIRNAME
from tests.helpers.funcs import broken_while_flagged

#: What earlier versions named them, written out: the test must not derive them from the code
#: it checks.
OLD = {".acme_manifest.jsonl": "acme_manifest.jsonl", ".acme_run.json": "acme_run.json",
       ".acme_replay": "acme_replay"}
N = 40  # call 17 fails while the flag is set


def executions(counts) -> Counter:
    """How often each call index ran (broken_while_flagged leaves one file per execution)."""
    return Counter(int(name.split("_")[0]) for name in os.listdir(counts))


def _pmap(flags, counts, out) -> ParallelMap:
    return ParallelMap(broken_while_flagged, list(range(N)), str(flags), str(counts),
                       output_dir=str(out), backend="joblib", n_workers=2, verbose=False)


@pytest.fixture
def old_run(tmp_path):
    """A real run with call 17 failed, its bookkeeping renamed to the earlier names."""
    flags, counts, out = tmp_path / "flags", tmp_path / "counts", tmp_path / "run"
    flags.mkdir()
    counts.mkdir()
    (flags / "broken").touch()
    with pytest.raises(ParallelComputationError):
        _pmap(flags, counts, out).compute()
    assert set(OLD) <= set(os.listdir(out))  # the names this test renames are ours
    assert {MARKER, DIRNAME} <= set(OLD)
    for new, old in OLD.items():
        os.rename(out / new, out / old)
    assert not [n for n in os.listdir(out) if n.startswith(".")]
    return flags, counts, out


def test_a_previous_layout_run_answers_status_load_and_replay_as_it_is(old_run, capsys):
    flags, counts, out = old_run
    before = sorted(os.listdir(out))
    assert cli_main(["status", str(out)]) == 1  # not complete
    text = capsys.readouterr().out
    assert f"{N} calls" in text and "state     failed" in text
    assert f"done {N - 1}, failed 1, missing 0" in text and "ArithmeticError" in text
    with pytest.warns(MissingResultsWarning):
        values = load(str(out))
    assert values[17] is None
    assert [v[0] for i, v in enumerate(values) if i != 17] == [
        i * i for i in range(N) if i != 17]
    assert acme_core.replay(str(out), 3) == 9
    with pytest.raises(ArithmeticError, match="bad input 17"):
        acme_core.replay(str(out), 17)
    assert sorted(os.listdir(out)) == before  # readers rename nothing


def test_resuming_a_previous_layout_run_runs_only_its_failed_call(old_run, capsys):
    flags, counts, out = old_run
    ran_before = executions(counts)
    (flags / "broken").unlink()  # the fix
    pmap = _pmap(flags, counts, out)
    pmap.compute()
    assert executions(counts) - ran_before == Counter({17: 1})
    names = set(os.listdir(out))
    assert set(OLD) <= names and not names & set(OLD.values())
    assert LOCK not in names and "acme_run.lock" not in names
    assert cli_main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "state     complete" in text and f"done {N}, failed 0, missing 0" in text
    assert [v[0] for v in load(str(out))] == [i * i for i in range(N)]
    assert acme_core.replay(str(out), 17) == 17 * 17


def test_a_live_previous_layout_lock_refuses_the_run_and_a_stale_one_is_taken_over(old_run):
    flags, counts, out = old_run
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE)  # a live process, as an earlier version's run
    try:
        (out / "acme_run.lock").write_text(json.dumps(
            {"host": socket.gethostname(), "pid": holder.pid, "started": "2026-11-30T10:15:00"}))
        before = sorted(os.listdir(out))
        with pytest.raises(RunLockedError, match=f"process {holder.pid} on"):
            _pmap(flags, counts, out).compute()
        assert sorted(os.listdir(out)) == before  # nothing renamed, nothing ran
    finally:
        holder.communicate(timeout=60)  # stdin closed: it ends
    ran_before = executions(counts)
    (flags / "broken").unlink()
    _pmap(flags, counts, out).compute()  # its process is gone: the lock is stale
    assert executions(counts) - ran_before == Counter({17: 1})
    names = set(os.listdir(out))
    assert set(OLD) <= names and not names & {*OLD.values(), "acme_run.lock", LOCK}


def test_housekeeping_counts_a_previous_layout_run_as_ours(old_run, tmp_path):
    *_, out = old_run
    aged = tmp_path / "ACME_20261101-101500-123456"
    os.rename(out, aged)
    assert cleanup_old_runs(str(tmp_path), 0) == [str(aged)]
