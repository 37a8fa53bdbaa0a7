"""SyNCoPy's own parallel tests, from its installed wheel, on acme-core (``nox -s syncopy``).

SyNCoPy's test conftest starts an ESI SLURM cluster (partition "8GB", ACME's old
``n_jobs``) whenever ``srun`` answers, else a ``LocalCluster(n_workers=4)``; here the
``LocalCluster`` branch runs (``srun`` is hidden from the tests), while ``sinfo`` still
succeeds so that SyNCoPy hands its computations to ``acme.ParallelMap``.

Prints pass/fail counts and the time of each module; exits non-zero when a test failed.

Usage: python tests/compat/run_syncopy_tests.py [module ...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Modules whose ``-k parallel`` tests run (test_computationalroutine first).
MODULES = ("test_computationalroutine.py", "test_specest.py", "test_connectivity.py",
           "test_preproc.py", "test_resampledata.py", "test_statistics.py")


def _without_srun(folder: Path) -> str:
    """PATH where ``srun`` fails (SyNCoPy's tests then use their LocalCluster)."""
    folder.mkdir(exist_ok=True)
    srun = folder / "srun"
    srun.write_text("#!/bin/sh\nexit 127\n")
    srun.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def main() -> int:
    import syncopy

    tests = Path(syncopy.__file__).parent / "tests"
    modules = sys.argv[1:] or list(MODULES)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="syncopy-tests-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")       # not acme-core's pytest settings
        env = {**os.environ, "PATH": _without_srun(Path(tmp) / "bin"),
               "SPYTMPDIR": str(Path(tmp) / "spytmp")}
        os.makedirs(env["SPYTMPDIR"])
        rows = []
        for module in modules:
            start = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(tests),
                 "-p", "no:cacheprovider", "-q", "-k", "parallel", "-W",
                 "ignore::DeprecationWarning", str(tests / module)],
                cwd=tmp, env=env, capture_output=True, text=True, check=False)
            elapsed = time.monotonic() - start
            summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
            rows.append((module, summary, elapsed))
            print(f"{module}: {summary} [{elapsed:.0f} s]", flush=True)
            if proc.returncode != 0:
                failed += 1
                print(proc.stdout[-6000:], proc.stderr[-3000:], sep="\n")
    total = sum(e for _, _, e in rows)
    print(f"\nSyNCoPy {syncopy.__version__}'s parallel tests on acme-core: "
          f"{len(rows) - failed} of {len(rows)} modules passed, {total:.0f} s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
