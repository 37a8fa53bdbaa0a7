"""Functions tests/test_slurm_faults.py maps on SLURM workers (an importable module)."""

from __future__ import annotations

import os
import time

import numpy as np


def started_nap(x, marker_dir, seconds):
    """Leave ``started_<x>_<pid>`` (the worker process running the call), sleep, return 10 x."""
    open(os.path.join(marker_dir, f"started_{x}_{os.getpid()}"), "w").close()
    time.sleep(seconds)
    return 10 * x


def hog_once(x, marker_dir, victim, gigabytes):
    """Call ``victim``, the first time only: write the SLURM job id to ``marker_dir/hog``,
    then allocate and touch ``gigabytes`` GB and hold them (SLURM kills the job first)."""
    marker = os.path.join(marker_dir, "hog")
    if x == victim and not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(os.environ.get("SLURM_JOB_ID", ""))
        block = np.ones(int(gigabytes * 1e9) // 8)
        time.sleep(60)
        return float(block[-1]) * x
    return float(x)
