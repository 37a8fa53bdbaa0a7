"""The code version of a function: every edit that can change results changes it, comment,
whitespace and docstring edits do not, and it is the same in every interpreter whatever its
``PYTHONHASHSEED``. Module files are written anew and imported in fresh interpreters, as a
user edits a script and runs it again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from acme_core.codeversion import code_version, value_digest
from tests.helpers.code_edits import EDITS

HELPER_MODULE = ("import helpers\ndef f(x):\n    return helpers.scale(x)\nTARGET = f\n",
                 "def scale(x):\n    return {k} * x\n")

BASE = "def f(x):\n    y = 2 * x\n    return y + 1\nTARGET = f\n"
#: The same code with comments, blank lines, other spacing and a docstring.
COSMETIC = ('# analysis of trial data\n\n\n'
            'def f(x):   # one trial\n'
            '    """Scale a trial (the docstring does not change results)."""\n\n'
            '    y = 2*x      # doubled\n'
            '    return (y +\n'
            '            1)\n\n\n'
            'TARGET = f\n')
WORDS = ["theta", "alpha", "beta", "gamma", "delta", "lfp", "spikes", "trial", "eeg", "meg"]
SETS = (f"NAMES = {set(WORDS)!r}\n"
        "def f(x):\n    return x in NAMES or x in {'p1', 'p2', 'p3', 'p4', 'p5', 'p6'}\n"
        "TARGET = f\n")

RUNNER = textwrap.dedent("""
    import importlib, json, sys
    from acme_core.codeversion import code_version, value_digest
    out = {}
    for d in sys.argv[1:]:
        sys.path.insert(0, d)
        mod = importlib.import_module("mod")
        out[d] = code_version(mod.TARGET)
        for name in ("mod", "helpers"):
            sys.modules.pop(name, None)
        sys.path.remove(d)
    out["set_value"] = value_digest({"words": set(WORDS), "nested": [frozenset(WORDS)]}).hex()
    print(json.dumps(out))
""").replace("WORDS", repr(WORDS))


def _write(base, name, files):
    d = base / name
    d.mkdir()
    for fname, text in files.items():
        (d / fname).write_text(text)
    return str(d)


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Code versions of every module variant, computed in two fresh interpreters with
    different ``PYTHONHASHSEED``."""
    base = tmp_path_factory.mktemp("codeversion")
    dirs = {}
    for edit, (v1, v2) in EDITS.items():
        dirs[edit, 1] = _write(base, f"{edit}1", {"mod.py": v1})
        dirs[edit, 2] = _write(base, f"{edit}2", {"mod.py": v2})
    for k in (1, 2):
        dirs["helper_module", k] = _write(
            base, f"helpermod{k}", {"mod.py": HELPER_MODULE[0],
                                    "helpers.py": HELPER_MODULE[1].format(k=k + 1)})
    dirs["base"] = _write(base, "base", {"mod.py": BASE})
    dirs["cosmetic"] = _write(base, "cosmetic", {"mod.py": COSMETIC})
    dirs["sets"] = _write(base, "sets", {"mod.py": SETS})
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", RUNNER, *dirs.values()], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        runs.append({key: out[d] for key, d in dirs.items()} | {"set_value": out["set_value"]})
    return runs


@pytest.mark.parametrize("edit", [*EDITS, "helper_module"])
def test_an_edit_that_changes_results_changes_the_version(versions, edit):
    for run in versions:
        assert run[edit, 1] != run[edit, 2], f"{edit}: 2*x and 3*x got the same version"


def test_comment_whitespace_and_docstring_edits_keep_the_version(versions):
    for run in versions:
        assert run["base"] == run["cosmetic"]


def test_versions_are_the_same_in_interpreters_with_different_hash_seeds(versions):
    first, second = versions
    assert first == second
    assert first["sets"] == second["sets"]
    assert first["set_value"] == second["set_value"]


def test_cycles_and_unhashable_state_are_handled():
    import threading

    def even(n):
        return n == 0 or odd(n - 1)

    def odd(n):
        return n != 0 and even(n - 1)

    class Holder:
        def __init__(self):
            self.lock = threading.Lock()  # not reducible: counts by its type name
            self.me = self

        def __call__(self, x):
            return x

    class Hostile:
        def __reduce_ex__(self, protocol):
            return (Hostile, (), None, None, iter(BrokenItems()))

    class BrokenItems:
        def __iter__(self):
            raise RuntimeError("cannot list me")

    assert len(value_digest(Hostile())) == 32  # counts by its type, never breaks a run
    assert code_version(even) == code_version(even)
    assert len(code_version(Holder())) == 16
    assert value_digest([1, 2]) != value_digest([2, 1])
    assert value_digest(1) != value_digest(1.0) != value_digest(True)
