"""The lifecycle hooks of one run, called only when some plugin listens.

Asking pluggy whether a hook has implementations costs little, calling an empty hook
per call does not (ten thousand tiny calls): :class:`RunHooks` asks once, when the run
starts, after every listener of the run (its progress bar) is registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .plugins import get_plugin_manager, has_listeners

if TYPE_CHECKING:  # pragma: no cover
    from .records import CallOutcome, RunInfo, RunSummary

_CALL_EVENTS = ("finished", "failed", "retried")


class RunHooks:
    """Calls the ``acme_core_*`` lifecycle hooks of run ``info``.

    Examples
    --------
    >>> from acme_core.lifecycle import RunHooks
    >>> from acme_core.records import RunInfo
    >>> hooks = RunHooks(RunInfo("r1", "f", 4, "joblib", "memory", None))
    >>> hooks.run_started()   # nobody listens: nothing is called
    """

    def __init__(self, info: RunInfo, hook: Any = None) -> None:
        self.info = info
        self._hook = get_plugin_manager().hook if hook is None else hook
        self._calls = {name: has_listeners(f"acme_core_call_{name}") for name in _CALL_EVENTS}
        self._batches = has_listeners("acme_core_calls_finished")
        self._run = {name: has_listeners(f"acme_core_run_{name}")
                     for name in ("started", "finished")}

    def run_started(self) -> None:
        """The executor has started."""
        if self._run["started"]:
            self._hook.acme_core_run_started(run=self.info)

    def listens(self, event: str) -> bool:
        """True when some plugin listens to call ``event`` (``"finished"``, ...)."""
        return bool(self._calls[event])

    def call(self, event: str, outcome: CallOutcome) -> None:
        """A call ``event`` (``"finished"``, ``"failed"``, ``"retried"``) happened."""
        if self._calls[event]:
            getattr(self._hook, f"acme_core_call_{event}")(run=self.info, outcome=outcome)

    def calls_finished(self, indices: Sequence[int]) -> None:
        """The calls ``indices`` (of one batch) finished and were stored."""
        if self._batches and indices:
            self._hook.acme_core_calls_finished(run=self.info, indices=indices)

    def run_finished(self, summary: RunSummary) -> None:
        """The run ended (not after an exception)."""
        if self._run["finished"]:
            self._hook.acme_core_run_finished(run=self.info, summary=summary)
