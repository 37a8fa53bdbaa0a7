"""The result store of ``reuse=DIR``: every call computed once, taken by later runs.

A stored result is keyed by

- the code version of the function (:func:`acme_core.codeversion.code_version`: its code
  and what it reads and calls in the user's own modules; comments and whitespace do not
  count);
- the call's own argument values (split and broadcast, by content, with their names; the
  call index only when the function takes ``taskID``);
- its random stream, when the call drew random numbers: a call that touched neither
  ``acme_core.rng()``, ``random`` nor ``numpy.random`` is stored for every stream, so a
  deterministic call is reused whatever the run's seed and the call's index (an extended
  grid moves indices); a call that drew is reused only by a call with the same entropy and
  index. A call that drew from unseeded generators (``seed=False``) is not stored: its
  result cannot be reproduced.

Not tracked: files the function reads, library versions beyond a module's
``__version__``, the environment; a function that draws from its own unseeded generator
(``numpy.random.default_rng()``) counts as deterministic.

Layout::

    DIR/acme_store.json                         marks the directory as a store
    DIR/<k[:2]>/<k>/value.pkl, value.json       a deterministic call's result, provenance
    DIR/<k[:2]>/<k>/s-<stream>.pkl, .json       a result for one random stream
    DIR/<k[:2]>/<k>/claim                       held while some process computes it

The lookup, the claim and the store all happen on the worker, around the call, so two runs
sharing a store never compute the same call twice: a call first takes a stored result;
else it claims its key (``O_CREAT | O_EXCL``, with host, pid and process start time); a
call whose key another live process holds waits for that result. A claim is stale when
its process is gone (same host) or its heartbeat is old (another host; see
:mod:`acme_core.claims`); a stale claim is broken and the call computed. Results are written to a temporary file and renamed, so a crash never leaves a
half-written entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import random
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import claims
from .seeding import CallStreams, _local

MARKER = "acme_store.json"
CLAIM = "claim"


def check_reuse(value: Any) -> str | None:
    """``reuse=``: None (no store) or the store's directory (made on first use).

    Examples
    --------
    >>> import os
    >>> from acme_core.reuse import check_reuse
    >>> check_reuse("store") == os.path.join(os.getcwd(), "store")
    True
    >>> check_reuse(3)
    Traceback (most recent call last):
    ...
    TypeError: `reuse` has to be None or the path of a result-store directory, not 3 (int).
    """
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise TypeError(f"`reuse` has to be None or the path of a result-store directory, "
                        f"not {value!r} ({type(value).__name__}).")
    path = os.path.abspath(os.fspath(value))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"`reuse={os.fspath(value)!r}` is a file; it has to be a directory "
                         f"(the result store, made on first use).")
    if os.path.isdir(path) and os.listdir(path) and not os.path.isfile(
            os.path.join(path, MARKER)):
        raise ValueError(f"`reuse={os.fspath(value)!r}` is a non-empty directory that is not "
                         f"an acme-core result store; pass a new or an existing store.")
    return path


# ---------------------------------------------------------------------------- keys
def call_keys(func: Any, plan: Any) -> list[bytes]:
    """Per call, the digest of (code version, the call's own arguments by name).

    Examples
    --------
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.reuse import call_keys
    >>> plan = build_call_plan(pow, ([2, 3, 2], 2), {}, "auto", 1024)
    >>> keys = call_keys(pow, plan)
    >>> keys[0] == keys[2] != keys[1]
    True
    """
    from .codeversion import code_version, value_digest

    base = hashlib.sha256(b"acme-store-1\0" + code_version(func).encode())
    for arg in plan.arguments:
        base.update(f"{arg.kind}:{arg.name}:{arg.split}\0".encode())
        if not arg.split:
            base.update(value_digest(arg.value))
    split = plan.split_arguments
    keys = []
    for index in range(plan.n_inputs):
        h = base.copy()
        for arg in split:
            h.update(value_digest(arg.value[index]))
        if plan.pass_task_id:
            h.update(f"taskID={index}".encode())
        keys.append(h.digest()[:16])
    return keys


def stream_name(entropy: int, index: int) -> str:
    """The file-name part of call ``index``'s random stream in a run with ``entropy``."""
    return hashlib.sha256(f"{entropy}:{index}".encode()).hexdigest()[:32]


# ---------------------------------------------------------------------------- store
class Store:
    """One store directory (see the module docstring).

    Examples
    --------
    >>> from acme_core.reuse import Store
    >>> store = Store(str(tmp_path / "store"))
    >>> key = bytes(16)
    >>> store.find(key, None) is None
    True
    >>> store.put(key, None, {"x": 1}, {"index": 0})
    >>> store.find(key, None)
    (True, {'x': 1})
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def entry(self, key: bytes) -> str:
        """The directory of ``key``'s results and claim."""
        k = key.hex()
        return os.path.join(self.root, k[:2], k)

    def make(self) -> None:
        """Create the store's directory and marker (once)."""
        os.makedirs(self.root, exist_ok=True)
        marker = os.path.join(self.root, MARKER)
        if not os.path.exists(marker):
            _write(marker, json.dumps({"acme_core_store": 1}).encode())

    def has(self, key: bytes, stream: str | None) -> bool:
        """True when a result for ``key`` (for any stream, or for ``stream``) is stored."""
        entry = self.entry(key)
        return os.path.exists(os.path.join(entry, "value.pkl")) or (
            stream is not None and os.path.exists(os.path.join(entry, f"s-{stream}.pkl")))

    def find(self, key: bytes, stream: str | None) -> tuple[bool, Any] | None:
        """``(True, value)`` when stored (for every stream, or for ``stream``), else None."""
        entry = self.entry(key)
        names = ["value"] + ([f"s-{stream}"] if stream is not None else [])
        for name in names:
            try:
                with open(os.path.join(entry, f"{name}.pkl"), "rb") as fh:
                    return True, pickle.load(fh)
            except FileNotFoundError:
                continue
            except Exception:  # unreadable entry: computed again, and replaced
                continue
        return None

    def put(self, key: bytes, stream: str | None, value: Any, provenance: dict[str, Any]) -> None:
        """Store ``value`` (for every stream when ``stream`` is None)."""
        from .pickling import dumps

        self.make()
        entry = self.entry(key)
        os.makedirs(entry, exist_ok=True)
        name = "value" if stream is None else f"s-{stream}"
        _write(os.path.join(entry, f"{name}.json"), json.dumps(provenance).encode())
        _write(os.path.join(entry, f"{name}.pkl"), dumps(value))

    def provenance(self, key: bytes, stream: str | None) -> dict[str, Any]:
        """What the store says about the result of ``key`` (who computed it, where)."""
        for name in ["value"] + ([f"s-{stream}"] if stream is not None else []):
            try:
                with open(os.path.join(self.entry(key), f"{name}.json"), encoding="utf-8") as fh:
                    return json.load(fh)
            except (OSError, ValueError):
                continue
        return {}

    def claim(self, key: bytes) -> bool:
        """Claim ``key`` for this process: True when this process may compute it."""
        os.makedirs(self.entry(key), exist_ok=True)
        return claims.take(os.path.join(self.entry(key), CLAIM))

    def release(self, key: bytes) -> None:
        """Give up this process's claim of ``key``."""
        claims.release(os.path.join(self.entry(key), CLAIM))

    def break_if_stale(self, key: bytes) -> bool:
        """Remove ``key``'s claim when its owner is gone; True when the claim is gone."""
        return claims.break_if_stale(os.path.join(self.entry(key), CLAIM))


def _write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- the call
class _Draws:
    """Whether a call drew from ``random``, ``numpy.random`` or ``acme_core.rng()``."""

    def __init__(self) -> None:
        self.python = random.getstate()
        self.numpy = np.random.get_state(legacy=False)
        _local.rng = None

    def happened(self) -> bool:
        if getattr(_local, "rng", None) is not None or random.getstate() != self.python:
            return True
        now, then = np.random.get_state(legacy=False), self.numpy
        return (now["has_gauss"] != then["has_gauss"] or now["state"]["pos"] != then["state"]["pos"]
                or not np.array_equal(now["state"]["key"], then["state"]["key"]))


class ReuseRunner:
    """Runs each call through the store (travels inside the call program)."""

    def __init__(self, root: str, keys: Sequence[bytes], streams: CallStreams | None,
                 entropy: int | bool, output_dir: str | None, func_name: str) -> None:
        self.root, self.keys, self.streams = root, list(keys), streams
        self.entropy, self.output_dir, self.func_name = entropy, output_dir, func_name

    def _stream(self, index: int) -> str | None:
        return None if self.entropy is False else stream_name(self.entropy, index)

    def run(self, func: Any, index: int, args: Any, kwargs: Any) -> Any:
        """Take call ``index``'s stored result, or compute it and store it."""
        store, key, stream = Store(self.root), self.keys[index], self._stream(index)
        wait = 0.02
        while True:
            found = store.find(key, stream)
            if found is not None:
                self._record(index, store.provenance(key, stream))
                return found[1]
            if store.claim(key):
                break
            if not store.break_if_stale(key):
                time.sleep(wait)
                wait = min(1.0, wait * 1.5)
        try:
            return self._compute(store, func, index, args, kwargs)
        finally:
            store.release(key)

    def _compute(self, store: Store, func: Any, index: int, args: Any, kwargs: Any) -> Any:
        if self.streams is not None:
            self.streams.enter(index)
        draws = _Draws()
        try:
            value = func(*args, **kwargs)
            drew = draws.happened()
        finally:
            _local.call = None
        if drew and self.streams is None:
            return value  # drew from generators we did not seed: cannot be reproduced
        provenance = {"func": self.func_name, "index": index, "computed_in": self.output_dir,
                      "host": socket.gethostname(), "pid": os.getpid(), "time": time.time(),
                      "stream": self._stream(index) if drew else None}
        with contextlib.suppress(Exception):  # the call succeeded; only its reuse is lost
            store.put(self.keys[index], self._stream(index) if drew else None, value,
                      provenance)
        return value

    def _record(self, index: int, provenance: dict[str, Any]) -> None:
        """Append to the run's ``acme_reused.jsonl`` that call ``index`` came from the store."""
        if self.output_dir is None:
            return
        line = json.dumps({"i": index, "store": self.root, "from": provenance}) + "\n"
        try:
            fd = os.open(os.path.join(self.output_dir, REUSED), os.O_WRONLY | os.O_APPEND
                         | os.O_CREAT, 0o644)
            with os.fdopen(fd, "w") as fh:
                fh.write(line)
        except OSError:
            pass


#: In a run directory: one line per call taken from the store, with its provenance.
REUSED = "acme_reused.jsonl"


def reused_calls(output_dir: str) -> dict[int, dict[str, Any]]:
    """The calls of the run in ``output_dir`` taken from a store, with their provenance.

    Examples
    --------
    >>> from acme_core.reuse import reused_calls
    >>> reused_calls(str(tmp_path))
    {}
    """
    path = os.path.join(output_dir, REUSED)
    if not os.path.isfile(path):
        return {}
    found = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            found[int(event["i"])] = event
    return found


def runner(root: str, func: Any, plan: Any, streams: CallStreams | None, entropy: int | bool,
           output_dir: str | None) -> tuple[ReuseRunner, int]:
    """The call hook of a run with ``reuse=root``, and how many of its calls the store
    already holds (for the run's log)."""
    store = Store(root)
    keys = call_keys(func, plan)
    hook = ReuseRunner(root, keys, streams, entropy, output_dir, plan.func_name)
    found = sum(store.has(k, hook._stream(i)) for i, k in enumerate(keys))
    return hook, found
