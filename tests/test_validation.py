"""Every bad input fails in the constructor, clearly, before anything exists.

Each case of the catalogue asserts the exception type, a message fragment that names the
argument (ACME's own wording where ACME had a message), that the message shows
what was given, and that no output directory, log file, temporary file, worker process or
thread was left behind. The constructor is called in a fresh working directory with
on-disk results (the default), so anything created too early would show there.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
import pytest

from acme_core import ParallelMap, UnknownKeywordError
from acme_core.arguments import ArgumentMismatchError
from acme_core.parameters import (
    BACKEND_PARAMETERS,
    BY_NAME,
    DEFAULTS,
    RESERVED,
    check_n_inputs,
    executor_settings,
    validate,
)
from acme_core.pickling import UnpicklableError
from acme_core.records import ExecutorSettings
from tests.helpers import funcs
from tests.helpers.funcs import f

THREADS = {"backend": "threads", "verbose": False}
JOBLIB = {"backend": "joblib", "verbose": False}


def _lock() -> Any:
    return threading.Lock()


def _closure_over_lock() -> Callable[[int], int]:
    lock = threading.Lock()

    def locked(x):
        with lock:
            return x

    return locked


def _write_file(tmp, name="taken"):
    path = tmp / name
    path.write_text("data")
    return str(path)


def _subdir(tmp, name="adir"):
    path = tmp / name
    path.mkdir()
    return str(path)


def _nonempty_dir(tmp):
    path = tmp / "used"
    path.mkdir()
    (path / "data.txt").write_text("someone else's")
    return str(path)


def _open_file(tmp, mode):
    path = tmp / f"open_{mode}.txt"
    path.write_text("x")
    return open(path, mode)  # noqa: SIM115 - the open file is the bad input


def c(case_id: str, exc: type[BaseException], match: str, given: str | None,
      make: Callable[[Any], tuple[tuple[Any, ...], dict[str, Any]]]) -> Any:
    """One catalogue case: ``make(tmp_path) -> (args, kwargs)`` of ParallelMap."""
    return pytest.param(make, exc, match, given, id=case_id)


E = re.escape

CATALOGUE = [
    # ---- func
    c("func-not-callable", TypeError, E("first input has to be a callable function"), "'invalid'",
      lambda t: (("invalid", [1, 2]), THREADS)),
    c("func-none", TypeError, E("first input has to be a callable function"), "None",
      lambda t: ((None, [1, 2]), THREADS)),
    c("func-unpicklable-joblib", UnpicklableError, "function 'locked'.*lock", "lock",
      lambda t: ((_closure_over_lock(), [1, 2]), JOBLIB)),
    # ---- arguments that cannot travel to worker processes (joblib)
    c("lock-positional-joblib", UnpicklableError, E("positional argument 1 ('y') of f"), "lock",
      lambda t: ((f, [1, 2], _lock()), JOBLIB)),
    c("lock-keyword-joblib", UnpicklableError, E("keyword argument 'z' of f"), "lock",
      lambda t: ((f, [1, 2], 3), {**JOBLIB, "z": _lock()})),
    c("lock-in-split-list-joblib", UnpicklableError,
      E("positional argument 0 ('x') of f, element 1"), "lock",
      lambda t: ((f, [1, _lock()], 3), JOBLIB)),
    c("lock-nested-in-dict-joblib", UnpicklableError, E("positional argument 1 ('y') of f"),
      "lock", lambda t: ((f, [1, 2], {"guard": _lock()}), JOBLIB)),
    c("open-file-write-joblib", UnpicklableError, E("positional argument 1 ('y') of f"),
      "open file", lambda t: ((f, [1, 2], _open_file(t, "w")), JOBLIB)),
    c("open-file-read-joblib", UnpicklableError, E("keyword argument 'z' of f"), "open file",
      lambda t: ((f, [1, 2], 3), {**JOBLIB, "z": _open_file(t, "r")})),
    c("generator", TypeError, E("positional argument 0 ('x') is a generator"), "list(...)",
      lambda t: ((f, (i for i in range(3)), 1), THREADS)),
    c("iterator", TypeError, E("keyword argument 'z' is a map"), "list(...)",
      lambda t: ((f, [1, 2], 3), {**THREADS, "z": map(abs, [1, 2])})),
    # ---- signature
    c("too-few-positionals", ArgumentMismatchError,
      E("f expects 2 positional arguments ('x', 'y'), found 1"), "Missing: 'y'",
      lambda t: ((f, 4), THREADS)),
    c("no-positionals", ValueError, E("f expects 2 positional arguments ('x', 'y'), found 0"),
      "Missing: 'x', 'y'", lambda t: ((f,), THREADS)),
    c("too-many-positionals", TypeError, E("f takes at most 3 positional arguments"), "found 4",
      lambda t: ((f, 1, 2, 3, 4), THREADS)),
    c("argument-given-twice", TypeError, E("got multiple values for argument 'x'"), "'x'",
      lambda t: ((f, [1, 2], 3), {**THREADS, "x": [5, 6]})),
    c("keyword-only-missing", TypeError, E("requires keyword-only argument(s) 'scale'"),
      "found none", lambda t: ((funcs.keyword_only, [1, 2]), THREADS)),
    c("unknown-keyword", UnknownKeywordError, E("unexpected keyword argument 'w'"),
      "accepts 'x', 'y', 'z'", lambda t: ((f, 4, 4), {**THREADS, "w": 4})),
    c("too-many-keywords-acme", ValueError,
      E("f accepts at maximum 1 keyword arguments ('z'), found 2"), "'w'",
      lambda t: ((f, 4, 4), {**THREADS, "z": 3, "w": 4})),
    c("misspelt-own-keyword", TypeError, E("unexpected keyword argument 'n_input'"),
      "did you mean 'n_input' -> 'n_inputs'",
      lambda t: ((f, 4, 4), {**THREADS, "n_input": 3})),
    c("positional-only-by-name", UnknownKeywordError, E("unexpected keyword argument 'b'"),
      "'b' of positional_only can only be given positionally",
      lambda t: ((funcs.positional_only, [1, 2]), {**THREADS, "b": 3})),
    # ---- distribution
    c("ambiguous-lengths", ValueError,
      E("automatic input distribution failed: found 2 objects containing 2 to 4 elements"),
      "positional argument 1 ('y') has 2", lambda t: ((f, [2, 4, 6, 8], [2, 2]), THREADS)),
    c("ambiguous-array", ValueError,
      E("automatic input distribution failed: found 2 objects containing 3 to 4 elements"),
      "Please specify `n_inputs` manually", lambda t: ((f, [2, 4, 6, 8], np.ones(3) * 4), THREADS)),
    c("nothing-to-split", ValueError, E("found 0 objects containing 0 to 0 elements"),
      "n_inputs=", lambda t: ((f, 2, 3), THREADS)),
    c("n-inputs-mismatch", ValueError, E("No object has required length of 3 matching `n_inputs`"),
      "positional argument 0 ('x') has 4",
      lambda t: ((f, [2, 4, 6, 8], [2, 2]), {**THREADS, "n_inputs": 3})),
    c("empty-list", ValueError, E("positional argument 0 ('x') of f has 0 elements"), "0 calls",
      lambda t: ((f, [], 1), THREADS)),
    # ---- n_inputs
    c("n-inputs-str", ValueError, E("`n_inputs` has to be 'auto' or an integer"), "'not-auto'",
      lambda t: ((f, 2, 3), {**THREADS, "n_inputs": "not-auto"})),
    c("n-inputs-negative", ValueError, E("`n_inputs` has to be an integer between 1 and inf"),
      "-3", lambda t: ((f, 2, 3), {**THREADS, "n_inputs": -3})),
    c("n-inputs-zero", ValueError, E("`n_inputs` has to be an integer between 1 and inf"), "0",
      lambda t: ((f, 2, 3), {**THREADS, "n_inputs": 0})),
    c("n-inputs-fraction", ValueError, E("`n_inputs` has to be an integer between 1 and inf"),
      "3.6", lambda t: ((f, 2, 3), {**THREADS, "n_inputs": 3.6})),
    c("n-inputs-inf", ValueError, E("`n_inputs` has to be an integer between 1 and inf"), "inf",
      lambda t: ((f, 2, 3), {**THREADS, "n_inputs": float("inf")})),
    c("n-inputs-nan", ValueError, E("`n_inputs` has to be an integer between 1 and inf"), "nan",
      lambda t: ((f, 2, 3), {**THREADS, "n_inputs": float("nan")})),
    c("n-inputs-dict", TypeError, E("`n_inputs` has to be a scalar"), "{}",
      lambda t: ((f, 2, 3), {**THREADS, "n_inputs": {}})),
    c("n-inputs-bool", TypeError, E("`n_inputs` has to be a scalar"), "True",
      lambda t: ((f, 2, 3), {**THREADS, "n_inputs": True})),
    c("n-inputs-none", TypeError, E("`n_inputs` has to be a scalar"), "None",
      lambda t: ((f, 2, 3), {**THREADS, "n_inputs": None})),
    # ---- result_shape
    c("result-shape-int", TypeError, E("`result_shape` has to be either `None` or tuple"), "3",
      lambda t: ((f, [1, 2], 3), {**THREADS, "result_shape": 3})),
    c("result-shape-no-none", ValueError, E("must contain exactly one `None` entry"), "(3, 4)",
      lambda t: ((f, [1, 2], 3), {**THREADS, "result_shape": (3, 4)})),
    c("result-shape-two-none", ValueError, E("must contain exactly one `None` entry"),
      "(None, None, 4)", lambda t: ((f, [1, 2], 3), {**THREADS, "result_shape": (None, None, 4)})),
    c("result-shape-text", ValueError, E("`result_shape` must only contain numerical values"),
      "'invalid'", lambda t: ((f, [1, 2], 3), {**THREADS, "result_shape": ("invalid", None, 4)})),
    c("result-shape-negative", ValueError, E("`result_shape` must only contain non-negative integers"),
      "-3", lambda t: ((f, [1, 2], 3), {**THREADS, "result_shape": (-3, None, 4)})),
    c("result-shape-fraction", ValueError, E("`result_shape` must only contain non-negative integers"),
      "3.14", lambda t: ((f, [1, 2], 3), {**THREADS, "result_shape": (np.pi, None, 4)})),
    c("result-shape-nan", ValueError, E("`result_shape` must only contain non-negative integers"),
      "nan", lambda t: ((f, [1, 2], 3), {**THREADS, "result_shape": (None, np.nan)})),
    c("result-shape-two-inf", ValueError, E("cannot use more than one `np.inf` in `result_shape`"),
      "inf", lambda t: ((f, [1, 2], 3), {**THREADS, "result_shape": (None, np.inf, np.inf)})),
    c("result-shape-inf-in-memory", ValueError,
      E("`np.inf` in `result_shape` is only valid if `write_worker_results` is `True`"), "exact",
      lambda t: ((f, [1, 2], 3), {**THREADS, "result_shape": (None, np.inf),
                                  "write_worker_results": False})),
    # ---- result_dtype
    c("result-dtype-invalid", TypeError, E("`result_dtype` has to be a valid NumPy datatype specification"),
      "'invalid'", lambda t: ((f, [1, 2], 3), {**THREADS, "result_dtype": "invalid"})),
    c("result-dtype-malformed", TypeError, E("`result_dtype` has to be a valid NumPy datatype specification"),
      "'(2,i4'", lambda t: ((f, [1, 2], 3), {**THREADS, "result_dtype": "(2,i4"})),
    c("result-dtype-array", TypeError, E("`result_dtype` has to be a string"), "ndarray",
      lambda t: ((f, [1, 2], 3), {**THREADS, "result_dtype": np.ones(3)})),
    # ---- storage flags
    c("pickle-and-single-file", ValueError,
      E("Pickling of results does not support single output file creation"), "write_pickle=True",
      lambda t: ((f, [1, 2], 3), {**THREADS, "write_pickle": True, "single_file": True})),
    c("write-worker-results-str", TypeError, E("`write_worker_results` has to be `True` or `False`"),
      "'yes'", lambda t: ((f, [1, 2], 3), {**THREADS, "write_worker_results": "yes"})),
    c("single-file-int", TypeError, E("`single_file` has to be `True` or `False`"), "1",
      lambda t: ((f, [1, 2], 3), {**THREADS, "single_file": 1})),
    c("write-pickle-none", TypeError, E("`write_pickle` has to be `True` or `False`"), "None",
      lambda t: ((f, [1, 2], 3), {**THREADS, "write_pickle": None})),
    c("storage-contradicts-flags", ValueError, E("`storage='hdf5'` writes results to disk"),
      "write_worker_results=False",
      lambda t: ((f, [1, 2], 3), {**THREADS, "storage": "hdf5", "write_worker_results": False})),
    # ---- output_dir
    c("output-dir-int", TypeError, E("`output_dir` has to be either `None` or str"), "2",
      lambda t: ((f, [1, 2], 3), {**THREADS, "output_dir": 2})),
    c("output-dir-empty-str", ValueError, E("`output_dir` has to be either `None`"), "''",
      lambda t: ((f, [1, 2], 3), {**THREADS, "output_dir": ""})),
    c("output-dir-is-file", NotADirectoryError,
      r"`output_dir`: automatic creation of output folder .* failed", "existing file",
      lambda t: ((f, [1, 2], 3), {**THREADS, "output_dir": _write_file(t)})),
    c("output-dir-parent-is-file", NotADirectoryError,
      r"`output_dir`: automatic creation of output folder .* failed", "is a file",
      lambda t: ((f, [1, 2], 3), {**THREADS, "output_dir": os.path.join(_write_file(t), "sub")})),
    c("output-dir-not-empty", FileExistsError, E("`output_dir`"), "not empty",
      lambda t: ((f, [1, 2], 3), {**THREADS, "output_dir": _nonempty_dir(t)})),
    # ---- logfile
    c("logfile-directory", IsADirectoryError,
      E("`logfile` has to be `None`, `True`, `False` or a valid file-name, not a directory"),
      "run.log", lambda t: ((f, [1, 2], 3), {**THREADS, "logfile": _subdir(t)})),
    c("logfile-int", TypeError, E("`logfile` has to be `None`, `True`, `False` or a valid file-name"),
      "3 (int)", lambda t: ((f, [1, 2], 3), {**THREADS, "logfile": 3})),
    c("logfile-missing-folder", FileNotFoundError, E("`logfile`"), "does not exist",
      lambda t: ((f, [1, 2], 3), {**THREADS, "logfile": str(t / "nowhere" / "run.log")})),
    # ---- backend parameters
    c("n-workers-zero", ValueError, E("`n_workers` has to be 'auto' or an integer >= 1"), "0",
      lambda t: ((f, [1, 2], 3), {**THREADS, "n_workers": 0})),
    c("n-workers-negative", ValueError, E("`n_workers` has to be 'auto' or an integer >= 1"), "-2",
      lambda t: ((f, [1, 2], 3), {**THREADS, "n_workers": -2})),
    c("n-workers-fraction", ValueError, E("`n_workers` has to be 'auto' or an integer >= 1"), "2.5",
      lambda t: ((f, [1, 2], 3), {**THREADS, "n_workers": 2.5})),
    c("n-workers-str", ValueError, E("`n_workers` has to be 'auto' or an integer >= 1"), "'invalid'",
      lambda t: ((f, [1, 2], 3), {**THREADS, "n_workers": "invalid"})),
    c("n-workers-list", TypeError, E("`n_workers` has to be 'auto' or an integer >= 1"), "[2]",
      lambda t: ((f, [1, 2], 3), {**THREADS, "n_workers": [2]})),
    c("mem-per-worker-int", TypeError, E("Memory specification `mem_per_worker` has to be a string"),
      "2 (int)", lambda t: ((f, [1, 2], 3), {**THREADS, "mem_per_worker": 2})),
    c("mem-per-worker-words", ValueError, E("`mem_per_worker` has to be 'auto' or a valid memory specifier"),
      "'lots'", lambda t: ((f, [1, 2], 3), {**THREADS, "mem_per_worker": "lots"})),
    c("mem-per-worker-unit", ValueError, E("`mem_per_worker` has to be 'auto' or a valid memory specifier"),
      "'8 GiB'", lambda t: ((f, [1, 2], 3), {**THREADS, "mem_per_worker": "8 GiB"})),
    c("mem-per-worker-zero", ValueError, E("`mem_per_worker` has to be 'auto' or a valid memory specifier"),
      "'0GB'", lambda t: ((f, [1, 2], 3), {**THREADS, "mem_per_worker": "0GB"})),
    c("setup-timeout-str", TypeError, E("`setup_timeout` has to be a scalar"), "'60'",
      lambda t: ((f, [1, 2], 3), {**THREADS, "setup_timeout": "60"})),
    c("setup-timeout-zero", ValueError, E("`setup_timeout` has to be a number of seconds between 1 and inf"),
      "0", lambda t: ((f, [1, 2], 3), {**THREADS, "setup_timeout": 0})),
    c("setup-timeout-negative", ValueError, E("`setup_timeout` has to be a number of seconds"),
      "-10", lambda t: ((f, [1, 2], 3), {**THREADS, "setup_timeout": -10})),
    c("setup-timeout-fraction", ValueError, E("`setup_timeout` has to be a number of seconds"),
      "0.5", lambda t: ((f, [1, 2], 3), {**THREADS, "setup_timeout": 0.5})),
    c("stop-client-int", TypeError, E("`stop_client` has to be 'auto' or Boolean"), "3",
      lambda t: ((f, [1, 2], 3), {**THREADS, "stop_client": 3})),
    c("stop-client-str", ValueError, E("`stop_client` has to be 'auto' or Boolean"), "'not-auto'",
      lambda t: ((f, [1, 2], 3), {**THREADS, "stop_client": "not-auto"})),
    c("partition-int", TypeError, E("`partition` has to be 'auto' or a valid SLURM partition name"),
      "3", lambda t: ((f, [1, 2], 3), {**THREADS, "partition": 3})),
    c("setup-interactive-str", TypeError, E("`setup_interactive` has to be `True` or `False`"),
      "'y'", lambda t: ((f, [1, 2], 3), {**THREADS, "setup_interactive": "y"})),
    # ---- other ParallelMap parameters
    c("verbose-str", TypeError, E("`verbose` has to be `None`, `True` or `False`"), "'loud'",
      lambda t: ((f, [1, 2], 3), {"backend": "threads", "verbose": "loud"})),
    c("dryrun-str", TypeError, E("`dryrun` has to be `True` or `False`"), "'no'",
      lambda t: ((f, [1, 2], 3), {**THREADS, "dryrun": "no"})),
    c("cleanup-days-negative", ValueError, E("`cleanup_threshold_days` has to be `None` or an integer >= 0"),
      "-1", lambda t: ((f, [1, 2], 3), {**THREADS, "cleanup_threshold_days": -1})),
    c("retries-negative", ValueError, E("`retries` has to be an integer >= 0"), "-1",
      lambda t: ((f, [1, 2], 3), {**THREADS, "retries": -1})),
    # ---- plugins by name
    c("unknown-backend", ValueError, E("unknown backend 'nope' given as `backend`"), "'joblib'",
      lambda t: ((f, [1, 2], 3), {"backend": "nope", "verbose": False})),
    c("backend-not-a-name", TypeError, E("`backend` has to be a name"), "3 (int)",
      lambda t: ((f, [1, 2], 3), {"backend": 3, "verbose": False})),
    c("unknown-storage", ValueError, E("unknown storage 'nope' given as `storage`"), "'memory'",
      lambda t: ((f, [1, 2], 3), {**THREADS, "storage": "nope"})),
    c("unknown-backend-option", ValueError, E("does not accept `backend_options` key(s) 'nope'"),
      "'idle_timeout'", lambda t: ((f, [1, 2], 3), {**JOBLIB, "backend_options": {"nope": 1}})),
    c("backend-options-not-dict", TypeError, E("`backend_options` has to be a dict"), "[1]",
      lambda t: ((f, [1, 2], 3), {**THREADS, "backend_options": [1]})),
    c("backend-option-bad-value", ValueError, E("backend_options['idle_timeout']"), "-1",
      lambda t: ((f, [1, 2], 3), {**JOBLIB, "backend_options": {"idle_timeout": -1}})),
]


def _file_handlers() -> set[int]:
    found = set()
    for name in logging.root.manager.loggerDict:
        logger = logging.getLogger(name)
        found |= {id(h) for h in logger.handlers if isinstance(h, logging.FileHandler)}
    return found | {id(h) for h in logging.root.handlers if isinstance(h, logging.FileHandler)}


class Snapshot:
    """What exists now: files under the working directory and in this test's private
    temporary directory, child processes, threads, log file handlers."""

    def __init__(self, root) -> None:
        self.files = sorted(os.path.relpath(p, root) for p in glob.glob(f"{root}/**", recursive=True))
        self.tmp = sorted(os.listdir(tempfile.gettempdir()))
        self.children = {p.pid: p.name() for p in psutil.Process().children(recursive=True)}
        self.threads = {t.ident: t.name for t in threading.enumerate()}
        self.handlers = _file_handlers()

    def assert_nothing_new(self, root) -> None:
        after = Snapshot(root)
        assert after.files == self.files, "files were created before validation finished"
        assert after.tmp == self.tmp, "a temporary file was left behind"
        new = {pid: name for pid, name in after.children.items() if pid not in self.children}
        assert not new, f"a process was started: {new}"
        new = {ident: name for ident, name in after.threads.items() if ident not in self.threads}
        assert not new, f"a thread was started: {new}"
        assert after.handlers - self.handlers == set(), "a log file was opened"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in an empty directory, where ParallelMap would put its ACME_* output, with a
    private temporary directory (the shared /tmp sees other processes' files)."""
    work = tmp_path / "work"
    work.mkdir()
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    monkeypatch.chdir(work)
    return work


def test_catalogue_is_large_enough():
    assert len(CATALOGUE) >= 30


@pytest.mark.parametrize(("make", "exc", "match", "given"), CATALOGUE)
def test_bad_input_fails_before_anything_exists(workdir, make, exc, match, given):
    args, kwargs = make(workdir)
    before = Snapshot(workdir)
    try:
        with pytest.raises(exc, match=match) as info:
            ParallelMap(*args, **kwargs)
    finally:
        for value in (*args, *kwargs.values()):
            if hasattr(value, "close") and hasattr(value, "mode"):
                value.close()
    if given is not None:
        assert given in str(info.value), str(info.value)
    before.assert_nothing_new(workdir)


def test_unknown_keyword_is_type_error_and_value_error(workdir):
    with pytest.raises(TypeError) as info:
        ParallelMap(f, [1, 2], 3, w=1, **THREADS)
    assert isinstance(info.value, ValueError)  # ACME raised ValueError / KeyError
    assert "'w'" in str(info.value)


def test_signature_errors_are_type_error_and_value_error(workdir):
    for args in ((f, 4), (f, 1, 2, 3, 4)):
        with pytest.raises(ArgumentMismatchError) as info:
            ParallelMap(*args, **THREADS)
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_several_unknown_keywords_are_all_named(workdir):
    with pytest.raises(UnknownKeywordError, match=r"keyword arguments 'w', 'q'"):
        ParallelMap(f, [1, 2], 3, w=1, q=2, **THREADS)


def test_reserved_keyword_is_explained(workdir):
    with pytest.raises(UnknownKeywordError, match="never passed to f"):
        ParallelMap(f, [1, 2], 3, zz=1, **THREADS)


def test_any_keyword_is_accepted_with_var_keyword(workdir):
    pmap = ParallelMap(funcs.varargs, [1, 2], anything=3, write_worker_results=False, **THREADS)
    assert pmap.compute() == [(1, (), {"anything": 3}), (2, (), {"anything": 3})]


@pytest.mark.parametrize("value", [1, 2.0, np.int64(3), "auto"])
def test_n_inputs_accepted_values(value):
    assert check_n_inputs(value) == (value if value == "auto" else int(value))


def test_n_inputs_one_and_two_float_accepted_end_to_end(workdir):
    assert ParallelMap(f, 2, 3, n_inputs=1, write_worker_results=False, **THREADS).compute() == [15]
    assert ParallelMap(f, 2, 3, n_inputs=2.0, write_worker_results=False,
                       **THREADS).compute() == [15, 15]


def test_unwritable_parent_directory(workdir):
    if os.geteuid() == 0:
        pytest.skip("root may write anywhere; the parent-is-a-file case covers root")
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="`output_dir`.*not writable"):
            ParallelMap(f, [1, 2], 3, output_dir=str(locked / "out"), **THREADS)
    finally:
        locked.chmod(0o700)


def test_nothing_is_created_when_the_function_check_fails_late(workdir):
    """Validation order: the pickling check is the last step and still runs before the
    output directory and log file exist (on-disk, default log file)."""
    before = Snapshot(workdir)
    with pytest.raises(UnpicklableError):
        ParallelMap(f, [1, 2], _lock(), logfile=True, **JOBLIB)
    before.assert_nothing_new(workdir)


def test_the_snapshot_sees_what_a_valid_run_creates(workdir):
    """Control: the same check flags what a run creates. Construction alone creates
    nothing (it used to make the whole ACME_* folder); compute() does."""
    before = Snapshot(workdir)
    with ParallelMap(f, [1, 2], 3, logfile=True, **THREADS) as pmap:
        before.assert_nothing_new(workdir)
        assert pmap.results_container == os.path.join(pmap.output_dir, "f.h5")
        assert not os.path.exists(pmap.output_dir) and not os.path.exists(pmap.logfile)
        pmap.compute()
    with pytest.raises(AssertionError, match="files were created"):
        before.assert_nothing_new(workdir)


def test_executors_get_every_backend_parameter_of_the_table_with_its_default():
    fields = {f.name: f.default for f in dataclasses.fields(ExecutorSettings)
              if f.name not in ("options", "timeout")}
    assert fields == {name: DEFAULTS[name] for name in BACKEND_PARAMETERS}
    given = executor_settings(validate(partition="8GBXS", n_workers=3, setup_timeout=5,
                                       backend_options={"queue": "a"}, timeout=2))
    assert (given.partition, given.n_workers, given.setup_timeout) == ("8GBXS", 3, 5.0)
    assert (given.options, given.timeout) == ({"queue": "a"}, 2.0)


def test_a_keyword_parallel_map_lacks_is_no_parameter():
    with pytest.raises(TypeError, match="not a parameter of ParallelMap: n_worker"):
        validate(n_worker=3)


@pytest.mark.parametrize("name", ["progress", "timeout", "rerun"])
def test_reserved_names_are_parallel_maps_newer_keywords_that_never_reach_the_function(name):
    def g(x, **kwargs):
        return sorted(kwargs)
    assert name in RESERVED and BY_NAME[name].kind == "reserved"
    default = DEFAULTS[name]
    assert ParallelMap(g, [1], write_worker_results=False, verbose=False,
                       **{name: default}).compute() == [[]]
