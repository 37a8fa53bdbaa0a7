"""The README's demo: a real ParallelMap run on the default local backend.

Run it with ``python -m acme_core.demo`` (or ``nox -s demo``).
"""

from __future__ import annotations

import h5py
import numpy as np

from acme_core import ParallelMap


def f(x, y, z=3):
    """The seed example: ``(x + y) * z``."""
    return (x + y) * z


def noisy_mean(seed, n_samples=100_000):
    """A tiny 'analysis': the mean of ``n_samples`` normal numbers drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=n_samples).mean()


def main() -> None:
    """Run the demo and print where its results are."""
    with ParallelMap(f, [2, 4, 6, 8], 4) as pmap:
        paths = pmap.compute()
    with h5py.File(pmap.results_container, "r") as h5:
        values = [int(h5[f"comp_{i}"]["result_0"][0]) for i in range(len(paths))]
    print(f"backend {pmap.backend!r}: 4 calls of f, results {values}")
    print(f"results container: {pmap.results_container}")
    print(f"one file per call:  {paths[0]} ...")

    means = ParallelMap(noisy_mean, list(range(8)), write_worker_results=False,
                        result_shape=(None,), verbose=False).compute()
    print(f"in memory, stacked: {np.round(means, 4)}")


if __name__ == "__main__":
    main()
