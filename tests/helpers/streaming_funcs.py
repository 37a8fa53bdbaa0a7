"""Functions for tests/test_as_completed.py (importable by every worker)."""

from __future__ import annotations

import os
import time


def gated(x, flags):
    """Call 0 returns at once; the others wait until the test creates ``flags/release``.
    Every call leaves ``flags/finished_<x>`` just before it returns; call 5 raises."""
    if x != 0:
        deadline = time.monotonic() + 600
        while not os.path.exists(os.path.join(flags, "release")):
            if time.monotonic() > deadline:
                raise TimeoutError("the test never released the calls")
            time.sleep(0.02)
    open(os.path.join(flags, f"finished_{x}"), "w").close()
    if x == 5:
        raise ValueError("call 5 fails on purpose")
    return x * 10
