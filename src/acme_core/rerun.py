"""Which calls a ``compute()`` runs on a directory that already holds results.

Every done call's manifest record holds the digests of its split arguments (its session's
start line those of the broadcast ones) and the code version that produced its result (see :mod:`acme_core.manifest`). A ``compute()`` compares them with the current
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .call_runs import CallSet
from .callkeys import ArgumentKeys
from .manifest_state import DONE_CODE, FAILED_CODE, MISSING, RunState

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
    """The calls one ``compute()`` runs, and why (index sequences: a ``range`` for a new
    run, NumPy arrays for a resumed one, never a Python int per call).

    Examples
    --------
    >>> from acme_core.rerun import Selection
    >>> Selection(todo=[3], kept=[0, 1, 2], failed=[3]).summary()
    '1 failed'
    """

    todo: Sequence[int]
    kept: Sequence[int] = field(default_factory=list)
    missing: Sequence[int] = field(default_factory=list)
    failed: Sequence[int] = field(default_factory=list)
    #: Calls whose arguments changed, and per argument name the number of calls it touches.
    changed: Sequence[int] = field(default_factory=list)
    changed_by: Counter[str] = field(default_factory=Counter)
    #: Kept results from an earlier code version, and those re-run for that reason.
    older_code: Sequence[int] = field(default_factory=list)
    recoded: Sequence[int] = field(default_factory=list)
    damaged: Sequence[int] = field(default_factory=list)
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
           rerun: str, damaged: Callable[[CallSet], set[int]] | None = None) -> Selection:
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
        return Selection(todo=range(n_calls), missing=range(n_calls))
    if rerun == "all":
        return Selection(todo=range(n_calls), everything=True)
    codes = state.codes[:n_calls]
    done = codes == DONE_CODE
    changed, changed_by = _changed(state, keys, done, n_calls)
    ids, current = state.version_ids(code)
    other_code = done & ~changed & (ids[:n_calls] != current)
    recoded = other_code if rerun == "changed" else np.zeros(n_calls, dtype=bool)
    older = other_code & ~recoded
    kept = done & ~changed & ~recoded
    sel = Selection(todo=[], missing=np.flatnonzero(codes == MISSING),
                    failed=np.flatnonzero(codes == FAILED_CODE), changed=np.flatnonzero(changed),
                    changed_by=changed_by, recoded=np.flatnonzero(recoded))
    if damaged is not None and kept.any():
        gone = np.fromiter(damaged(CallSet(np.flatnonzero(kept))), dtype=np.int64)
        sel.damaged = np.sort(gone)
        kept[gone] = older[gone] = False
    sel.kept, sel.older_code = np.flatnonzero(kept), np.flatnonzero(older)
    run = ~done | changed | recoded
    run[sel.damaged] = True
    sel.todo = np.flatnonzero(run)
    return sel


def _changed(state: RunState, keys: ArgumentKeys, done: np.ndarray,
             n_calls: int) -> tuple[np.ndarray, Counter[str]]:
    """Which done calls' arguments changed, and per argument name how many calls it
    touches: done records compare digests in arrays, per-call lines (format 2) their key."""
    lines = state.per_call_lines[:n_calls] & done
    batch = done & ~lines
    changed = np.zeros(n_calls, dtype=bool)
    by: Counter[str] = Counter()
    for name, differs in _differing(state, keys, n_calls):
        differs &= batch
        if differs.any():
            changed |= differs
            by[name] += int(np.count_nonzero(differs))
    for i in np.flatnonzero(lines).tolist():
        event = state.event_of(i)
        assert event is not None
        if event.get("key") != keys.legacy_key(i):
            changed[i] = True
            by.update(_changed_names(state, keys, i, event))
    return changed, by


def _differing(state: RunState, keys: ArgumentKeys,
               n_calls: int) -> Iterator[tuple[str, np.ndarray]]:
    """Per argument name, which calls' recorded digest differs from the current one (a
    split digest never equals a broadcast one: they differ in length)."""
    sessions = state.session_of[:n_calls]
    recorded = {r: run.get("broadcast") or {} for r, run in state.runs.items()}
    names = {*keys.split, *keys.broadcast, *state.split_names,
             *(n for b in recorded.values() for n in b)}
    for name in sorted(names):
        old = state.split_digests(name)
        has = old[1][:n_calls] if old is not None else np.zeros(n_calls, dtype=bool)
        if name in keys.split:
            same = has.copy()
            if old is not None:
                same &= (old[0][:n_calls] == keys.split[name]).all(axis=1)
            yield name, ~same
            continue
        now = keys.broadcast.get(name)
        bad = [r for r, b in recorded.items() if b.get(name) != now]
        unknown = ~np.isin(sessions, list(recorded)) if now is not None else False
        yield name, has | np.isin(sessions, bad) | unknown


def _changed_names(state: RunState, keys: ArgumentKeys, index: int,
                   event: dict[str, Any]) -> list[str]:
    old = {**(state.broadcast_of(index) or {}), **event.get("a", {})}
    new = {**keys.broadcast, **keys.legacy_split_of(index)}
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
    if len(sel.damaged):
        shown = ", ".join(map(str, sel.damaged[:20])) + (" ..." if len(sel.damaged) > 20 else "")
        log.warning(f"{len(sel.damaged)} call(s) recorded as done have a missing or unreadable "
                    f"result in {output_dir} (calls {shown}); they run again.")
    if len(sel.older_code):
        log.warning(f"{len(sel.older_code)} of {n_calls} results in {output_dir} come from an "
                    f"earlier version of `{func_name}` (its code or code it calls changed); they "
                    f"are kept. Pass rerun=\"changed\" to re-run them with the current code.")
    if len(sel.recoded):
        log.info(f"{len(sel.recoded)} result(s) from an earlier version of `{func_name}` run "
                 f"again (rerun=\"changed\").")
    if not len(sel.todo):
        log.info(f"Nothing to run: all {n_calls} calls in {output_dir} have results from the "
                 f"same arguments{'' if len(sel.older_code) else ' and code'}. Pass rerun=\"all\" "
                 f"(or rerun=\"changed\") to compute them again.")
    elif len(sel.kept) or sel.everything:
        log.info(f"Resuming the run in {output_dir}: {len(sel.kept)} of {n_calls} calls have "
                 f"results and are kept; running {len(sel.todo)} ({sel.summary()}).")
