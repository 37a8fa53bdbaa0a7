"""User scripts run in a child interpreter, as a user runs ``python analysis.py``.

A template is formatted with ``root`` (the repository root, for ``sys.path``) and the
caller's fields, then dedented. Output is captured as text.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

#: The repository root: scripts put it on ``sys.path`` to import ``tests.helpers``.
ROOT = str(Path(__file__).resolve().parents[2])


def write_script(folder: Path, name: str, template: str, **fields) -> Path:
    """Write ``template`` formatted with ``root`` and ``fields`` to ``folder/name.py``."""
    script = Path(folder) / f"{name}.py"
    script.write_text(textwrap.dedent(template.format(root=ROOT, **fields)))
    return script


def start_script(folder: Path, name: str, template: str, *, own_group: bool = False,
                 env: dict | None = None, **fields) -> subprocess.Popen:
    """Start the script in ``folder`` (its CWD) with stdout and stderr piped; ``own_group``
    gives it its own process group and session, as a script started in a terminal has;
    ``env`` replaces its environment."""
    script = write_script(folder, name, template, **fields)
    return subprocess.Popen([sys.executable, str(script)], cwd=folder, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=own_group, env=env)


def run_script(folder: Path, name: str, template: str, *, timeout: float = 120,
               own_group: bool = False, **fields) -> subprocess.CompletedProcess:
    """Run the script in ``folder`` to its end and return what it printed."""
    script = write_script(folder, name, template, **fields)
    return subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True,
                          text=True, timeout=timeout, start_new_session=own_group)


def run_code(code: str, cwd: Path, env: dict | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -c code`` (dedented) in ``cwd`` and return what it printed."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def communicate_or_fail(proc: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    """stdout and stderr of ``proc``; when it hangs, fail with the stacks of its threads (the
    script registers ``faulthandler`` for SIGUSR1)."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"the run did not end {timeout} s after the signal:\n{stderr[-8000:]}")
