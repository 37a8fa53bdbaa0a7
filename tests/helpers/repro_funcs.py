"""Functions of the reproducibility tests (importable by worker processes)."""

from __future__ import annotations

import os
import random
import time

import numpy as np

import acme_core


def draws(x: int) -> np.ndarray:
    """Draws from numpy's legacy globals, Python's ``random`` and ``acme_core.rng()``."""
    return np.array([x, np.random.rand(), np.random.randint(2**31), np.random.normal(),
                     random.random(), random.getrandbits(32), *acme_core.rng().random(2),
                     acme_core.rng().integers(2**62)], dtype=np.float64)


def draws_slowly(x: int, marks: str) -> np.ndarray:
    """``draws`` that leaves a file per call started and takes a moment (killed mid-run)."""
    open(os.path.join(marks, f"started_{x}"), "w").close()
    time.sleep(0.05)
    return draws(x)


def draw_then_fail(x: int, marks: str) -> float:
    """Records its draws in ``marks`` and raises on x == 3 (after drawing)."""
    value = np.random.rand() + random.random() + acme_core.rng().random()
    with open(os.path.join(marks, f"draw_{x}_{os.getpid()}"), "w") as fh:
        fh.write(repr(value))
    if x == 3:
        raise ValueError(f"bad trial {x}: drew {value!r}")
    return value


def grid_point(a: int, b: int, marks: str) -> np.ndarray:
    """A deterministic sweep point that leaves one file per computation in ``marks``."""
    open(os.path.join(marks, f"ran_{a}_{b}_{os.getpid()}_{time.monotonic_ns()}"), "w").close()
    return np.array([a * 1000 + b, a - b], dtype=np.int64)


def noisy_point(a: int, marks: str) -> float:
    """A sweep point that draws from its stream (reused only with the same stream)."""
    open(os.path.join(marks, f"ran_{a}_{os.getpid()}_{time.monotonic_ns()}"), "w").close()
    return a + acme_core.rng().random()


def slow_point(a: int, marks: str) -> int:
    """A point that takes a moment, for two runs sharing a store at once (``RUN_TAG``
    names the run in the side-effect file; the environment is not part of a call's key)."""
    tag = os.environ.get("RUN_TAG", "")
    open(os.path.join(marks, f"ran_{a}_{tag}_{os.getpid()}_{time.monotonic_ns()}"), "w").close()
    time.sleep(0.05)
    return a * a


def legacy_point(a: int, marks: str) -> float:
    """A sweep point that draws from numpy's global generator."""
    open(os.path.join(marks, f"ran_{a}_{os.getpid()}_{time.monotonic_ns()}"), "w").close()
    return a + np.random.rand()


def dies_once(a: int, marks: str) -> int:
    """Kills its own worker process the first time it runs (while holding its claim)."""
    import signal

    first = os.path.join(marks, "killed")
    if not os.path.exists(first):
        open(first, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return a + 1


# ---------------------------------------------------------------- what may draw
SCALE = 2.5
TABLE = {0: 1.0, 1: 2.0}


def _noise(x: float) -> float:
    return x + np.random.rand()


def _through(x: float) -> float:
    return _noise(x) * SCALE


def draws_two_helpers_down(x: int) -> float:
    """Draws from numpy's global generator only through two helpers of this module (no
    random name in its own code)."""
    return _through(x) + TABLE.get(x, 0.0)


def scaled_sqrt(x: int) -> float:
    """Reads globals (a module, a constant, a table, a helper) and draws nothing."""
    return float(np.sqrt(x) * SCALE + TABLE.get(x, 0.0) + _scaled(x))


def _scaled(x: float) -> float:
    return x * SCALE
