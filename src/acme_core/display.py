"""Rich display of a ParallelMap in Jupyter: what ran where, and where the results are."""

from __future__ import annotations

import html
from typing import Any


def dashboard_link(executor: Any) -> str | None:
    """The dask dashboard of a run's executor, when it has one (any backend may offer a
    ``dashboard_link`` attribute; dask executors expose their client's)."""
    try:  # a client's property asks its scheduler: never let that break a run
        link = getattr(executor, "dashboard_link", None)
        if link is None:
            link = getattr(getattr(executor, "_client", None), "dashboard_link", None)
    except Exception:
        return None
    return link if isinstance(link, str) and link else None


def run_summary_html(pmap: Any) -> str:
    """The HTML ``pmap._repr_html_()`` shows: function, calls, backend, storage, where the
    results are, and after ``compute()`` the counts, elapsed time, dashboard and failures.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> pmap = ParallelMap(abs, [-1, -2], write_worker_results=False, verbose=False)
    >>> pmap.compute()
    [1, 2]
    >>> html = pmap._repr_html_()
    >>> "<b>abs</b>" in html and "2 done" in html and "memory" in html
    True
    """
    rows = [("backend", pmap.backend), ("storage", pmap.storage)]
    where = pmap.results_container or pmap.output_dir
    rows.append(("results", where if where else "in memory (returned by compute())"))
    if pmap.logfile:
        rows.append(("log", pmap.logfile))
    summary = getattr(pmap, "_summary", None)
    if summary is None:
        rows.append(("state", "not computed yet"))
    else:
        state = ("interrupted" if summary.interrupted else "failed" if summary.n_failed
                 else "complete")
        skipped = summary.n_calls - summary.n_done - summary.n_failed
        counts = f"{summary.n_done} done, {summary.n_failed} failed, {summary.n_retried} retried"
        if skipped > 0 and not summary.interrupted:
            counts += f" (of {summary.n_calls}; {skipped} had results from an earlier session)"
        rows += [("state", state), ("calls", counts), ("elapsed", f"{summary.elapsed:.1f} s")]
    link = getattr(pmap, "_dashboard", None)
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'><code>{html.escape(str(v))}</code></td></tr>"
        for k, v in rows)
    if link:
        body += (f"<tr><th style='text-align:left'>dashboard</th><td style='text-align:left'>"
                 f"<a href='{html.escape(link)}' target='_blank'>{html.escape(link)}</a></td></tr>")
    text = (f"<div class='acme-run'><p><b>{html.escape(pmap._plan.func_name)}</b>: "
            f"{pmap.n_inputs} calls</p><table>{body}</table>")
    if len(pmap.failures):
        text += pmap.failures._repr_html_()
    return text + "</div>"
