"""Per-call random streams: a call's random numbers depend on the run's entropy and the
call's index only, never on which worker ran it, how calls were batched, or whether the
run was resumed.

Call ``i`` of a run with entropy ``E`` owns the stream
``numpy.random.SeedSequence(E, spawn_key=(i,))``; :func:`rng` returns a
:class:`numpy.random.Generator` on it. Before each call the worker also seeds the two
global generators that existing code draws from, Python's :mod:`random` and NumPy's legacy
``numpy.random.*`` functions, with seeds derived from the same ``(E, i)`` pair: distinct
calls of a run get distinct seeds (``(base + i) mod 2**32`` for NumPy's 32-bit legacy seed,
so no two calls of a run share a legacy stream), and deriving them costs a few integer
operations instead of a :class:`~numpy.random.SeedSequence` per call.

Seeding the global generators costs about 6 microseconds per call (``random.seed`` and
``numpy.random.seed`` re-initialise a 624-word Mersenne Twister state each; that is the
floor of their public APIs). ``seed=False`` leaves both generators alone and costs nothing;
so do calls that cannot reach a generator (:mod:`acme_core.drawing` reads the function's
code for that).
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

#: The call this thread is running: ``(entropy, index)``, and its generator once made.
_local = threading.local()

_MASK32 = 0xFFFFFFFF


def new_entropy() -> int:
    """A fresh 128-bit run entropy from the operating system.

    Examples
    --------
    >>> from acme_core.seeding import new_entropy
    >>> 0 <= new_entropy() < 2**128
    True
    """
    return secrets.randbits(128)


def check_seed(value: Any) -> int | bool | None:
    """``seed=``: None (a fresh entropy per run), False (leave the generators alone) or an
    integer >= 0 (the run's entropy).

    Examples
    --------
    >>> from acme_core.seeding import check_seed
    >>> check_seed(42), check_seed(None), check_seed(False)
    (42, None, False)
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    ValueError: `seed` has to be None, False or an integer >= 0 (the run's entropy), not -1.
    """
    if value is None or value is False:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`seed` has to be None, False or an integer >= 0 (the run's entropy), "
                        f"not {value!r} ({type(value).__name__}).")
    if value < 0:
        raise ValueError(f"`seed` has to be None, False or an integer >= 0 (the run's "
                         f"entropy), not {value!r}.")
    return int(value)


def call_seed_sequence(entropy: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of call ``index`` of a run with ``entropy``.

    Examples
    --------
    >>> from acme_core.seeding import call_seed_sequence
    >>> call_seed_sequence(42, 3).spawn_key
    (3,)
    """
    return np.random.SeedSequence(entropy, spawn_key=(index,))


class CallStreams:
    """Seeds the generators before each call of one run (travels inside the call program).

    Examples
    --------
    >>> import random
    >>> import numpy as np
    >>> from acme_core.seeding import CallStreams
    >>> streams = CallStreams(entropy=42)
    >>> streams.enter(7); a = (random.random(), np.random.rand())
    >>> streams.enter(7); b = (random.random(), np.random.rand())
    >>> a == b
    True
    """

    def __init__(self, entropy: int) -> None:
        self.entropy = entropy
        #: Seeds of call 0; call i adds i (distinct calls, distinct seeds). Derived on the
        #: first call, where the calls run: the parent then need not import numpy.random
        #: (7 ms of every run's start), and a pickled copy carries the entropy only.
        self._bases: tuple[int, int] | None = None

    def __reduce__(self) -> Any:
        return CallStreams, (self.entropy,)

    def _derive_bases(self) -> tuple[int, int]:
        state = np.random.SeedSequence(self.entropy).generate_state(4, np.uint32)
        self._bases = (int(state[0]),
                       int(state[1]) << 96 | int(state[2]) << 64 | int(state[3]) << 32)
        return self._bases

    def enter(self, index: int) -> None:
        """Make ``index`` the current call: seed :mod:`random` and ``numpy.random``."""
        legacy_base, random_base = self._bases or self._derive_bases()
        np.random.seed((legacy_base + index) & _MASK32)
        random.seed(random_base + index)
        _local.call = (self.entropy, index)
        _local.rng = None

    def run(self, func: Any, index: int, args: Any, kwargs: Any) -> Any:
        """Run call ``index`` of ``func`` on its own streams."""
        self.enter(index)
        try:
            return func(*args, **kwargs)
        finally:
            _local.call = None  # rng() after the call (e.g. in a dry run's parent) raises

    @property
    def streams(self) -> CallStreams:
        """Itself (a call hook's streams, see :mod:`acme_core.reuse`)."""
        return self


def rng() -> np.random.Generator:
    """The random generator of the call that is running (its own stream).

    Draws depend on the run's entropy (``seed=`` or the one recorded in the run directory)
    and the call's index only, so they are the same on every backend, batch size and
    resume, and in :func:`acme_core.replay`.

    Raises
    ------
    RuntimeError
        Outside a call run by ParallelMap, or in a run with ``seed=False``.

    Examples
    --------
    >>> import acme_core
    >>> from acme_core import ParallelMap
    >>> def noisy(x):
    ...     return x + acme_core.rng().normal()
    >>> a = ParallelMap(noisy, [1, 2], seed=5, write_worker_results=False,
    ...                 verbose=False).compute()
    >>> b = ParallelMap(noisy, [1, 2], seed=5, write_worker_results=False,
    ...                 verbose=False).compute()
    >>> a == b
    True
    """
    call = getattr(_local, "call", None)
    if call is None:
        raise RuntimeError(
            "acme_core.rng() gives the random generator of the call that is running, but no "
            "ParallelMap call is running here (or the run has seed=False). To run one call "
            "with its stream by hand, use pmap.replay(i) or acme_core.replay(output_dir, i); "
            "elsewhere use numpy.random.default_rng(seed).")
    generator = _local.rng
    if generator is None:
        generator = _local.rng = np.random.default_rng(call_seed_sequence(*call))
    return generator


@contextmanager
def replaying(streams: CallStreams | None, index: int) -> Iterator[None]:
    """Run call ``index`` here on its streams, then give the caller's generators back.

    The states of :mod:`random` and ``numpy.random`` are saved first and restored after,
    so replaying a call (or ``compute(debug=True)``) does not change what this process
    draws next.

    Examples
    --------
    >>> import random
    >>> from acme_core.seeding import CallStreams, replaying
    >>> random.seed(1); expected = random.random(); random.seed(1)
    >>> with replaying(CallStreams(42), 3):
    ...     _ = random.random()
    >>> random.random() == expected
    True
    """
    if streams is None:
        yield
        return
    saved = random.getstate(), np.random.get_state(legacy=False)
    before = getattr(_local, "call", None), getattr(_local, "rng", None)
    try:
        streams.enter(index)
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        _local.call, _local.rng = before


def keywords_for_function(func: Any, kwargs: dict[str, Any], **own: Any) -> dict[str, Any]:
    """ParallelMap's newer keywords (``seed``, ``reuse``) that ``func`` also names as a
    parameter go to ``func``, as ACME passed every unknown keyword on: existing code such
    as ``ParallelMap(simulate, xs, seed=3)`` keeps calling ``simulate(x, seed=3)``. Returns
    the keywords ParallelMap keeps (a forwarded one becomes None) and moves the others
    into ``kwargs``.

    Examples
    --------
    >>> from acme_core.seeding import keywords_for_function
    >>> def simulate(x, seed=0):
    ...     return x + seed
    >>> kwargs = {}
    >>> keywords_for_function(simulate, kwargs, seed=3, reuse=None), kwargs
    ({'seed': None, 'reuse': None}, {'seed': 3})
    """
    import inspect

    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return own
    kept = dict(own)
    for name, value in own.items():
        param = params.get(name)
        if value is not None and param is not None and param.kind in (
                param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            kwargs[name] = value
            kept[name] = None
    return kept
