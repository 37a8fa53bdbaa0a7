"""Argument keys: a content hash of each call's own argument values.

A call's key covers its split values and the broadcast values every call receives. Broadcast
values are hashed once by :func:`acme_core.codeversion.value_digest` (by content, the same
in every interpreter whatever its ``PYTHONHASHSEED``). Split values are hashed per call into
a NumPy array of ``ARG_BYTES``-byte digests (``(n_calls, ARG_BYTES)`` ``uint8``, no Python
object per call): flat sequences of ints, floats or bools and 1-D numeric arrays in one
vectorized pass (a bijective 64-bit mix of each value's bits, so two different values of
one kind never share a digest), anything else element by element with BLAKE2b.

The manifest records each call's split digests, so a re-run can tell which calls' arguments
changed and name the arguments. Manifests of format 2 recorded hex digests of the
per-element scheme (:func:`digest_of` and the row hash of arrays) and a key per call;
:meth:`ArgumentKeys.legacy_key` recomputes those for the calls such a manifest records.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arguments import CallPlan
from .call_runs import index_runs
from .codeversion import value_digest

#: Hex digits kept of a broadcast argument's digest (48 bits: collisions among a run's values
#: are out of reach) and of a call's key; bytes of a split argument's digest per call.
ARG_DIGITS, KEY_DIGITS, ARG_BYTES = 12, 16, 8
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
#: Flat Python sequences hashed in one pass: element type -> NumPy dtype.
_FLAT = {int: np.int64, float: np.float64, bool: np.bool_}
#: Fewest calls per run of consecutive calls for which one slice per run beats a lookup
#: per call (a slice costs about as much as eight lookups).
SLICE_RUN_CALLS = 8


def digest_of(value: Any) -> str:
    """One argument value's digest (hex); scalars and strings take a fast path.

    Examples
    --------
    >>> from acme_core.callkeys import digest_of
    >>> digest_of({"b", "a"}) == digest_of({"a", "b"}), digest_of(1) == digest_of(1.0)
    (True, False)
    """
    return _blake_of(value).hex()[:ARG_DIGITS]


def _blake_of(value: Any) -> bytes:
    kind = type(value)
    if kind in _PLAIN:
        text = f"{kind.__name__}:{value!r}".encode("utf-8", "surrogatepass")
        return hashlib.blake2b(text, digest_size=ARG_BYTES).digest()
    return value_digest(value)[:ARG_BYTES]


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

    Split digests are computed where they are needed: for the calls of each done record as
    it is written (a new run holds none), or for every call at once when :attr:`split` is
    asked (a resumed run compares them with the manifest's, and keeps them).

    Examples
    --------
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.callkeys import ArgumentKeys
    >>> def f(x, delay=0.1):
    ...     return x
    >>> keys = ArgumentKeys.of(build_call_plan(f, ([1, 2, 3],), {"delay": 0.3}, "auto", 1024))
    >>> sorted(keys.of_call(0)), keys.key(0) == keys.key(1), keys.split["x"].shape
    (['delay', 'x'], False, (3, 8))
    """

    broadcast: dict[str, str]
    #: The split values (the user's objects, not copies) and how each is hashed.
    values: dict[str, Any]
    schemes: dict[str, str]
    n_calls: int
    _split: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, plan: CallPlan) -> ArgumentKeys:
        """Hash the broadcast arguments of ``plan`` and choose how each split one is hashed
        (when a run starts)."""
        broadcast, values, schemes = {}, {}, {}
        for name, arg in zip(argument_names(plan), plan.arguments, strict=True):
            if arg.split:
                values[name] = arg.value
                schemes[name] = scheme_of(arg.value, plan.n_inputs)
            else:
                broadcast[name] = digest_of(arg.value)
        return cls(broadcast, values, schemes, plan.n_inputs)

    @property
    def split_names(self) -> list[str]:
        """The split arguments' names."""
        return list(self.values)

    @property
    def split(self) -> dict[str, np.ndarray]:
        """Per split argument, every call's digest (``(n_calls, ARG_BYTES)`` uint8)."""
        for name in self.values.keys() - self._split.keys():
            self._split[name] = self.digests(name, np.arange(self.n_calls))
        return self._split

    def digests(self, name: str, calls: np.ndarray) -> np.ndarray:
        """Split argument ``name``'s digests of ``calls`` (``(len(calls), ARG_BYTES)``)."""
        if name in self._split:
            return self._split[name][calls]
        return digests_for(self.values[name], self.schemes[name], calls)

    def split_of(self, index: int) -> dict[str, str]:
        """Call ``index``'s split-argument digests as hex (what a failure line records)."""
        at = np.array([index])
        return {name: self.digests(name, at).tobytes().hex() for name in self.values}

    def of_call(self, index: int) -> dict[str, str]:
        """Every argument digest of call ``index`` (hex)."""
        return {**self.broadcast, **self.split_of(index)}

    def key(self, index: int) -> str:
        """Call ``index``'s argument key (``combine`` of its digests)."""
        return combine(self.of_call(index))

    def legacy_key(self, index: int) -> str:
        """Call ``index``'s key as a format-2 manifest line recorded it (per-element
        digests, 12 hex digits), to compare with such a line."""
        return combine({**self.broadcast, **self.legacy_split_of(index)})

    def legacy_split_of(self, index: int) -> dict[str, str]:
        """Call ``index``'s split digests as a format-2 manifest line recorded them."""
        return {name: _legacy_digest(values, index) for name, values in self.values.items()}


def element_digests(values: Any, n_calls: int) -> np.ndarray:
    """Per-call digests of a split argument, ``(n_calls, ARG_BYTES)`` uint8.

    Examples
    --------
    >>> import numpy as np
    >>> from acme_core.callkeys import element_digests
    >>> a, b = element_digests([1, 2, 3], 3), element_digests([1, 2, 4], 3)
    >>> (a == b).all(axis=1).tolist(), a.shape
    ([True, True, False], (3, 8))
    """
    return digests_for(values, scheme_of(values, n_calls), np.arange(n_calls))


def scheme_of(values: Any, n_calls: int) -> str:
    """How a split argument's elements are hashed, chosen once from all of them (so a call's
    digest does not depend on which calls are hashed with it): ``"flat:<type>"`` (a list,
    tuple or range of one of ``_FLAT``'s types) and ``"array"`` (a 1-D numeric array) in
    one vectorized pass, ``"rows"`` (other arrays) and ``"each"`` with BLAKE2b."""
    if isinstance(values, np.ndarray) and not values.dtype.hasobject and values.ndim:
        flat = values.ndim == 1 and values.dtype.kind in "biuf" and values.dtype.itemsize <= 8
        return "array" if flat else "rows"
    if not isinstance(values, (list, tuple, range)) or not n_calls:
        return "each"
    kinds = set(map(type, values))
    kind = kinds.pop() if len(kinds) == 1 else None
    if kind not in _FLAT:
        return "each"
    if kind is int and not -(2**63) <= min(values) <= max(values) < 2**63:
        return "each"  # ints beyond 64 bits
    return f"flat:{kind.__name__}"


def digests_for(values: Any, scheme: str, calls: np.ndarray) -> np.ndarray:
    """The digests of ``values``' elements ``calls`` by ``scheme`` (:func:`scheme_of`)."""
    calls = np.asarray(calls, dtype=np.int64)
    if scheme == "array":
        picked = np.ascontiguousarray(values[calls])
        bits = picked.view(f"u{picked.dtype.itemsize}").astype(np.uint64)
        return _mix(bits, f"ndarray:{values.dtype.str}".encode())
    if scheme.startswith("flat:"):
        name = scheme[len("flat:"):]
        kind = next(k for k in _FLAT if k.__name__ == name)
        picked = np.fromiter(_elements(values, calls), dtype=_FLAT[kind], count=len(calls))
        return _mix(picked.view(f"u{picked.itemsize}").astype(np.uint64), name.encode())
    if scheme == "rows":
        rows = np.ascontiguousarray(values[calls]).reshape(len(calls), -1)
        head = f"{values.dtype.str}{values.shape[1:]}".encode()
        blake = hashlib.blake2b
        joined = b"".join(blake(head + row.tobytes(), digest_size=ARG_BYTES).digest()
                          for row in rows)
    else:
        joined = b"".join(_blake_of(values[i]) for i in calls.tolist())
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(calls), ARG_BYTES).copy()


def _elements(values: list | tuple | range, calls: np.ndarray) -> Iterable[Any]:
    """``values[i] for i in calls``, by slices of the runs of consecutive calls when there
    are few: a done record's calls are the runs of its batches, and a slice copies in C, ten
    times faster than a lookup per call even through ``map``."""
    runs = index_runs(calls)
    if len(runs) // 2 > len(calls) // SLICE_RUN_CALLS:
        return map(values.__getitem__, calls.tolist())  # map: the lookups run in C
    return itertools.chain.from_iterable(
        values[first:first + count] for first, count in zip(runs[::2], runs[1::2], strict=True))


def _mix(bits: np.ndarray, tag: bytes) -> np.ndarray:
    """SplitMix64's finalizer of ``bits`` offset by the kind's tag: a bijection of 64 bits,
    so the digests of two different values of one kind always differ."""
    offset = np.uint64(int.from_bytes(hashlib.blake2b(tag, digest_size=8).digest(), "little"))
    with np.errstate(over="ignore"):
        z = bits + offset
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z.astype("<u8").view(np.uint8).reshape(len(bits), ARG_BYTES)


def _legacy_digest(values: Any, index: int) -> str:
    """One call's split digest as format-2 manifests recorded it."""
    if isinstance(values, np.ndarray) and not values.dtype.hasobject and values.ndim:
        row = np.ascontiguousarray(values[index]).tobytes()
        head = f"{values.dtype.str}{values.shape[1:]}".encode()
        return hashlib.blake2b(head + row, digest_size=8).hexdigest()[:ARG_DIGITS]
    return digest_of(values[index])
