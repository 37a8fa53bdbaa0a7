"""The output directory: naming, refusing others' data, housekeeping that only ever touches
our own runs (ACME deleted every ``ACME_*`` folder past the age threshold; fixed)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat

import pytest

from acme_core import ParallelMap
from acme_core.output_dir import MARKER, check_available, cleanup_old_runs, create, default_path
from tests.helpers.funcs import f

NOW = dt.datetime(2026, 11, 30, 12, 0, 0)


def _age(path, days, now=NOW):
    """Set the modification time of ``path`` and its entries to ``days`` before ``now``."""
    stamp = (now - dt.timedelta(days=days)).timestamp()
    for entry in [*path.iterdir(), path]:
        os.utime(entry, (stamp, stamp), follow_symlinks=False)


def _run_dir(base, age_days, marked=True, name=None, modified_days=None):
    stamp = (NOW - dt.timedelta(days=age_days)).strftime("%Y%m%d-%H%M%S-%f")
    path = base / (name or f"ACME_{stamp}")
    path.mkdir()
    (path / "data.txt").write_text("results")
    if marked:
        (path / MARKER).write_text(json.dumps({"acme_core_run": 1}))
    _age(path, age_days if modified_days is None else modified_days)
    return path


def test_default_path_is_a_timestamped_folder_in_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = default_path()
    assert os.path.dirname(path) == str(tmp_path)
    assert re.fullmatch(r"ACME_\d{8}-\d{6}-\d{6}", os.path.basename(path))
    assert not os.path.exists(path)


def test_cleanup_removes_only_our_runs_older_than_the_threshold(tmp_path):
    old, new = _run_dir(tmp_path, 10), _run_dir(tmp_path, 2)
    removed = cleanup_old_runs(str(tmp_path), 5, now=NOW)
    assert removed == [str(old)] and not old.exists() and new.exists()


def test_cleanup_judges_age_by_the_last_modification_as_acme(tmp_path):
    # Until now the age was the time in the folder's name: a run made 10 days ago and
    # resumed yesterday was deleted as 10 days old.
    resumed = _run_dir(tmp_path, 10, modified_days=1)
    stale = _run_dir(tmp_path, 3, modified_days=8)
    assert cleanup_old_runs(str(tmp_path), 5, now=NOW) == [str(stale)]
    assert resumed.exists() and not stale.exists()


def test_cleanup_never_removes_a_run_whose_lock_is_held(tmp_path):
    from acme_core.output_dir import RunLock

    busy = _run_dir(tmp_path, 30)
    lock = RunLock(str(busy))
    lock.acquire()  # held by this (live) process
    _age(busy, 30)
    try:
        assert cleanup_old_runs(str(tmp_path), 0, now=NOW) == []
        assert busy.exists()
    finally:
        lock.release()
    assert cleanup_old_runs(str(tmp_path), 0, now=NOW) == [str(busy)]


def test_cleanup_zero_removes_all_our_runs(tmp_path):
    runs = [_run_dir(tmp_path, d) for d in (0, 1, 30)]
    assert sorted(cleanup_old_runs(str(tmp_path), 0, now=NOW)) == sorted(map(str, runs))
    assert os.listdir(tmp_path) == []


def test_cleanup_never_deletes_a_dir_without_our_marker(tmp_path):
    # ACME deleted every ACME_* folder (with threshold 0 it removed "ACME_keepme_recent")
    theirs = [_run_dir(tmp_path, 30, marked=False),
              _run_dir(tmp_path, 30, marked=False, name="ACME_keepme_recent"),
              _run_dir(tmp_path, 30, marked=True, name="ACME_not-a-timestamp")]
    (tmp_path / "ACME_file").write_text("a file, not a folder")
    elsewhere = _run_dir(tmp_path, 30, marked=True, name="results_2020")
    assert cleanup_old_runs(str(tmp_path), 0, now=NOW) == []
    assert all(p.exists() for p in [*theirs, elsewhere, tmp_path / "ACME_file"])


def test_cleanup_never_follows_a_symlink(tmp_path):
    target = _run_dir(tmp_path, 30, name="precious")
    stamp = (NOW - dt.timedelta(days=30)).strftime("%Y%m%d-%H%M%S-%f")
    os.symlink(target, tmp_path / f"ACME_{stamp}")
    assert cleanup_old_runs(str(tmp_path), 0, now=NOW) == []
    assert (target / "data.txt").exists()


def test_parallel_map_cleans_only_our_old_runs_before_the_new_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = tmp_path
    now = dt.datetime.now()
    old = base / f"ACME_{(now - dt.timedelta(days=9)).strftime('%Y%m%d-%H%M%S-%f')}"
    recent = base / f"ACME_{(now - dt.timedelta(days=1)).strftime('%Y%m%d-%H%M%S-%f')}"
    foreign = base / f"ACME_{(now - dt.timedelta(days=99)).strftime('%Y%m%d-%H%M%S-%f')}"
    for path in (old, recent, foreign):
        path.mkdir()
    (old / MARKER).write_text("{}")
    (recent / MARKER).write_text("{}")
    for path, days in ((old, 9), (recent, 1), (foreign, 99)):
        _age(path, days, now)
    with ParallelMap(f, [2, 4], 4, cleanup_threshold_days=5, backend="threads",
                     verbose=False) as pmap:
        pmap.compute()
    assert not old.exists() and recent.exists() and foreign.exists()
    assert os.path.isdir(pmap.output_dir) and os.path.dirname(pmap.output_dir) == str(base)


def test_output_dir_not_ours_and_not_empty_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        check_available(str(tmp_path / "data"))
    with pytest.raises(FileExistsError, match="not empty"):
        ParallelMap(f, [2, 4], 4, output_dir=str(tmp_path / "data"), verbose=False)
    assert os.listdir(tmp_path / "data") == ["keep.txt"]


def test_an_existing_empty_output_dir_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    with ParallelMap(f, [2, 4], 4, output_dir=str(tmp_path / "empty"), backend="threads",
                     verbose=False) as pmap:
        pmap.compute()
    assert {"f.h5", "f_payload", MARKER} <= set(os.listdir(tmp_path / "empty"))


def test_output_dir_is_created_with_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        create(str(tmp_path / "run"), {"acme_core_run": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == 0o750
    assert json.loads((tmp_path / "run" / MARKER).read_text()) == {"acme_core_run": 1}
