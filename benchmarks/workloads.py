"""Functions the benchmarks map (an importable module, as ACME's docs recommend) and the
bare peers' per-call code: the same bytes written with plain h5py."""

from __future__ import annotations

import os

import numpy as np

SHAPE = (1000, 100)  # 800 KB of float64 per call


def big(x):
    """One call's result: an 800 KB array."""
    return np.ones(SHAPE) * x


def tiny(x):
    return x


def rss(_=None):
    """This process's resident set size in bytes."""
    import psutil

    return psutil.Process().memory_info().rss


def write_one(i, folder):
    """A peer's call: compute, then write ``f_<i>.h5`` with ``result_0`` (no temp name)."""
    import h5py

    with h5py.File(os.path.join(folder, f"big_{i}.h5"), "w") as h5:
        h5.create_dataset("result_0", data=big(i))
    return None


def write_one_durable(i, folder):
    """:func:`write_one` with the guarantee ours gives: a temporary name, fsync, rename,
    fsync of the folder (the file is complete or absent after a crash or a power loss)."""
    import h5py

    final = os.path.join(folder, f"big_{i}.h5")
    tmp = os.path.join(folder, f".big_{i}.h5.{os.getpid()}.tmp")
    with h5py.File(tmp, "w") as h5:
        h5.create_dataset("result_0", data=big(i))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
