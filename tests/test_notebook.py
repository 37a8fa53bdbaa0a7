"""In Jupyter (a real kernel run by nbclient): the progress widget by default, the failures
table and the run summary as HTML, with a notebook-defined function on joblib and dask."""

from __future__ import annotations

import html
import json

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipywidgets")

CELLS = [
    """\
from acme_core import ParallelComputationError, ParallelMap

def square_but_three(x):
    if x == 3:
        raise ValueError(f"bad input {x}")
    return x * x""",
    """\
pmap = ParallelMap(square_but_three, list(range(6)), write_worker_results=False,
                   backend="{backend}")
try:
    pmap.compute()
except ParallelComputationError as err:
    failures = err.failures""",
    "failures",
    "pmap",
]


def widget_states(nb) -> list[dict]:
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [model["state"] for model in state.values()]


@pytest.mark.parametrize("backend", ["joblib", "dask"])
def test_notebook_shows_the_widget_and_html_tables(backend, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.replace("{backend}", backend)) for c in CELLS]
    if backend == "dask":  # stop the local cluster the run started in this kernel
        nb.cells.append(nbformat.v4.new_code_cell("pmap.cleanup()"))
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    run_cell = nb.cells[1]
    assert any("application/vnd.jupyter.widget-view+json" in out.get("data", {})
               for out in run_cell.outputs), run_cell.outputs
    stderr = "".join(out.get("text", "") for out in run_cell.outputs
                     if out.get("name") == "stderr")
    assert "IProgress" not in stderr and "TqdmWarning" not in stderr
    states = widget_states(nb)
    bars = [s for s in states if s.get("_model_name") == "FloatProgressModel"]
    assert [(b["value"], b["max"]) for b in bars] == [(6, 6)]  # the final state: 6 of 6
    texts = " ".join(str(s.get("value", "")) for s in states if s.get("_model_name") == "HTMLModel")
    assert "6/6" in texts and "failed=1" in texts
    table = nb.cells[2].outputs[0]["data"]["text/html"]
    assert "<table class='acme-failures'" in table
    assert "ValueError: bad input 3" in table and "<code>x=3</code>" in table
    # the cell's own line, not <dynamic-code>
    assert html.escape('raise ValueError(f"bad input {x}")') in table
    assert "&lt;dynamic-code&gt;" not in table
    summary = nb.cells[3].outputs[0]["data"]["text/html"]
    assert f"<code>{backend}</code>" in summary and "5 done, 1 failed" in summary
    assert json.dumps(nb.cells[3].outputs[0]["data"]).count("acme-failures") == 1
