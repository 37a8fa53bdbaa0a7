"""``dryrun=True``: one sampled call in the parent before anything else starts."""

from __future__ import annotations

import logging
import random
import sys
import time
import tracemalloc

from .arguments import CallPlan
from .calls import CallProgram

log = logging.getLogger("acme_core")


def dry_run(program: CallProgram, plan: CallPlan, interactive: bool) -> bool:
    """Run one random call in this process, report its time and peak memory, and ask
    whether to go on (only when ``interactive`` and stdin is a terminal).

    Returns
    -------
    bool
        False when the user answered no.
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
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        if not tracing:
            tracemalloc.stop()
    log.info(f"Dry-run completed. Elapsed time is {elapsed:.3f} seconds, estimated memory "
             f"consumption was {peak / 1024**2:.2f} MB.")
    if not (interactive and sys.stdin is not None and sys.stdin.isatty()):
        return True
    answer = input(f"Do you want to continue executing {plan.func_name} with the provided "
                   f"arguments? [Y/n] ")
    return answer.strip().lower() not in ("n", "no")
