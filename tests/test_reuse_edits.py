"""Code edits and the result store: no stale result is ever reused; comment and whitespace
edits reuse everything.

Each case edits a copy of two user modules (the function's own and a helper module), runs
the sweep in a fresh interpreter with the same store and arguments as the unedited run, and
counts the calls that ran (side-effect files). A meaningful edit must recompute all 5 calls and give
what calling the edited function directly gives; a cosmetic edit must compute none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 5

HELPERS = '''\
import math

OFFSET = 1
SCALE_BIAS = 0


def _base():
    return 0


def scale(x, by=2):
    return by * x + _base() + SCALE_BIAS


def bonus(x):
    return x * 0


class Model:
    def __init__(self, k=3):
        self.k = k

    def apply(self, x):
        return x * self.k
'''

SWEEP = '''\
import os
import uuid

import helpers
from helpers import scale

FACTOR = 10
WEIGHTS = {"a": 1, "b": 2}
STEPS = [1, 2]
UNUSED = 7
shift = lambda v: v


def local_helper(x):
    return x + 1


def point(x, marks, power=1):
    open(os.path.join(marks, f"ran_{x}_{uuid.uuid4().hex}"), "w").close()
    value = FACTOR * scale(local_helper(x)) ** power + helpers.OFFSET + WEIGHTS["a"]
    extra = getattr(helpers, "bon" + "us")(x)   # a helper found by a computed name
    return shift(value + sum(STEPS) + helpers.Model().apply(x) + extra)
'''

#: (case, file, old, new, meaningful)
EDITS = [
    ("function: operator", "sweep", "** power", "** (power + 1)", True),
    ("function: sign", "sweep", "+ helpers.OFFSET", "- helpers.OFFSET", True),
    ("function: string constant", "sweep", 'WEIGHTS["a"]', 'WEIGHTS["b"]', True),
    ("function: new library call", "sweep", "sum(STEPS)", "max(STEPS)", True),
    ("function: default argument", "sweep", "power=1", "power=2", True),
    ("same-module helper", "sweep", "return x + 1", "return x + 2", True),
    ("same-module constant", "sweep", "FACTOR = 10", "FACTOR = 11", True),
    ("same-module dict constant", "sweep", '{"a": 1,', '{"a": 5,', True),
    ("same-module list constant", "sweep", "STEPS = [1, 2]", "STEPS = [1, 3]", True),
    ("same-module lambda", "sweep", "lambda v: v", "lambda v: v + 1", True),
    ("other-module helper", "helpers", "return by * x", "return by * x * 3", True),
    ("other-module helper default", "helpers", "by=2", "by=3", True),
    ("other-module helper's helper", "helpers", "return 0", "return 1", True),
    ("other-module constant read as module attribute", "helpers", "OFFSET = 1", "OFFSET = 2",
     True),
    ("other-module constant read by its helper", "helpers", "SCALE_BIAS = 0",
     "SCALE_BIAS = 1", True),
    ("other-module class method", "helpers", "return x * self.k", "return x * self.k + 1",
     True),
    ("other-module class default", "helpers", "k=3", "k=4", True),
    pytest.param("helper reached by a computed attribute name", "helpers", "return x * 0",
                 "return x * 0 + 1", True, marks=pytest.mark.xfail(strict=True, reason=(
                     "code_version follows the names the code contains; getattr(helpers, "
                     "'bon' + 'us') is found only at run time, so an edit of bonus() keeps "
                     "the version and the stored (stale) results are reused"))),
    ("comment in the function", "sweep", "    value = FACTOR",
     "    # the point's value\n    value = FACTOR", False),
    ("trailing comment", "sweep", "import uuid", "import uuid  # unique file names", False),
    ("comment in the helper module", "helpers", "def scale", "# scaling\ndef scale", False),
    ("blank lines before the function (line numbers move)", "sweep", "def point",
     "\n\n\n\ndef point", False),
    ("whitespace in an expression", "helpers", "by * x +", "by*x  +", False),
    ("indentation of a continued line", "sweep", "return shift(value",
     "return shift(\n        value", False),
    ("docstring added", "sweep", "    open(", '    """One point."""\n    open(', False),
    ("unrelated function added", "sweep", "def local_helper",
     "def unused(y):\n    return y * 99\n\n\ndef local_helper", False),
    ("unrelated constant changed", "sweep", "UNUSED = 7", "UNUSED = 8", False),
]

SCRIPT = textwrap.dedent("""
    import json, sys
    code, store, marks, direct = sys.argv[1:5]
    sys.path[:0] = [code, {repo!r}]
    import sweep
    from acme_core import ParallelMap
    got = ParallelMap(sweep.point, list(range({n})), marks, reuse=store, backend="joblib",
                      n_workers=1,
                      write_worker_results=False, verbose=False).compute()
    print(json.dumps({{"got": got, "direct": [sweep.point(x, direct) for x in range({n})]}}))
""").format(repo=REPO, n=N)


def run_sweep(code, store, marks, direct):
    for d in (marks, direct):
        d.mkdir(exist_ok=True)
    before = len(os.listdir(marks))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(code), str(store), str(marks),
                           str(direct)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["got"], result["direct"], len(os.listdir(marks)) - before


def write_code(where, sweep=SWEEP, helpers=HELPERS):
    where.mkdir()
    (where / "sweep.py").write_text(sweep)
    (where / "helpers.py").write_text(helpers)
    return where


@pytest.fixture(scope="module")
def base_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("edits")
    code = write_code(root / "base")
    got, direct, ran = run_sweep(code, root / "store", root / "marks", root / "direct")
    assert ran == N and got == direct
    again = run_sweep(code, root / "store", root / "marks", root / "direct")
    assert again[2] == 0 and again[0] == got       # unchanged code: everything reused
    return root, got


@pytest.mark.slow
@pytest.mark.parametrize(("case", "file", "old", "new", "meaningful"), EDITS,
                         ids=[e.values[0] if hasattr(e, "values") else e[0] for e in EDITS])
def test_code_edit(base_store, tmp_path, case, file, old, new, meaningful):
    root, base_results = base_store
    sources = {"sweep": SWEEP, "helpers": HELPERS}
    assert sources[file].count(old) == 1, case
    sources[file] = sources[file].replace(old, new)
    code = write_code(tmp_path / "code", **sources)
    got, direct, ran = run_sweep(code, root / "store", root / "marks", tmp_path / "direct")
    assert got == direct                           # never a stale result
    if meaningful:
        assert direct != base_results, "the edit must change the results to be a real test"
        assert ran == N                            # every call recomputed
    else:
        assert direct == base_results
        assert ran == 0                            # every call reused
