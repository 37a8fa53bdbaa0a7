"""Argument keys: a content hash of each call's own argument values.

A call's key covers its split values and the broadcast values every call receives, each
hashed by :func:`acme_core.codeversion.value_digest` (by content, the same in every
interpreter whatever its ``PYTHONHASHSEED``). The manifest records each call's per-argument
digests, so a re-run can tell which calls' arguments changed and name the arguments.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arguments import CallPlan
from .codeversion import value_digest

#: Hex digits kept of one argument's digest (48 bits: collisions among a run's values are
#: out of reach) and of a call's key.
ARG_DIGITS, KEY_DIGITS = 12, 16
_PLAIN = (type(None), bool, int, float, complex, str, bytes)


def digest_of(value: Any) -> str:
    """One argument value's digest (hex); scalars and strings take a fast path.

    Examples
    --------
    >>> from acme_core.callkeys import digest_of
    >>> digest_of({"b", "a"}) == digest_of({"a", "b"}), digest_of(1) == digest_of(1.0)
    (True, False)
    """
    kind = type(value)
    if kind in _PLAIN:
        text = f"{kind.__name__}:{value!r}".encode("utf-8", "surrogatepass")
        return hashlib.blake2b(text, digest_size=8).hexdigest()[:ARG_DIGITS]
    return value_digest(value).hex()[:ARG_DIGITS]


def combine(digests: dict[str, str]) -> str:
    """A call's key from its per-argument digests (split and broadcast)."""
    text = ";".join(f"{name}={d}" for name, d in sorted(digests.items()))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()[:KEY_DIGITS]


def argument_names(plan: CallPlan) -> list[str]:
    """Each argument's name for keys and messages (``args[1]`` for a second ``*args``)."""
    counts = Counter(a.name for a in plan.arguments)
    seen: Counter[str] = Counter()
    names = []
    for arg in plan.arguments:
        if counts[arg.name] > 1:
            names.append(f"{arg.name}[{seen[arg.name]}]")
            seen[arg.name] += 1
        else:
            names.append(arg.name)
    return names


@dataclass
class ArgumentKeys:
    """The digests of a run's arguments: broadcast ones once, split ones per call.

    Examples
    --------
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.callkeys import ArgumentKeys
    >>> def f(x, delay=0.1):
    ...     return x
    >>> keys = ArgumentKeys.of(build_call_plan(f, ([1, 2, 3],), {"delay": 0.3}, "auto", 1024))
    >>> sorted(keys.of_call(0)), keys.key(0) == keys.key(1)
    (['delay', 'x'], False)
    """

    broadcast: dict[str, str]
    split: dict[str, list[str]]
    n_calls: int
    _keys: list[str] | None = None

    @classmethod
    def of(cls, plan: CallPlan) -> ArgumentKeys:
        """Hash every argument of ``plan`` (computed when a run starts)."""
        broadcast, split = {}, {}
        for name, arg in zip(argument_names(plan), plan.arguments, strict=True):
            if arg.split:
                split[name] = _element_digests(arg.value, plan.n_inputs)
            else:
                broadcast[name] = digest_of(arg.value)
        return cls(broadcast, split, plan.n_inputs)

    def split_of(self, index: int) -> dict[str, str]:
        """Call ``index``'s split-argument digests (what its manifest line records)."""
        return {name: values[index] for name, values in self.split.items()}

    def of_call(self, index: int) -> dict[str, str]:
        """Every argument digest of call ``index``."""
        return {**self.broadcast, **self.split_of(index)}

    def key(self, index: int) -> str:
        """Call ``index``'s argument key (``combine`` of its digests; all computed once)."""
        if self._keys is None:
            self._keys = self._all_keys()
        return self._keys[index]

    def _all_keys(self) -> list[str]:
        n_calls = self.n_calls
        columns = [[f"{name}={d}" for d in self.split[name]] if name in self.split
                   else itertools.repeat(f"{name}={self.broadcast[name]}", n_calls)
                   for name in sorted({*self.broadcast, *self.split})]
        blake = hashlib.blake2b
        return [blake(";".join(parts).encode(), digest_size=16).hexdigest()[:KEY_DIGITS]
                for parts in zip(*columns, strict=True)]


def _element_digests(values: Any, n_calls: int) -> list[str]:
    """Per-call digests of a split argument; a NumPy array's rows are hashed by their bytes
    (with dtype and shape), without a Python object per element."""
    if isinstance(values, np.ndarray) and not values.dtype.hasobject and values.ndim:
        rows = np.ascontiguousarray(values).reshape(len(values), -1)
        head = f"{values.dtype.str}{values.shape[1:]}".encode()
        blake = hashlib.blake2b
        return [blake(head + row.tobytes(), digest_size=8).hexdigest()[:ARG_DIGITS]
                for row in rows]
    return [digest_of(values[i]) for i in range(n_calls)]
