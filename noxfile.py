"""Developer sessions: ``nox -s demo``, ``nox -s tests``, ``nox -s lint`` (see README)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
#: The core and every plugin of this repository, installed as users install them.
PACKAGES = ["-e", ".", "-e", "plugins/acme_joblib", "-e", "plugins/acme_dask", "-e", "plugins/acme_slurm_esi",
            "-e", "plugins/acme_slurm"]
#: Test-only outside plugins and the documented example plugin (own distributions).
TEST_PLUGINS = ["-e", "tests/plugins/acme_threads", "-e", "docs/examples/acme_futures"]


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Install acme-core with its plugins and run a real ParallelMap on the default backend."""
    session.install(*PACKAGES)
    session.run("python", "-m", "acme_core.demo")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (SLURM tests skip without a cluster unless REQUIRE_SLURM=1)."""
    session.install(*PACKAGES, *TEST_PLUGINS, "-e", ".[test]")
    session.run("pytest", *(session.posargs or ["-q"]))


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
    default leaves out because N = 10^6 takes several minutes."""
    session.install(*PACKAGES, *TEST_PLUGINS, "-e", ".[test]", "mpire>=2.10")
    args = list(session.posargs)
    scripts = ["run", "speed"]
    if args and args[0] in (*scripts, "scaling"):
        scripts = [args.pop(0)]
    for script in scripts:
        session.run("python", f"benchmarks/{script}.py", *args)
