"""Which calls a ``compute()`` runs on a directory that already holds results.

Every call's manifest line records its argument key and the code version that produced
its result (see :mod:`acme_core.manifest`). A ``compute()`` compares them with the current
arguments and code:

- a call without a result (never run, interrupted, failed) runs;
- a call whose own arguments changed runs again: its old result belongs to other inputs,
  and results of different argument values are never mixed;
- a call with a result from the same arguments is kept, even when the function's code
  changed since (``rerun="missing"``, the default; one warning counts them), or runs again
  (``rerun="changed"``); ``rerun="all"`` runs every call;
- a kept result the storage finds missing or unreadable (``Storage.damaged``) runs again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .callkeys import ArgumentKeys
from .manifest import DONE, RunState

log = logging.getLogger("acme_core")

#: ``rerun=`` values and what they re-run besides calls without a result or with changed
#: arguments (those always run).
RERUN_CHOICES = {
    "missing": "keep results of earlier code versions (warns with their count)",
    "changed": "also re-run calls whose result came from an earlier code version",
    "all": "re-run every call",
}


@dataclass
class Selection:
    """The calls one ``compute()`` runs, and why.

    Examples
    --------
    >>> from acme_core.rerun import Selection
    >>> Selection(todo=[3], kept=[0, 1, 2], failed=[3]).summary()
    '1 failed'
    """

    todo: list[int]
    kept: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    #: Calls whose arguments changed, and per argument name the number of calls it touches.
    changed: list[int] = field(default_factory=list)
    changed_by: Counter[str] = field(default_factory=Counter)
    #: Kept results from an earlier code version, and those re-run for that reason.
    older_code: list[int] = field(default_factory=list)
    recoded: list[int] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)
    everything: bool = False

    def summary(self) -> str:
        """Why the calls to run are run, e.g. ``"1 failed, 10 with changed arguments"``."""
        if self.everything:
            return 'rerun="all"'
        parts = [(len(self.missing), "without a result"), (len(self.failed), "failed"),
                 (len(self.changed), "with changed arguments"),
                 (len(self.recoded), "from an earlier code version"),
                 (len(self.damaged), "with a damaged result")]
        return ", ".join(f"{n} {what}" for n, what in parts if n)


def select(n_calls: int, state: RunState | None, keys: ArgumentKeys | None, code: str,
           rerun: str, damaged: Callable[[set[int]], set[int]] | None = None) -> Selection:
    """Decide which of ``n_calls`` calls run; see the module docstring.

    Parameters
    ----------
    n_calls : int
        Calls of the run.
    state : RunState, optional
        What the manifest says (None: a new run, every call runs).
    keys : ArgumentKeys, optional
        The current arguments' digests (None: no manifest is kept).
    code : str
        The current code version.
    rerun : {"missing", "changed", "all"}
        The re-run policy.
    damaged : callable, optional
        ``Storage.damaged``: which of the given done calls have no readable result.
    """
    if state is None or keys is None:
        return Selection(todo=list(range(n_calls)), missing=list(range(n_calls)))
    if rerun == "all":
        return Selection(todo=list(range(n_calls)), everything=True)
    sel = Selection(todo=[])
    for i in range(n_calls):
        event = state.calls.get(i)
        if event is None:
            sel.missing.append(i)
        elif event["s"] != DONE:
            sel.failed.append(i)
        elif event.get("key") != keys.key(i):
            sel.changed.append(i)
            sel.changed_by.update(_changed_names(state, keys, i))
        elif event.get("code") != code:
            (sel.recoded if rerun == "changed" else sel.older_code).append(i)
        else:
            sel.kept.append(i)
    sel.kept += sel.older_code
    if damaged is not None and sel.kept:
        sel.damaged = sorted(damaged(set(sel.kept)))
        gone = set(sel.damaged)
        sel.kept = [i for i in sel.kept if i not in gone]
        sel.older_code = [i for i in sel.older_code if i not in gone]
    sel.todo = sorted({*sel.missing, *sel.failed, *sel.changed, *sel.recoded, *sel.damaged})
    sel.kept.sort()
    return sel


def _changed_names(state: RunState, keys: ArgumentKeys, index: int) -> list[str]:
    event = state.calls[index]
    old = {**(state.broadcast_of(index) or {}), **event.get("a", {})}
    new = keys.of_call(index)
    names = sorted(n for n in old.keys() | new.keys() if old.get(n) != new.get(n))
    return names or ["(not recorded)"]


def report(sel: Selection, n_calls: int, func_name: str, output_dir: str) -> None:
    """Log what a ``compute()`` on an existing run directory does, once per reason."""
    if sel.changed_by:
        parts = ", ".join(f"{name!r} ({'all ' if count == n_calls else ''}{count} "
                          f"call{'s' if count != 1 else ''})"
                          for name, count in sorted(sel.changed_by.items()))
        log.info(f"Arguments changed since the results in {output_dir} were computed: {parts}; "
                 f"{len(sel.changed)} call(s) with changed arguments run again.")
    if sel.damaged:
        shown = ", ".join(map(str, sel.damaged[:20])) + (" ..." if len(sel.damaged) > 20 else "")
        log.warning(f"{len(sel.damaged)} call(s) recorded as done have a missing or unreadable "
                    f"result in {output_dir} (calls {shown}); they run again.")
    if sel.older_code:
        log.warning(f"{len(sel.older_code)} of {n_calls} results in {output_dir} come from an "
                    f"earlier version of `{func_name}` (its code or code it calls changed); they "
                    f"are kept. Pass rerun=\"changed\" to re-run them with the current code.")
    if sel.recoded:
        log.info(f"{len(sel.recoded)} result(s) from an earlier version of `{func_name}` run "
                 f"again (rerun=\"changed\").")
    if not sel.todo:
        log.info(f"Nothing to run: all {n_calls} calls in {output_dir} have results from the "
                 f"same arguments{'' if sel.older_code else ' and code'}. Pass rerun=\"all\" "
                 f"(or rerun=\"changed\") to compute them again.")
    elif sel.kept or sel.everything:
        log.info(f"Resuming the run in {output_dir}: {len(sel.kept)} of {n_calls} calls have "
                 f"results and are kept; running {len(sel.todo)} ({sel.summary()}).")
