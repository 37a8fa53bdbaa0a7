"""The progress bar: a built-in plugin fed by the lifecycle hooks (finished calls counted a
batch at a time).

It shows done, failed, running and retried counts (and the backend's own, such as queued
SLURM jobs) and an ETA: tqdm's notebook widget in Jupyter when ipywidgets is installed,
else tqdm's text bar. It is registered for one run only when it will show:
``progress=True``, or by default when a person watches (``verbose`` is not False, and
stderr is a terminal or the code runs in a Jupyter kernel). A resumed run's bar starts at
the calls that already have results (``65/200``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from .hookspecs import hookimpl


def in_jupyter() -> bool:
    """True inside a Jupyter (IPython) kernel.

    Examples
    --------
    >>> from acme_core.progress import in_jupyter
    >>> in_jupyter()
    False
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def wanted(progress: bool | None, verbose: bool | None) -> bool:
    """Whether a run shows a bar: as ``progress`` says, else when someone watches.

    Examples
    --------
    >>> from acme_core.progress import wanted
    >>> wanted(True, False), wanted(None, False), wanted(False, None)
    (True, False, False)
    """
    if progress is not None:
        return progress
    if verbose is False:
        return False
    stderr = sys.stderr
    return in_jupyter() or (stderr is not None and stderr.isatty())


def _bar_class() -> Any:
    """The notebook widget in Jupyter with ipywidgets installed, else the text bar (never
    tqdm's "IProgress not found" warning)."""
    if in_jupyter():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm
        except ImportError:
            pass
    from tqdm.std import tqdm

    return tqdm


class ProgressBar:
    """Lifecycle-hook implementation that drives a tqdm bar.

    Examples
    --------
    >>> from acme_core.progress import ProgressBar
    >>> import io
    >>> bar = ProgressBar(total=3, n_workers=2, initial=1, file=io.StringIO())
    >>> bar.counts()
    {'running': 2, 'failed': 0}
    >>> ProgressBar(total=3, n_workers=2, file=io.StringIO(),
    ...             status=lambda: {"queued": 5}).counts()["queued"]
    5
    >>> bar.close()
    """

    def __init__(self, total: int, n_workers: int, initial: int = 0, file: Any = None,
                 status: Callable[[], dict[str, int]] | None = None) -> None:
        tqdm = _bar_class()
        self.total, self.n_workers = total, n_workers
        self.done, self.failed, self.retried = initial, 0, 0
        self._status = status
        self._extra: dict[str, int] = {}
        self._asked = 0.0
        self._closed = False
        self.bar = tqdm(total=total, initial=initial, file=file or sys.stderr, unit="call",
                        dynamic_ncols=True, smoothing=0.05)

    def counts(self) -> dict[str, int]:
        """The figures shown after the bar (plus the backend's own, e.g. queued jobs)."""
        left = self.total - self.done - self.failed
        if self._status is not None and time.monotonic() - self._asked >= 1.0:
            self._asked = time.monotonic()
            self._extra = self._status()
        shown = {"running": min(self.n_workers, left), "failed": self.failed}
        if self.retried:
            shown["retried"] = self.retried
        return {**shown, **{k: v for k, v in self._extra.items() if v}}

    def _show(self, advance: int) -> None:
        self.bar.set_postfix(self.counts(), refresh=False)
        self.bar.update(advance)

    # counted per batch: a bar listening to each call would send every batch down the
    # per-call path (see ``RunLoop._route_whole``)
    @hookimpl
    def acme_core_calls_finished(self, run: Any, indices: Any) -> None:
        self.done += len(indices)
        self._show(len(indices))

    @hookimpl
    def acme_core_call_failed(self, run: Any, outcome: Any) -> None:
        self.failed += 1
        self._show(1)

    @hookimpl
    def acme_core_call_retried(self, run: Any, outcome: Any) -> None:
        self.retried += 1
        self._show(0)

    def close(self) -> None:
        """Show the final counts once and close the bar (again: nothing happens)."""
        if self._closed:
            return
        self._closed = True
        self._status, self._extra = None, {}  # nothing is queued any more
        self.bar.set_postfix(self.counts(), refresh=False)
        self.bar.close()

    @hookimpl
    def acme_core_run_finished(self, run: Any, summary: Any) -> None:
        self.close()
