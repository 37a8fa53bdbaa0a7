"""Readable failures: arguments summarised in failure rows, the table as HTML and as a
DataFrame, and a run summary for Jupyter."""

from __future__ import annotations

import numpy as np
import pytest

from acme_core import ParallelComputationError, ParallelMap


def fail_on_second(data, label):
    if label == "b":
        raise ValueError("second trial is bad")
    return float(np.asarray(data).sum())


def test_failure_rows_summarise_arrays_and_keep_strings():
    trials = [np.ones((16, 2000), dtype="float32") for _ in range(3)]
    pmap = ParallelMap(fail_on_second, trials, ["a", "b", "c"], write_worker_results=False,
                       verbose=False)
    with pytest.raises(ParallelComputationError) as info:
        pmap.compute()
    row = info.value.failures[0]
    assert row.arguments == "data=<ndarray float32 (16, 2000)>, label='b'"
    text = str(info.value.failures)
    header, row = text.splitlines()[:2]  # then the replay lines
    assert header.startswith("call") and row.startswith("1 ")
    assert row.endswith("data=<ndarray float32 (16, 2000)>, label='b'")
    assert "replay" in text.splitlines()[3]
    assert "data=<ndarray float32 (16, 2000)>" in str(info.value)


def test_failures_as_html_and_dataframe():
    pd = pytest.importorskip("pandas")
    frames = [pd.DataFrame(np.zeros((3, 4))) for _ in range(2)]
    pmap = ParallelMap(fail_on_second, frames, ["a", "b"], write_worker_results=False,
                       verbose=False)
    with pytest.raises(ParallelComputationError) as info:
        pmap.compute()
    failures = info.value.failures
    html = failures._repr_html_()
    assert "<table class='acme-failures'" in html and "<details>" in html
    assert "ValueError: second trial is bad" in html
    assert "data=&lt;DataFrame 3x4&gt;, label=&#x27;b&#x27;" in html
    frame = failures.to_dataframe()
    assert list(frame.index) == [1] and frame.loc[1, "exc_type"] == "ValueError"
    assert frame.loc[1, "arguments"] == "data=<DataFrame 3x4>, label='b'"
    summary = pmap._repr_html_()
    assert "1 done, 1 failed, 0 retried" in summary and "acme-failures" in summary


def test_run_summary_of_an_on_disk_run(tmp_path):
    pmap = ParallelMap(abs, [-1, -2, -3], output_dir=str(tmp_path / "run"), verbose=False)
    assert "not computed yet" in pmap._repr_html_()
    pmap.compute()
    html = pmap._repr_html_()
    assert pmap.results_container in html and "3 done, 0 failed" in html
    assert "<code>joblib</code>" in html and "<code>hdf5</code>" in html
    assert "elapsed" in html and "state</th><td style='text-align:left'><code>complete" in html


SCRIPT = """\
from acme_core import ParallelComputationError, ParallelMap

def helper(y):
    return 1 / y

def analyse(x):
    return helper(x - 2)

if __name__ == "__main__":
    try:
        ParallelMap(analyse, [1, 2, 3], write_worker_results=False, backend={backend!r},
                    verbose=False).compute()
    except ParallelComputationError as err:
        print(err.failures[0].traceback)
"""


@pytest.mark.parametrize("backend", ["joblib", "futures"])
def test_tracebacks_of_a_scripts_functions_show_their_source_lines(tmp_path, backend):
    import subprocess
    import sys

    script = tmp_path / "analysis.py"
    script.write_text(SCRIPT.format(backend=backend))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tb = proc.stdout
    assert "<dynamic-code>" not in tb
    assert f'  File "{script}", line 7, in analyse\n    return helper(x - 2)\n' in tb
    assert f'  File "{script}", line 4, in helper\n    return 1 / y\n' in tb
    assert "ZeroDivisionError: division by zero" in tb


def test_run_summary_links_the_dask_dashboard_when_one_is_served(no_dask_client_left):
    pytest.importorskip("bokeh")
    from acme_dask import cluster_cleanup, local_cluster_setup

    client = local_cluster_setup(n_workers=1, interactive=False, dashboard=True)
    try:
        pmap = ParallelMap(abs, [-1, -2], write_worker_results=False, backend="dask",
                           verbose=False)
        pmap.compute()
        link = client.dashboard_link
        assert link.startswith("http://127.0.0.1:")
        assert f"<a href='{link}' target='_blank'>" in pmap._repr_html_()
    finally:
        cluster_cleanup(client)
