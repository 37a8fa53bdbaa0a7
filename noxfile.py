"""Developer sessions: ``nox -s demo``, ``nox -s tests``, ``nox -s soak``, ``nox -s lint`` (see
README and docs/contributing.md)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
#: The core and every plugin of this repository, installed as users install them.
PACKAGES = ["-e", ".", "-e", "plugins/acme_joblib", "-e", "plugins/acme_dask", "-e", "plugins/acme_slurm_esi",
            "-e", "plugins/acme_slurm"]
#: Test-only outside plugins and the documented example plugin (own distributions).
TEST_PLUGINS = ["-e", "tests/plugins/acme_threads", "-e", "docs/examples/acme_futures",
                "-e", "docs/examples/acme_npy"]
#: The import name ``acme`` (re-exports); conflicts with esi-acme, so never in PACKAGES.
COMPAT = ["-e", "plugins/acme_compat"]
#: SyNCoPy 2023.9, installed with --no-deps beside what it imports (its own pins are too loose
#: for today's releases: it needs numpy<2, scipy<1.12, matplotlib<3.9).
SYNCOPY = "esi-syncopy==2023.9"
SYNCOPY_DEPS = ["numpy<2", "scipy<1.12", "matplotlib<3.9", "pytz", "fooof>=1.0", "natsort>=8.1,<9",
                "psutil>=5.9", "tqdm>=4.31", "packaging", "pytest>=8"]
#: ACME's release whose own tests run against acme-core through the compat package.
ESI_ACME = "esi-acme==2026.6.2"


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Install acme-core with its plugins and run a real ParallelMap on the default backend."""
    session.install(*PACKAGES)
    session.run("python", "-m", "acme_core.demo")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite without the soak tests (SLURM tests skip without a cluster unless
    REQUIRE_SLURM=1). Extra arguments go to pytest after ``-m "not soak"``; a ``-m`` of
    their own replaces it."""
    session.install(*PACKAGES, *TEST_PLUGINS, "-e", ".[test]")
    session.run("pytest", "-m", "not soak", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """The soak tests: the full counts of repeated scenarios (ten runs of ten, twenty and
    thirty random kills) and the long waits (SLURM restarted with other limits, a requeued
    task SLURM holds for minutes); installs what ``tests`` installs. Exit code 5 (no test
    selected) fails the session as it fails ``tests``."""
    session.install(*PACKAGES, *TEST_PLUGINS, "-e", ".[test]")
    session.run("pytest", "-m", "soak", *(session.posargs or ["-q", "tests"]))


@nox.session(python=PYTHON)
def slurm(session: nox.Session) -> None:
    """Only the SLURM tests (start the local SLURM first: bash ../shared/slurm/start-slurm.sh;
    with REQUIRE_SLURM=1 a missing cluster fails instead of skipping)."""
    session.install(*PACKAGES, *TEST_PLUGINS, "-e", ".[test]")
    session.run("pytest", *(session.posargs or ["-q", "tests/test_slurm.py"]))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the core, the plugins and the tests."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "plugins", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site (mkdocs-material, API from docstrings); warnings fail."""
    session.install(*PACKAGES, "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26")
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs)


@nox.session(python=PYTHON)
def benchmarks(session: nox.Session) -> None:
    """Benchmarks against the bare peers, never run by CI: benchmarks/run.py (storages) and
    benchmarks/speed.py (tiny/sleep calls, cold start, dask, SLURM when sinfo answers).
    ``nox -s benchmarks -- run --quick`` or ``-- speed --quick`` runs one of them with
    those arguments; any other arguments go to both. ``-- scaling`` runs
    benchmarks/scaling.py (N = 10^3 to 10^6 against the bare pools and mpire), which the
    default leaves out because N = 10^6 takes several minutes. The environment is a user's:
    the core and the shipped plugins, not the test and example plugins (every installed
    plugin's module is imported by the first constructor, a cost the peers do not pay)."""
    session.install(*PACKAGES, "-e", ".[test]", "mpire>=2.10", "submitit>=1.5")
    args = list(session.posargs)
    scripts = ["run", "speed"]
    if args and args[0] in (*scripts, "scaling"):
        scripts = [args.pop(0)]
    for script in scripts:
        session.run("python", f"benchmarks/{script}.py", *args)


@nox.session(python=PYTHON)
def syncopy(session: nox.Session) -> None:
    """SyNCoPy 2023.9, unmodified, on acme-core through the ``acme`` compat package (own env,
    never the test env): our equivalence checks of its parallel computations against
    ``parallel=False``, then SyNCoPy's own parallel tests from its wheel. ``-- equivalence``
    or ``-- own`` runs one of the two parts."""
    session.install(*PACKAGES, *COMPAT, *SYNCOPY_DEPS)
    session.install("--no-deps", SYNCOPY)
    parts = list(session.posargs) or ["equivalence", "own"]
    env = {"PATH": _sinfo_path(session), "SPYSILENTSTARTUP": "1"}
    if "equivalence" in parts:
        session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/compat/test_syncopy.py",
                    env=env)
    if "own" in parts:
        session.run("python", "tests/compat/run_syncopy_tests.py", env=env)


@nox.session(python=PYTHON)
def acme_tests(session: nox.Session) -> None:
    """ACME 2026.6.2's own test_pmap.py and test_dask.py (taken from its wheel, never
    installed) against acme-core through the ``acme`` compat package; prints pass/fail per
    test. Extra arguments go to pytest. Not in CI: ACME's tests start a dask LocalCluster for
    almost every ParallelMap (about 16 minutes on a busy 2-core machine)."""
    session.install(*PACKAGES, *COMPAT, "pytest>=8", "scipy", "psutil>=5.9", "ipython")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "plugins/acme_compat")  # its doctests
    session.run("python", "tests/compat/run_acme_tests.py", ESI_ACME, *session.posargs)


def _sinfo_path(session: nox.Session) -> str:
    """PATH for SyNCoPy: it takes its ACME path only when ``sinfo`` exits 0. Without a
    SLURM here, a ``sinfo`` that only exits 0 goes first on PATH."""
    import os
    import shutil
    import subprocess

    path = os.environ.get("PATH", "")
    sinfo = shutil.which("sinfo")
    if sinfo and subprocess.run([sinfo], capture_output=True).returncode == 0:
        return path
    # absolute: create_tmp() may give a path relative to the noxfile, and the tests change
    # their working folder
    folder = os.path.join(os.path.abspath(session.create_tmp()), "sinfo-bin")
    os.makedirs(folder, exist_ok=True)
    script = os.path.join(folder, "sinfo")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o755)
    return folder + os.pathsep + path
