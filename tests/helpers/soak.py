"""Repetitions that run short in the default suite and in full under ``nox -s soak``.

A scenario repeated to show it never fails (a hundred runs, thirty random kills) keeps one
short run in the default ``nox -s tests``, so every behaviour is exercised there, and its
full count carries the ``soak`` marker (and ``slow``, so ``-m "not slow"`` leaves it out
too): ``nox -s soak`` (and CI after the default suite) runs it. The assertions are the same
for both counts.
"""

from __future__ import annotations

import pytest


def default_and_soak(names: str, default, soak, soak_timeout: float | None = None):
    """Parametrize ``names`` with ``default`` (default suite) and ``soak`` (``-m soak``).

    ``names`` is one argument name or several, comma-separated; then ``default`` and
    ``soak`` are tuples of as many values. ``soak_timeout`` (seconds) replaces the suite's
    per-test timeout for the soak count only.

    >>> mark = default_and_soak("runs", 1, 10)
    >>> [p.values for p in mark.args[1]], [p.id for p in mark.args[1]]
    ([(1,), (10,)], ['runs-1', 'runs-10'])
    >>> [m.name for m in mark.args[1][1].marks]
    ['soak', 'slow']
    >>> [p.id for p in default_and_soak("kills, n_calls", (3, 300), (20, 3000)).args[1]]
    ['kills-3-n_calls-300', 'kills-20-n_calls-3000']
    """
    keys = [name.strip() for name in names.split(",")]

    def param(values, marks=()):
        values = values if len(keys) > 1 else (values,)
        label = "-".join(f"{key}-{value}" for key, value in zip(keys, values, strict=True))
        return pytest.param(*values, id=label, marks=marks)

    soak_marks = [pytest.mark.soak, pytest.mark.slow]
    if soak_timeout is not None:
        soak_marks.append(pytest.mark.timeout(soak_timeout))
    return pytest.mark.parametrize(names, [param(default), param(soak, marks=soak_marks)])
