"""``dryrun=True``: one sampled call in the parent before anything else starts.

``ParallelMap`` calls :func:`dry_run` after validation and pickling and before it creates
the output directory, the log file or any worker, so answering "n" leaves nothing behind
(ACME created the directory first and removed it again).
"""

from __future__ import annotations

import logging
import random
import sys
import time
import tracemalloc

from .arguments import CallPlan
from .calls import CallProgram

log = logging.getLogger("acme_core")

_NO = ("n", "no")


def dry_run(program: CallProgram, plan: CallPlan, interactive: bool) -> bool:
    """Run one random call in this process, report its time and peak memory, and ask
    whether to go on (only when ``interactive`` and stdin is a terminal).

    The call's return value is discarded: nothing is stored.

    Parameters
    ----------
    program : CallProgram
        The run's program (function, broadcast arguments, how to assemble a call).
    plan : CallPlan
        The run's argument plan (split values of every call).
    interactive : bool
        ParallelMap's ``setup_interactive``: may the user be asked?

    Returns
    -------
    bool
        False when the user answered no (or closed the input); True otherwise, and always
        when nobody can be asked (stdin not a terminal, or ``interactive=False``).

    Raises
    ------
    Exception
        Whatever the sampled call raises, unchanged (nothing has been created yet).

    Examples
    --------
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.calls import CallProgram
    >>> from acme_core.dryrun import dry_run
    >>> plan = build_call_plan(pow, ([1, 2, 3], 2), {}, "auto", 1024)
    >>> slots, constants = plan.layout()
    >>> dry_run(CallProgram("run", pow, slots, constants, writer=None), plan, interactive=False)
    True
    """
    index = random.randrange(plan.n_inputs)
    log.info(f"Performing a single dry-run of {plan.func_name} simulating randomly picked "
             f"call #{index} (nothing is stored)...")
    args, kwargs = program.arguments(index, plan.split_values(index))
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        program.func(*args, **kwargs)
    except Exception:
        log.error(f"Dry-run of {plan.func_name} failed in call #{index} "
                  f"({plan.describe_call(index)}); nothing was started.")
        raise
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        if not tracing:
            tracemalloc.stop()
    log.info(f"Dry-run completed. Elapsed time is {elapsed:.3f} seconds, estimated memory "
             f"consumption was {peak / 1024**2:.2f} MB.")
    if not (interactive and _stdin_is_terminal()):
        return True
    try:
        answer = input(f"Do you want to continue executing {plan.func_name} with the provided "
                       f"arguments? [Y/n] ")
    except EOFError:
        return False
    return answer.strip().lower() not in _NO


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed or detached stdin
        return False
