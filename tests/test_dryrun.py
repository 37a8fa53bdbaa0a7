"""``dryrun=True``: one sampled call in the parent before anything else
starts; at a terminal the user is asked whether to go on.

The prompt is tested through a real pseudo-terminal (``os.openpty``): a small script runs
ParallelMap with its stdin, stdout and stderr on the terminal, and the test types the answer.
"""

from __future__ import annotations

import builtins
import logging
import os
import select
import subprocess
import sys
import textwrap

import pytest

from acme_core import ParallelMap
from tests.helpers import funcs
from tests.helpers.funcs import f

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ["joblib", "threads"]
PROMPT = b"[Y/n]"

SCRIPT = textwrap.dedent(f"""
    import os
    import sys

    import psutil

    sys.path.insert(0, {REPO!r})
    from acme_core import ParallelMap
    from tests.helpers.funcs import count_calls

    if __name__ == "__main__":
        backend, counter = sys.argv[1], sys.argv[2]
        pmap = ParallelMap(count_calls, [1, 2, 3], counter, dryrun=True, backend=backend,
                           n_workers=2)
        result = pmap.compute()
        print("RESULT", "none" if result is None else len(result))
        print("DIRS", len([d for d in os.listdir(".") if d.startswith("ACME_")]))
        print("CHILDREN", len(psutil.Process().children(recursive=True)))
        print("PARENT-CALLS", len([c for c in os.listdir(counter)
                                   if c.split("_")[1] == str(os.getpid())]))
        print("CALLS", len(os.listdir(counter)))
""")


def _read_some(fd: int, deadline_s: float = 120) -> bytes:
    ready, _, _ = select.select([fd], [], [], deadline_s)
    if not ready:  # a safety net against hanging, not a timing assertion
        raise AssertionError("the script produced no output")
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the script closed the terminal (it ended)
        return b""


def run_at_terminal(tmp_path, backend: str, answer: bytes | None) -> dict[str, str]:
    """Run the script on a pseudo-terminal, type ``answer`` at the prompt, return its report.

    ``answer=None`` asserts that no prompt appears.
    """
    script = tmp_path / "dry.py"
    script.write_text(SCRIPT)
    counter = tmp_path / "calls"
    counter.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, str(script), backend, str(counter)], cwd=work,
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    output = b""
    try:
        if answer is not None:
            while PROMPT not in output:
                chunk = _read_some(master)
                assert chunk, f"the script ended without asking: {output.decode()}"
                output += chunk
            os.write(master, answer + b"\r")
        while chunk := _read_some(master):
            output += chunk
        assert proc.wait(timeout=120) == 0, output.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = output.decode(errors="replace").replace("\r", "")
    if answer is None:
        assert PROMPT.decode() not in text
    report = dict(line.split(" ", 1) for line in text.splitlines()
                  if line.split(" ", 1)[0] in ("RESULT", "DIRS", "CHILDREN", "PARENT-CALLS", "CALLS"))
    report["text"] = text
    return report


@pytest.mark.parametrize("backend", BACKENDS)
def test_answer_no_at_a_terminal_leaves_nothing_and_starts_no_worker(tmp_path, backend):
    report = run_at_terminal(tmp_path, backend, b"n")
    assert "Dry-run completed. Elapsed time is" in report["text"]
    assert "estimated memory consumption was" in report["text"]
    assert report["RESULT"] == "none"
    assert report["DIRS"] == "0"           # no output directory
    assert report["CHILDREN"] == "0"       # no worker process
    assert report["CALLS"] == "1" and report["PARENT-CALLS"] == "1"  # the sampled call, here
    assert os.listdir(tmp_path / "work") == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_answer_yes_at_a_terminal_runs_normally(tmp_path, backend):
    report = run_at_terminal(tmp_path, backend, b"y")
    assert report["RESULT"] == "3"
    assert report["DIRS"] == "1"
    assert report["CALLS"] == "4"  # the dry run plus the three calls
    if backend == "joblib":
        assert report["CHILDREN"] != "0"


def test_empty_answer_means_yes(tmp_path):
    report = run_at_terminal(tmp_path, "threads", b"")
    assert report["RESULT"] == "3" and report["DIRS"] == "1"


def test_without_a_terminal_it_continues(tmp_path):
    script = tmp_path / "dry.py"
    script.write_text(SCRIPT)
    (tmp_path / "calls").mkdir()
    out = subprocess.run([sys.executable, str(script), "joblib", str(tmp_path / "calls")],
                         cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "[Y/n]" not in out.stdout + out.stderr
    assert "RESULT 3" in out.stdout and "CALLS 4" in out.stdout


# ---------------------------------------------------------------- in-process variants

class FakeTerminal:
    """A stdin that says it is a terminal."""

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:  # pragma: no cover - input() is replaced
        raise AssertionError("input() should be patched")


@pytest.fixture
def at_terminal(monkeypatch, tmp_path):
    """Pretend stdin is a terminal; returns the list of prompts shown and sets answers."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    state = {"answers": [], "prompts": []}

    def fake_input(prompt=""):
        state["prompts"].append(prompt)
        answer = state["answers"].pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(builtins, "input", fake_input)
    return state


def _counter(tmp_path):
    path = tmp_path / "calls"
    path.mkdir()
    return path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("answer", ["n", "N", "no", " No "])
def test_no_variants_create_nothing(at_terminal, tmp_path, backend, answer):
    at_terminal["answers"].append(answer)
    counter = _counter(tmp_path)
    pmap = ParallelMap(funcs.count_calls, [1, 2, 3], str(counter), dryrun=True, backend=backend,
                       verbose=False)
    assert at_terminal["prompts"] == [
        "Do you want to continue executing count_calls with the provided arguments? [Y/n] "]
    assert pmap.compute() is None
    assert sorted(os.listdir(tmp_path)) == ["calls"]
    [only] = os.listdir(counter)
    assert only.split("_")[1] == str(os.getpid())  # the sampled call ran in this process
    assert pmap.logfile is None


@pytest.mark.parametrize("answer", ["y", "", "yes", "Y"])
def test_yes_variants_run(at_terminal, tmp_path, answer):
    at_terminal["answers"].append(answer)
    pmap = ParallelMap(f, [2, 4, 6, 8], 4, dryrun=True, backend="threads", verbose=False,
                       write_worker_results=False)
    assert pmap.compute() == [18, 24, 30, 36]


def test_closed_input_means_no(at_terminal, tmp_path):
    at_terminal["answers"].append(EOFError())
    pmap = ParallelMap(f, [2, 4], 4, dryrun=True, backend="threads", verbose=False)
    assert pmap.compute() is None
    assert os.listdir(tmp_path) == []


def test_not_interactive_never_asks(at_terminal, tmp_path):
    pmap = ParallelMap(f, [2, 4], 4, dryrun=True, setup_interactive=False, backend="threads",
                       verbose=False, write_worker_results=False)
    assert at_terminal["prompts"] == []
    assert pmap.compute() == [18, 24]


def test_dry_run_reports_time_and_memory(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="acme_core"):
        ParallelMap(f, [2, 4], 4, dryrun=True, backend="threads", write_worker_results=False)
    assert "Performing a single dry-run of f simulating randomly picked call #" in caplog.text
    assert "Dry-run completed. Elapsed time is" in caplog.text
    assert "estimated memory consumption was" in caplog.text


def test_failing_dry_run_raises_the_original_and_leaves_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="boom on 3"):
        ParallelMap(funcs.fail_on_3, [3], dryrun=True, backend="threads", verbose=False)
    assert os.listdir(tmp_path) == []
    assert "Dry-run of fail_on_3 failed in call #0 (x=3)" in caplog.text


def test_dry_run_passes_task_id(tmp_path, monkeypatch, at_terminal):
    at_terminal["answers"].append("n")
    own = tmp_path / "own"
    own.mkdir()
    ParallelMap(funcs.task_id_writer, [5], str(own), dryrun=True, backend="threads",
                verbose=False)
    assert os.listdir(own) == ["task_0"]
