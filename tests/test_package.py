"""``from acme_core import load`` is the function, whatever was imported before."""

from __future__ import annotations

import subprocess
import sys


def test_load_stays_the_function_after_its_submodule_is_imported(tmp_path):
    code = ("from acme_core.load import MissingResultsWarning\n"
            "import acme_core.load\n"
            "from acme_core import load, ParallelMap\n"
            "assert callable(load) and load.__name__ == 'load', load\n"
            "p = ParallelMap(abs, [-1, -2], output_dir='run', verbose=False)\n"
            "p.compute()\n"
            "print([int(r[0]) for r in load(p.output_dir)])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[1, 2]"
