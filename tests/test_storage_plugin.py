"""A storage from an outside distribution (docs/examples/acme_npy) writes and reads back
through ``acme_core.load`` with no change in acme-core: the run's marker names the storage,
the plugin registry finds its class, its ``load`` reads."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from acme_core import MissingResultsWarning, ParallelComputationError, ParallelMap, load, plugins
from tests.helpers.funcs import fail_on_3, ones_of_length


def test_the_example_storage_is_registered_by_its_entry_point():
    registered = plugins.storages()["npy"]
    assert registered.distribution == "acme-npy"
    assert registered.spec.on_disk and registered.spec.factory.__module__ == "acme_npy"


def test_results_and_failures_read_back_through_load(tmp_path):
    out = str(tmp_path / "run")
    with pytest.raises(ParallelComputationError):
        ParallelMap(fail_on_3, list(range(6)), storage="npy", output_dir=out,
                    verbose=False).compute()
    assert sorted(os.listdir(os.path.join(out, "fail_on_3_npy"))) == [
        f"{i}.npy" for i in (0, 1, 2, 4, 5)]
    with pytest.warns(MissingResultsWarning, match="1 of 6 calls have no result .*: call 3"):
        values, missing = load(out, return_missing=True)
    assert missing == [3] and values[3] is None
    assert [int(values[i]) for i in (0, 1, 2, 4, 5)] == [0, 2, 4, 8, 10]


def test_a_lost_file_is_missing_and_a_resume_writes_it_again(tmp_path):
    out = str(tmp_path / "run")
    ParallelMap(ones_of_length, [1, 2, 3], storage="npy", output_dir=out,
                verbose=False).compute()
    assert [v.tolist() for v in load(out)] == [[1.0], [1.0, 1.0], [1.0, 1.0, 1.0]]
    os.remove(os.path.join(out, "ones_of_length_npy", "1.npy"))
    with pytest.warns(MissingResultsWarning, match="call 1"):
        assert load(out)[1] is None
    kept = os.stat(os.path.join(out, "ones_of_length_npy", "0.npy")).st_mtime_ns
    # the same run again in the same output_dir: only the lost call runs (damaged())
    ParallelMap(ones_of_length, [1, 2, 3], storage="npy", output_dir=out,
                verbose=False).compute()
    assert np.array_equal(load(out)[1], np.ones(2))
    assert os.stat(os.path.join(out, "ones_of_length_npy", "0.npy")).st_mtime_ns == kept


def test_damaged_is_asked_about_the_done_calls_as_a_set(tmp_path, monkeypatch):
    """A storage's damaged() may use its argument as the set it always was (len, in, two
    passes, set difference): the resume re-runs exactly the lost call."""
    import acme_npy

    out = str(tmp_path / "run")
    ParallelMap(ones_of_length, [1, 2, 3, 4], storage="npy", output_dir=out,
                verbose=False).compute()
    os.remove(os.path.join(out, "ones_of_length_npy", "2.npy"))
    asked = []

    def damaged(self, indices):
        asked.append((len(indices), 3 in indices, 7 in indices))
        present = {i for i in indices if os.path.isfile(acme_npy._path(self.settings, i))}
        return set(indices - present)

    monkeypatch.setattr(acme_npy.NpyStorage, "damaged", damaged)
    kept = os.stat(os.path.join(out, "ones_of_length_npy", "0.npy")).st_mtime_ns
    ParallelMap(ones_of_length, [1, 2, 3, 4], storage="npy", output_dir=out,
                verbose=False).compute()
    assert asked == [(4, True, False)]
    assert [len(v) for v in load(out)] == [1, 2, 3, 4]
    assert os.stat(os.path.join(out, "ones_of_length_npy", "0.npy")).st_mtime_ns == kept


def test_a_user_script_reads_the_run_back_in_a_new_process(tmp_path):
    out = str(tmp_path / "run")
    script = ("from acme_core import ParallelMap\n"
              "if __name__ == '__main__':\n"
              f"    ParallelMap(abs, [-1, -2, -3], storage='npy', output_dir={out!r},\n"
              "                verbose=False).compute()\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=300)
    reader = f"from acme_core import load; print([int(v) for v in load({out!r})])"
    done = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True,
                          check=True, timeout=300)
    assert done.stdout.strip() == "[1, 2, 3]"
