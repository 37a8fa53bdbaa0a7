"""The progress bar: shown where a person watches (a terminal, Jupyter's widget), quiet
otherwise, and a resumed run counts from what was done already."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from acme_core import ParallelComputationError, ParallelMap, hookimpl
from acme_core.plugins import get_plugin_manager
from tests.helpers.funcs import broken_while_flagged, fail_every_100

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_resumed_run_counts_from_the_calls_already_done(tmp_path, capsys):
    flags, counts = tmp_path / "flags", tmp_path / "counts"
    flags.mkdir()
    counts.mkdir()
    (flags / "broken").touch()  # call 17 fails while the flag is there
    out = str(tmp_path / "run")
    with pytest.raises(ParallelComputationError):
        ParallelMap(broken_while_flagged, list(range(20)), str(flags), str(counts),
                    output_dir=out, backend="threads", progress=True).compute()
    err = capsys.readouterr().err
    assert "20/20" in err and "failed=1" in err
    (flags / "broken").unlink()
    ParallelMap(broken_while_flagged, list(range(20)), str(flags), str(counts),
                output_dir=out, backend="threads", progress=True).compute()
    err = capsys.readouterr().err
    assert "19/20" in err and "20/20" in err and " 0/20" not in err and "0/1 " not in err


def test_no_bar_when_stderr_is_no_terminal_or_verbose_is_false(capsys):
    ParallelMap(abs, [-1, -2, -3], write_worker_results=False, backend="threads").compute()
    ParallelMap(abs, [-1, -2, -3], write_worker_results=False, backend="threads",
                verbose=False).compute()
    assert "3/3" not in capsys.readouterr().err


def test_a_terminal_gets_the_bar_by_default(tmp_path):
    """stderr on a real pseudo-terminal: the bar shows without progress=True."""
    import fcntl
    import pty
    import struct
    import termios

    script = tmp_path / "run.py"
    script.write_text(
        "from acme_core import ParallelMap\n"
        "if __name__ == '__main__':\n"
        "    ParallelMap(abs, list(range(-5, 0)), write_worker_results=False,\n"
        "                backend='threads').compute()\n")
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=secondary, cwd=ROOT)
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        seen += chunk
    os.close(primary)
    assert proc.wait(timeout=300) == 0
    assert b"5/5" in seen and b"call" in seen and b"IProgress" not in seen


class _Counter:
    """A plugin that counts finished calls a batch at a time, as the bar does."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def acme_core_calls_finished(self, run, indices):
        self.seen.extend(indices)


@pytest.mark.parametrize("func", [abs, fail_every_100])
def test_calls_finished_hears_every_finished_call_once(func):
    """Batches without failures (one step to the storage) and batches with a failed call
    (routed call by call) both reach the per-batch hook: every finished call, once."""
    counter = _Counter()
    pm = get_plugin_manager()
    pm.register(counter, name="test-counter")
    try:
        pmap = ParallelMap(func, list(range(1, 1001)), write_worker_results=False,
                           backend="joblib", n_workers=2, verbose=False)
        if func is fail_every_100:
            with pytest.raises(ParallelComputationError):
                pmap.compute()
        else:
            pmap.compute()
    finally:
        pm.unregister(counter)
    failed = {f.index for f in pmap.failures} if func is fail_every_100 else set()
    assert sorted(counter.seen) == [i for i in range(1000) if i not in failed]
    assert len(failed) == (10 if func is fail_every_100 else 0)
