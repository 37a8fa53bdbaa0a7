"""A script without ``if __name__ == "__main__":``: one clear error before any worker starts
on backends whose workers import the script again; unchanged where they do not."""

from __future__ import annotations

import subprocess
import sys

import pytest

UNGUARDED = """\
import os
from acme_core import ParallelMap

print("top-level code runs in", os.getpid(), flush=True)

def f(x):
    return x + 1

print(ParallelMap(f, [1, 2, 3], write_worker_results=False, backend={backend!r},
                  n_workers=2).compute())
"""

THROUGH_A_FUNCTION = """\
from acme_core import ParallelMap

def f(x):
    return x + 1

def main():
    return ParallelMap(f, [1, 2, 3], write_worker_results=False, backend={backend!r}).compute()

print(main())
"""

GUARDED = """\
from acme_core import ParallelMap

def f(x):
    return x + 1

if __name__ == "__main__":
    print(ParallelMap(f, [1, 2, 3], write_worker_results=False, backend={backend!r},
                      n_workers=2).compute())
"""


def run_script(tmp_path, text: str, backend: str) -> subprocess.CompletedProcess:
    script = tmp_path / "analysis.py"
    script.write_text(text.format(backend=backend))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)


@pytest.mark.parametrize("text", [UNGUARDED, THROUGH_A_FUNCTION], ids=["top-level", "main()"])
def test_futures_refuses_an_unguarded_script_before_any_worker(tmp_path, text):
    proc = run_script(tmp_path, text, "futures")
    assert proc.returncode == 1
    err = proc.stderr
    assert err.count("Traceback (most recent call last)") == 1, err
    assert "acme_core.mainguard.MainGuardError: backend 'futures' starts worker processes" in err
    assert str(tmp_path / "analysis.py") in err and 'if __name__ == "__main__":' in err
    assert "Nothing was started" in err
    assert "BrokenProcessPool" not in err and "SpawnProcess" not in err
    assert proc.stdout.count("top-level code runs in") <= 1


def test_futures_runs_a_guarded_script(tmp_path):
    proc = run_script(tmp_path, GUARDED, "futures")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("[2, 3, 4]")


def test_joblib_runs_an_unguarded_script_whose_workers_never_import_it(tmp_path):
    """loky's workers get the function by value (cloudpickle) and never run the script:
    no error, and the script's top-level code runs once."""
    proc = run_script(tmp_path, UNGUARDED, "joblib")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("top-level code runs in") == 1
    assert proc.stdout.strip().endswith("[2, 3, 4]")
    assert "Traceback" not in proc.stderr
