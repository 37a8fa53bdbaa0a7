"""Functions that hurt their worker in every way a call can (the fault tests map them)."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time


def _mark(marker_dir, x):
    open(os.path.join(marker_dir, f"{x}_{os.getpid()}_{time.perf_counter_ns()}"), "w").close()


def poison(x, marker_dir, how, bad=7, seconds=0.05):
    """Call ``bad`` kills its worker every time (``how``: sigkill, segfault, exit); every
    call leaves a marker file per execution."""
    _mark(marker_dir, x)
    if x == bad:
        if how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "segfault":
            ctypes.string_at(0)  # a NULL read
        elif how == "exit":
            os._exit(3)
    time.sleep(seconds)
    return x * 10


def lock_for(x, bad=150):
    """Returns a lock (cannot be pickled) for call ``bad``."""
    return threading.Lock() if x == bad else x + 1


def generator_for(x, bad=3):
    return (i for i in range(x)) if x == bad else x


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("__str__ is broken too")


class Unpicklable(Exception):
    def __init__(self, x):
        super().__init__(f"bad {x}")
        self.lock = threading.Lock()


def raise_bad(x, bad=2):
    if x == bad:
        raise BadStr()
    if x == bad + 1:
        raise Unpicklable(x)
    return x


def hang_on(x, marker_dir, bad=3, seconds=0.05):
    """Call ``bad`` never returns; the others sleep ``seconds``."""
    _mark(marker_dir, x)
    if x == bad:
        while True:
            time.sleep(1)
    time.sleep(seconds)
    return x


def pid_then_sleep(x, marker_dir, seconds):
    """Writes ``<x>_<pid>`` then sleeps: tests find the worker running call x."""
    _mark(marker_dir, x)
    time.sleep(seconds)
    return x


def big_result(x):
    """160 kB of float64."""
    import numpy as np

    return np.full(20_000, float(x))
