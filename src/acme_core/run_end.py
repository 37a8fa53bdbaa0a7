"""How a run ends, as the user sees it: the result, or the exception and the log lines
that say what finished, what failed and how to go on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import replays
from .calls import disk_hint
from .errors import ParallelComputationError
from .failures import FailureTable
from .records import RunSummary
from .session import log_failure_summary
from .storage.base import Storage

log = logging.getLogger("acme_core")


def failure_table(summary: RunSummary, describe: Callable[[int], str], func: Any,
                  output_dir: str | None) -> FailureTable:
    """The failures table of a run (``err.failures``, ``pmap.failures``)."""
    table = FailureTable([(f, describe(f.index)) for f in summary.failures], func=func)
    table.replay_dir = output_dir
    return table


def stored_result(storage: Storage, summary: RunSummary) -> Any:
    """What the storage hands back at the end; a full disk that keeps the container from
    being written is said, not raised, when calls failed too (their table follows)."""
    try:
        return storage.finish()
    except OSError as exc:
        if not (disk_hint(exc) and summary.failures):
            raise
        log.error(f"Writing the results container failed ({exc}). {disk_hint(exc)}.")
        return None


def conclude(result: Any, summary: RunSummary, failures: FailureTable, n_ran: int,
             where: str | None, output_dir: str | None, stopped: str = "") -> Any:
    """Return ``result`` of a complete run, or say why the run ended early and raise.

    Raises
    ------
    KeyboardInterrupt
        The run was interrupted (the log says how to resume).
    ParallelComputationError
        Some calls failed.
    """
    if stopped:
        log.warning(f"Stopped early: {summary.n_done} of {n_ran} calls finished"
                    + (f"; create the same ParallelMap with output_dir={output_dir!r} to run "
                       f"the others." if output_dir else "."))
        return None
    if summary.interrupted:
        resume = (f" To finish the run, create the same ParallelMap with "
                  f"output_dir={output_dir!r} and call compute() again: only the missing calls "
                  f"run." if output_dir else "")
        log.error(f"Interrupted: {summary.n_done} of {n_ran} calls finished"
                  + (f"; their results are in {where}." if where else ".") + resume)
        raise KeyboardInterrupt
    if failures:
        message = failure_message(failures, n_ran, where, output_dir)
        log_failure_summary(message)
        raise ParallelComputationError(message, failures)
    if where is not None:
        log.info(f"SUCCESS! Results have been saved to {where}")
    else:
        log.info("Finished parallel computation")
    return result


def failure_message(failures: FailureTable, n: int, where: str | None,
                    output_dir: str | None) -> str:
    """The text of :class:`ParallelComputationError`: counts, the first failure, what to do."""
    first = failures[0]
    shown = failures.indices[:20]
    more = f" (and {len(failures) - 20} more)" if len(failures) > 20 else ""
    said = first.message if first.message.endswith((".", "?", "!")) else f"{first.message}."
    text = (f"Parallel computation failed: {len(failures)}/{n} tasks failed. First failure: call "
            f"{first.index} ({first.arguments}) raised {first.exc_type}: {said} "
            f"Failed calls: {shown}{more}.")
    if where is not None:
        text += f" Results of the other calls are stored in {where}."
    text += (" Inspect `err.failures` (also `pmap.failures`); `compute(debug=True)` re-raises "
             "the original exception in this process, and "
             f"`{replays.replay_hint(output_dir, first.index)}` runs just call {first.index} "
             f"here, with its arguments and random draws (pdb works).")
    if output_dir is not None:
        text += (f" After a fix, calling compute() again (or the same ParallelMap with "
                 f"output_dir={output_dir!r}) re-runs only the failed calls.")
    return text
