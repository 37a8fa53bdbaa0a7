"""``python -m acme_core``: version, help, plugins, options, and a status that tells the story
of a running, an interrupted, a failed and a complete run, one by one and as a folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from acme_core import ParallelComputationError, ParallelMap, hookimpl
from acme_core.cli import main as cli_main
from tests.helpers.manifests import done_calls
from tests.helpers.waiting import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "acme_core", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_version_and_help_without_markup():
    import acme_core

    version = cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"acme-core {acme_core.__version__}"
    help_text = cli("--help").stdout
    assert "status DIR" in help_text and "plugins" in help_text
    assert "``" not in help_text and ":mod:" not in help_text


class LifecycleOnly:
    """A plugin that implements only a lifecycle hook."""

    @hookimpl
    def acme_core_run_finished(self, run, summary):
        pass


def test_plugins_lists_every_plugin_with_its_hooks(register, capsys):
    register(LifecycleOnly(), "watcher")
    assert cli_main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "watcher  (registered at run time) : acme_core_run_finished" in text.replace(
        "time): ", "time) : ")
    assert "joblib  acme-joblib" in text and "acme_core_executors" in text
    assert "acme_core.storage.builtin  acme-core" in text


def test_options_prints_the_backends_spec():
    out = cli("options", "slurm").stdout
    assert "| `walltime` |" in out and "| `job_extra` |" in out and "| `cores` |" in out
    wrong = cli("options", "slurmm")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "slurmm" in wrong.stderr and "slurm" in wrong.stderr


def double(x):
    return 2 * x


def fail_on_three(x):
    if x == 3:
        raise ValueError(f"bad {x}")
    return x


RUNNING_SCRIPT = """
import os, sys, time
from acme_core import ParallelMap

def wait_for_go(x, flags):
    if x >= 2:  # the first two calls finish, the others wait until the test says go
        while not os.path.exists(os.path.join(flags, "go")):
            time.sleep(0.05)
    return x

if __name__ == "__main__":
    ParallelMap(wait_for_go, list(range(6)), sys.argv[2], output_dir=sys.argv[1],
                backend="threads", n_workers=2, verbose=False).compute()
"""


@pytest.fixture
def four_runs(tmp_path):
    """A folder with a running, a complete, a failed run, and the running one's process."""
    runs = tmp_path / "runs"
    runs.mkdir()
    flags = tmp_path / "flags"
    flags.mkdir()
    script = tmp_path / "script.py"
    script.write_text(RUNNING_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(runs / "a_running"), str(flags)],
                            start_new_session=True, cwd=tmp_path)
    ParallelMap(double, list(range(4)), output_dir=str(runs / "b_complete"),
                verbose=False).compute()
    with pytest.raises(ParallelComputationError):
        ParallelMap(fail_on_three, list(range(5)), output_dir=str(runs / "c_failed"),
                    verbose=False).compute()
    wait_until(lambda: len(done_calls(runs / "a_running")) >= 2, "two calls done")
    yield runs, proc, flags
    if proc.poll() is None:
        (flags / "go").touch()
        proc.kill()
    proc.wait(timeout=60)


def _zombie_state(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rpartition(")")[2].split()[0] == "Z"


def test_status_of_a_running_then_interrupted_run_and_of_the_folder(four_runs, capsys):
    runs, proc, flags = four_runs
    assert cli_main(["status", str(runs / "a_running")]) == 1
    text = capsys.readouterr().out
    assert f"state     running (pid {proc.pid} on " in text
    assert "backend   threads" in text and "storage   hdf5" in text
    assert "done 2, failed 0, missing 4" in text and "started   20" in text
    assert "  missing   calls 2-5\n" in text  # which calls a resume will run
    assert cli_main(["status", str(runs / "b_complete")]) == 0
    text = capsys.readouterr().out
    assert "state     complete" in text and "done 4, failed 0, missing 0" in text
    assert "  missing   " not in text
    assert "backend   joblib" in text and "elapsed   0m" in text
    assert cli_main(["status", str(runs / "c_failed")]) == 1
    text = capsys.readouterr().out
    assert "state     failed" in text and "done 4, failed 1, missing 0" in text
    assert "ValueError: bad 3" in text and "x=3" in text and "output_dir=" in text

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the running run's terminal
    # the thread pool waits for its running calls before the run ends: let them return (the
    # main thread has the KeyboardInterrupt already; its loop collects nothing more)
    (flags / "go").touch()
    assert proc.wait(timeout=120) != 0
    assert cli_main(["status", str(runs / "a_running")]) == 1
    text = capsys.readouterr().out
    assert "state     interrupted" in text and "failed 0" in text
    assert "To run the failed and missing calls" in text

    killed = runs / "d_killed"
    launched = time.time()
    proc2 = subprocess.Popen([sys.executable, str(runs.parent / "script.py"), str(killed),
                              str(runs.parent / "none")], start_new_session=True)
    wait_until(lambda: len(done_calls(killed)) >= 2, "two calls done")
    proc2.kill()  # SIGKILL: the session never ends
    killed_at = time.time()
    # until its parent collects it, the dead process is a zombie, whose pid still answers
    wait_until(lambda: _zombie_state(proc2.pid), "the killed process is a zombie")
    assert cli_main(["status", "--json", str(killed)]) == 1
    data = json.loads(capsys.readouterr().out)
    # it ran from its start until its last recorded call (the start is noted in whole seconds)
    assert data["state"] == "interrupted" and 0 < data["elapsed"] <= killed_at - launched + 1
    proc2.wait(timeout=60)
    assert cli_main(["status", str(runs)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["a_running", "interrupted"], ["b_complete", "complete"], ["c_failed", "failed"],
        ["d_killed", "interrupted"]]
    assert "wait_for_go  2/6 done, 0 failed, 4 missing  threads/hdf5" in lines[0]

    assert cli_main(["status", "--json", str(runs)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(r["state"], r["done"], r["failed"]) for r in data["runs"]] == [
        ("interrupted", 2, 0), ("complete", 4, 0), ("failed", 4, 1), ("interrupted", 2, 0)]
    assert [r["missing_calls"] for r in data["runs"][:3]] == [[[2, 5]], [], []]
    assert data["runs"][2]["failures"][0]["msg"] == "bad 3"


def test_status_json_of_one_run_and_of_an_empty_folder(tmp_path, capsys):
    out = str(tmp_path / "run")
    ParallelMap(double, list(range(3)), output_dir=out, verbose=False).compute()
    assert cli_main(["status", "--json", out]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["state"], data["done"], data["n_calls"], data["backend"]) == (
        "complete", 3, 3, "joblib")
    assert cli_main(["status", str(tmp_path / "run" / "double_payload")]) == 1
    assert "holds no acme-core run" in capsys.readouterr().out


def test_status_of_a_manifest_without_sessions(tmp_path, capsys):
    """Manifests written before sessions were recorded: the state follows from the counts.
    Such a manifest has the name of the previous layout (no dot), as that version wrote it."""
    out = tmp_path / "old"
    out.mkdir()
    (out / "acme_manifest.jsonl").write_text(
        '{"acme_core_manifest":1,"func":"f","n_inputs":3,"storage":"hdf5",'
        '"created":"2026-11-30T10:15:00"}\n{"i":0,"s":"done"}\n{"i":1,"s":"done"}\n')
    assert cli_main(["status", str(out)]) == 1
    text = capsys.readouterr().out
    assert "state     interrupted" in text and "started   2026-11-30T10:15:00" in text
    assert "elapsed   unknown" in text and "backend   ?" in text


def step_v1(x):
    if x == 2:
        raise ValueError("not yet")
    return x


def step_v2(x):
    return x + 0


def test_status_names_results_of_an_earlier_code_version(tmp_path, capsys):
    for func in (step_v1, step_v2):
        func.__name__ = func.__qualname__ = "step"
    out = str(tmp_path / "run")
    with pytest.raises(ParallelComputationError):
        ParallelMap(step_v1, list(range(4)), output_dir=out, verbose=False).compute()
    ParallelMap(step_v2, list(range(4)), output_dir=out, verbose=False).compute()  # the fix
    assert cli_main(["status", out]) == 0
    text = capsys.readouterr().out
    assert "state     complete" in text and "done 4, failed 0, missing 0" in text
    assert "3 of the 4 results come from an earlier version of the function's code" in text


def test_status_into_a_reader_that_has_left_ends_quietly(tmp_path):
    """``python -m acme_core status DIR | head -1`` when head has gone: no traceback."""
    out = str(tmp_path / "run")
    with pytest.raises(ParallelComputationError):
        ParallelMap(fail_on_three, list(range(5)), output_dir=out, verbose=False).compute()
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before status writes a line
    try:
        done = subprocess.run([sys.executable, "-m", "acme_core", "status", out],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == ""


def test_a_run_killed_after_its_last_call_says_every_call_has_a_result(tmp_path, capsys):
    """A run killed after its last call was recorded, before it wrote its container: the
    status says it was interrupted, that nothing is missing, and that compute() finishes it
    without running a call again; the exit code is 1 (not complete) until then."""
    out = tmp_path / "run"
    ParallelMap(double, list(range(4)), output_dir=str(out), verbose=False).compute()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = out / ".acme_manifest.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    kept = [e for e in events if "end" not in e or e.get("s") == "done"]  # no end line
    for event in kept:
        if "pid" in event:
            event["pid"] = dead.pid  # the session's process is gone
    path.write_text("".join(json.dumps(e) + "\n" for e in kept))
    assert cli_main(["status", str(out)]) == 1
    text = capsys.readouterr().out
    assert "state     interrupted" in text and "done 4, failed 0, missing 0" in text
    assert "To run the failed and missing calls" not in text
    assert "Every call has a result" in text and "no call runs again" in text
    assert cli_main(["status", "--json", str(out)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["elapsed"] == round(data["elapsed"], 3)
