"""Replaying one call of a run in this process, with its arguments and its random stream.

A run with an output directory keeps what replaying any of its calls needs in
``<output_dir>/.acme_replay/`` (a folder of the previous layout: ``acme_replay/``, see
:mod:`acme_core.previous_names`):

- ``run.json``: the run's entropy (or that it ran with ``seed=False``), its number of
  calls, the ``sys.path`` entries its workers were given and which of the two forms below
  holds the split arguments (written last, so a replay reads this compute()'s form);
- ``program.pkl``: the pickled call program (function, broadcast arguments, and the split
  arguments when they are small enough to travel inside it). Backends that pickle the
  program anyway write the very bytes they send, so this costs one write;
- ``calls.bin`` and ``calls.idx.npy``: only when split arguments are large
  (``acme_core.payloads.INLINE_SPLIT_BYTES``), each call's pickled split values once, back
  to back, and their offsets, so a replay reads only its own call's bytes;
- ``calls.columns.pkl`` instead, when those large split arguments are all sequences of plain
  scalars (ints, floats, strings, 1-D numeric arrays): the split arguments themselves, one
  pickle streamed to the file (10^6 calls: 0.03 s, where a pickle per call took 1 s), as
  builtin lists (not the user's sequence class); a replay unpickles them and takes its
  call's elements.

What this costs on disk is bounded by one pickled copy of the run's arguments, written once
per ``compute()`` (replaced, never accumulated). A program that cannot be pickled (an
in-process backend given, say, a lock) is not kept; ``pmap.replay(i)`` still works in the
process that made the run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pickle
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import numpy as np

from . import previous_names
from .calls import CallProgram
from .seeding import new_entropy, replaying

DIRNAME = ".acme_replay"
RUN, PROGRAM, CALLS, OFFSETS = "run.json", "program.pkl", "calls.bin", "calls.idx.npy"
COLUMNS = "calls.columns.pkl"


def _path(output_dir: str, name: str) -> str:
    return os.path.join(previous_names.find(output_dir, DIRNAME), name)


@contextlib.contextmanager
def _atomic_file(path: str) -> Iterator[BinaryIO]:
    """A file to write ``path`` through: under a temporary name, renamed when the block
    ends without error, removed when it raises (``path`` is complete or as it was)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _write_atomic(path: str, data: bytes) -> None:
    with _atomic_file(path) as fh:
        fh.write(data)


# ---------------------------------------------------------------------------- entropy
def recorded_entropy(output_dir: str | None) -> int | bool | None:
    """The entropy the run in ``output_dir`` recorded: an int, False (``seed=False``), or
    None when no run (or a run without a record) is there."""
    if output_dir is None or not os.path.isfile(_path(output_dir, RUN)):
        return None
    with open(_path(output_dir, RUN), encoding="utf-8") as fh:
        record = json.load(fh)
    return False if record.get("entropy") is None else int(record["entropy"])


def run_entropy(seed: int | bool | None, output_dir: str | None) -> int | bool:
    """The entropy of a run given ``seed=``, continuing an earlier run in ``output_dir``.

    ``seed=None`` takes a resumed run's recorded entropy (so resumed calls draw what they
    would have drawn) or a fresh one; an explicit seed that contradicts the record is an
    error, raised before anything starts.

    Examples
    --------
    >>> from acme_core.replays import run_entropy
    >>> run_entropy(42, None), run_entropy(False, None)
    (42, False)
    """
    recorded = recorded_entropy(output_dir)
    if seed is None:
        return new_entropy() if recorded is None else recorded
    if recorded is not None and recorded != seed:
        was = "seed=False" if recorded is False else f"seed={recorded}"
        raise ValueError(
            f"`seed={seed!r}`, but the run in output_dir={output_dir!r} ran with {was}; a "
            f"resumed run keeps its random streams. Pass seed=None (the recorded one) or "
            f"{was}, or a new output_dir.")
    return seed


# ---------------------------------------------------------------------------- saving
def save(output_dir: str, program: CallProgram, program_bytes: bytes | None,
         call_blobs: Sequence[bytes] | None, entropy: int | bool, n_inputs: int,
         sys_path: Sequence[str], columns: Sequence[Any] | None = None) -> None:
    """Keep what replaying any call of this run needs in ``output_dir`` (see above): the
    split values a program lacks as ``call_blobs`` (one pickle per call) or as ``columns``
    (the split arguments, each a sequence of plain scalars)."""
    os.makedirs(os.path.join(output_dir, DIRNAME), exist_ok=True)
    record: dict[str, Any] = {"entropy": None if entropy is False else str(entropy),
                              "n_inputs": n_inputs, "sys_path": list(sys_path),
                              "program": True}
    if program_bytes is None:
        from .pickling import cloud_dumps

        try:
            program_bytes = cloud_dumps(program)
        except Exception as exc:
            record["program"] = f"{type(exc).__name__}: {exc}"
    if program_bytes is not None:
        _write_atomic(_path(output_dir, PROGRAM), program_bytes)
    written: tuple[str, ...] = ()
    if columns is not None and program.split is None:
        with _atomic_file(_path(output_dir, COLUMNS)) as fh:  # streamed: no copy held
            pickle.dump(tuple(_plain_column(c) for c in columns), fh, protocol=5)
        written = (COLUMNS,)
    elif call_blobs is not None and program.split is None:
        offsets = _write_blobs(_path(output_dir, CALLS), call_blobs, n_inputs)
        with _atomic_file(_path(output_dir, OFFSETS)) as fh:
            np.save(fh, offsets)
        written = (CALLS, OFFSETS)
    # run.json, written last, names the form this compute() kept: a replay reads that one
    record["split"] = written[0] if written else None
    _write_atomic(_path(output_dir, RUN), json.dumps(record).encode())
    for name in {CALLS, OFFSETS, COLUMNS} - set(written):  # an earlier compute()'s form
        with contextlib.suppress(FileNotFoundError):
            os.remove(_path(output_dir, name))


def _plain_column(values: Any) -> Any:
    """A split argument of plain scalars as a builtin list, range or array: what unpickles
    in any process, whatever class the user's sequence was (a subclass of list defined in
    a function, in ``__main__``)."""
    if isinstance(values, range) or type(values) in (list, tuple, np.ndarray):
        return values
    return np.asarray(values) if isinstance(values, np.ndarray) else list(values)


#: Calls whose blobs are joined and written at once (bounds what saving holds).
_BLOBS_AT_ONCE = 1 << 16


def _write_blobs(path: str, blobs: Iterable[bytes], n_inputs: int) -> np.ndarray:
    """Write ``blobs`` one after the other into ``path`` (complete or absent); returns
    their offsets (``n_inputs + 1``). Streams: a generator of blobs is never held whole."""
    sizes = np.zeros(n_inputs + 1, dtype=np.int64)
    it, done = iter(blobs), 0
    with _atomic_file(path) as fh:
        while chunk := list(itertools.islice(it, _BLOBS_AT_ONCE)):
            fh.write(b"".join(chunk))
            sizes[done + 1:done + 1 + len(chunk)] = list(map(len, chunk))
            done += len(chunk)
    return np.cumsum(sizes)


# ---------------------------------------------------------------------------- replaying
def replay_call(program: CallProgram, split: tuple[Any, ...], index: int) -> Any:
    """Run call ``index`` of ``program`` here, on its random streams; returns its value
    and lets its exception through unchanged (``pdb``, ``%debug``)."""
    args, kwargs = program.arguments(index, split)
    streams = getattr(program.around, "streams", None)
    with replaying(streams, index):
        return program.func(*args, **kwargs)


def _load(output_dir: str) -> tuple[CallProgram, dict[str, Any]]:
    if not os.path.isfile(_path(output_dir, RUN)):
        raise FileNotFoundError(
            f"{output_dir!r} holds no replayable acme-core run (no {DIRNAME}/{RUN}); runs "
            f"with results in memory are replayed with pmap.replay(i).")
    with open(_path(output_dir, RUN), encoding="utf-8") as fh:
        record = json.load(fh)
    if record["program"] is not True:
        raise RuntimeError(
            f"The run in {output_dir!r} could not keep its program for replay "
            f"({record['program']}); use pmap.replay(i) in the process that made the run.")
    for entry in record["sys_path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    with open(_path(output_dir, PROGRAM), "rb") as fh:
        return pickle.load(fh), record


def _split_of(output_dir: str, program: CallProgram, index: int,
              form: str | None = CALLS) -> tuple[Any, ...]:
    """Call ``index``'s split values, from the program or the ``form`` run.json names (a
    run.json written before it named one: ``calls.bin``)."""
    if program.split is not None:
        return program.split_values(index)
    if form == COLUMNS:
        with open(_path(output_dir, COLUMNS), "rb") as fh:
            return tuple(column[index] for column in pickle.load(fh))
    offsets = np.load(_path(output_dir, OFFSETS))
    start, end = int(offsets[index]), int(offsets[index + 1])
    with open(_path(output_dir, CALLS), "rb") as fh:
        fh.seek(start)
        return pickle.loads(fh.read(end - start))


def check_index(index: Any, n_inputs: int) -> int:
    """``index`` must name one of the run's calls."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"The call index has to be an integer, not {index!r} "
                        f"({type(index).__name__}).")
    if not 0 <= index < n_inputs:
        raise IndexError(f"The run has calls 0 to {n_inputs - 1}; there is no call {index}.")
    return int(index)


def replay(output_dir: str | os.PathLike[str], index: int) -> Any:
    """Run call ``index`` of the run in ``output_dir`` in this process, with the same
    arguments, keyword arguments and random streams as in the run.

    Nothing is stored and the run is not changed; the call's exception, if any, propagates
    unchanged, so ``pdb``, ``%debug`` and breakpoints work. The states of :mod:`random` and
    ``numpy.random`` are restored afterwards.

    Parameters
    ----------
    output_dir : str
        The run's output directory.
    index : int
        The call to run.

    Returns
    -------
    Any
        What the function returns for that call.

    Examples
    --------
    >>> import acme_core
    >>> from acme_core import ParallelMap
    >>> pmap = ParallelMap(pow, [1, 2, 3], 2, output_dir=str(tmp_path / "run"),
    ...                    verbose=False)
    >>> _ = pmap.compute()
    >>> acme_core.replay(tmp_path / "run", 2)
    9
    """
    output_dir = os.fspath(output_dir)
    program, record = _load(output_dir)
    index = check_index(index, int(record["n_inputs"]))
    return replay_call(program, _split_of(output_dir, program, index,
                                          record.get("split", CALLS)), index)


def replay_hint(output_dir: str | None, index: int) -> str:
    """The one line that replays call ``index`` in the user's interpreter.

    Examples
    --------
    >>> from acme_core.replays import replay_hint
    >>> replay_hint("/data/ACME_run", 5)
    "acme_core.replay('/data/ACME_run', 5)"
    >>> replay_hint(None, 5)
    'pmap.replay(5)'
    """
    if output_dir is None:
        return f"pmap.replay({index})"
    return f"acme_core.replay({os.fspath(output_dir)!r}, {index})"


#: Failed calls whose replay line a failures table prints, at most.
HINTS_SHOWN = 10


def replay_lines(output_dir: str | None | bool, indices: Sequence[int]) -> str:
    """The lines a failures table ends with: how to replay each failed call here (none
    when ``output_dir`` is False: the table does not know its run).

    Examples
    --------
    >>> from acme_core.replays import replay_lines
    >>> print(replay_lines("/data/run", [3, 7]))
    <BLANKLINE>
    replay a failed call here (pdb works):
      acme_core.replay('/data/run', 3)
      acme_core.replay('/data/run', 7)
    """
    if output_dir is False or not indices:
        return ""
    shown = [f"  {replay_hint(output_dir or None, i)}" for i in indices[:HINTS_SHOWN]]
    more = [f"  ... and {len(indices) - HINTS_SHOWN} more"] if len(indices) > HINTS_SHOWN else []
    return "\n".join(["", "replay a failed call here (pdb works):", *shown, *more])
