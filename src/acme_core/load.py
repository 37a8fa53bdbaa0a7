"""``acme_core.load``: read a run's results back, in call order, from any on-disk layout."""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np

from .output_dir import MARKER
from .storage.values import read_dataset, read_group

log = logging.getLogger("acme_core")

PathLike = str | os.PathLike


def load(path: PathLike | Sequence[PathLike]) -> Any:
    """Return a run's results in call order, as ``write_worker_results=False`` would have.

    Parameters
    ----------
    path : str, path or list of them
        One of

        - a run's output directory (any storage: ``hdf5``, ``hdf5-single``,
          ``hdf5-shards``, ``pickle``, also after emergency pickling, and also when the run
          was interrupted or its parent process killed);
        - a results container (``pmap.results_container``);
        - the list ``compute()`` returned (per-call ``.h5``/``.pickle`` files, or
          ``[container]``).

    Returns
    -------
    list or numpy.ndarray
        One entry per call, in call order: the arrays of an HDF5 result (``result_0``
        alone, or a tuple ``(result_0, result_1, ...)``; strings as ``str``), or the
        unpickled object of a pickle. With ``result_shape`` the stacked array, or ACME's
        flat list ``[array, r1_call0, r2_call0, r1_call1, ...]`` when calls returned more
        than one value. A call without a result (failed, not run yet) is None.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When ``path`` holds no results acme-core can read.

    Notes
    -----
    HDF5 stores what ACME stores: ``return 18`` reads back as ``array([18])`` and a tuple of
    numbers as one array (inventory §6.3). Emergency pickles hold ACME's list-wrapped value
    (``[value]``); ``load`` unwraps it.

    Examples
    --------
    >>> from acme_core import ParallelMap, load
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> out = str(tmp_path / "loaded")
    >>> ParallelMap(f, [2, 4, 6, 8], 4, output_dir=out, verbose=False).compute()[0][-6:]
    'f_0.h5'
    >>> [int(v[0]) for v in load(out)]
    [18, 24, 30, 36]
    """
    if isinstance(path, (str, os.PathLike)):
        path = os.fspath(path)
        if os.path.isdir(path):
            return _load_dir(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} does not exist.")
        if path.endswith(".pickle"):
            return [_read_pickle(path)]
        return _load_h5(path)
    paths = [os.fspath(p) for p in path]
    if len(paths) == 1 and paths[0].endswith(".h5") and _is_container(paths[0]):
        return _load_container(paths[0])
    return [_load_call_file(p) for p in paths]


# ---------------------------------------------------------------------------- run directory
def _marker(folder: str) -> dict[str, Any]:
    """The run's description: our marker file, else the manifest's first line."""
    for name in (MARKER, "acme_manifest.jsonl"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path) as fh:
                text = fh.read() if name == MARKER else fh.readline()
            try:
                return json.loads(text)
            except ValueError:
                continue
    return {}


def _load_dir(folder: str) -> Any:
    info = _marker(folder)
    func, n, storage = info.get("func"), info.get("n_inputs"), info.get("storage")
    if func is None or n is None:
        containers = [e for e in os.listdir(folder) if e.endswith(".h5")]
        if len(containers) == 1:
            return _load_container(os.path.join(folder, containers[0]))
        raise ValueError(f"{folder} holds no acme-core run (no {MARKER}).")
    if storage == "memory":
        raise ValueError(f"{folder} is an in-memory run: it holds no results.")
    if storage == "hdf5-shards":
        return _from_shards(folder, func, n)
    container = os.path.join(folder, f"{func}.h5")
    if storage == "pickle":
        return _from_files(folder, func, n, wrapped=False)
    if os.path.isfile(container):
        return _load_container(container, n)
    return _from_files(folder, func, n, wrapped=True)


def _from_files(folder: str, func: str, n: int, wrapped: bool) -> list[Any]:
    """Per-call files, where ACME puts them: the payload folder, or (pickles, emergency
    pickling) the run directory itself."""
    payload = os.path.join(folder, f"{func}_payload")
    results: list[Any] = []
    for i in range(n):
        value = None
        for where in (folder, payload):
            base = os.path.join(where, f"{func}_{i}")
            if os.path.isfile(base + ".pickle"):
                value = _read_pickle(base + ".pickle", wrapped)
                break
            if os.path.isfile(base + ".h5"):
                value = _read_call_h5(base + ".h5")
                break
        results.append(value)
    return _warn_missing(results, folder)


def _from_shards(folder: str, func: str, n: int) -> Any:
    """Read the shards themselves (they are the truth; the container is only built at the
    end of a run, so it is missing or stale after a crash). A call found in two shards
    (re-run after its worker died) reads from the most recently written one."""
    import h5py

    from .storage.hdf5_shards import shard_files

    values: list[Any] = [None] * n
    born = [-1.0] * n
    axis = -1
    for path in shard_files(os.path.join(folder, f"{func}_payload"), func):
        mtime = os.path.getmtime(path)
        try:
            with h5py.File(path, "r", locking=False) as h5:
                axis = int(h5.attrs.get("acme_core_stacking_axis", axis))
                for key in h5:
                    index = int(key[5:]) if key.startswith("comp_") else n
                    if index < n and born[index] <= mtime:
                        group = h5[key]
                        if len(group):
                            values[index], born[index] = read_group(group), mtime
        except OSError as exc:
            log.warning(f"Shard {path} cannot be read and is skipped: {exc}")
    if axis < 0:
        return _warn_missing(values, folder)
    return _stack(values, axis)


def _stack(values: list[Any], axis: int) -> Any:
    """First values stacked along ``axis`` (zero-padded, zeros for missing calls), plus
    ACME's flat list of further return values."""
    firsts = [v[0] if isinstance(v, tuple) else v for v in values]
    present = [np.asarray(v) for v in firsts if v is not None]
    if not present:
        return _warn_missing(values, "the shards")
    shape = tuple(np.max([v.shape for v in present], axis=0)) if present[0].ndim else ()
    stacked = np.zeros((len(values), *shape), dtype=present[0].dtype)
    for i, v in enumerate(firsts):
        if v is not None:
            stacked[(i, *(slice(0, s) for s in np.shape(v)))] = v
    stacked = np.moveaxis(stacked, 0, axis)
    extras = [x for v in values if isinstance(v, tuple) for x in v[1:]]
    return [stacked, *extras] if extras else stacked


# ---------------------------------------------------------------------------- files
def _is_container(path: str) -> bool:
    """True for a results container (not one call's file): it sits beside our marker
    under the function's name, or holds ``comp_<i>`` groups or a virtual ``result_0``."""
    import h5py

    folder, name = os.path.split(os.path.abspath(path))
    func = _marker(folder).get("func")
    if func is not None:
        return name == f"{func}.h5"
    with h5py.File(path, "r") as h5:
        return any(k.startswith("comp_") for k in h5) or (
            "result_0" in h5 and h5["result_0"].is_virtual)


def _load_h5(path: str) -> Any:
    if _is_container(path):
        return _load_container(path)
    return [_read_call_h5(path)]


def _load_container(path: str, n: int | None = None) -> Any:
    import h5py

    with h5py.File(path, "r") as h5:
        comps = [int(k[5:]) for k in h5 if k.startswith("comp_")]
        if n is None:
            n = max(comps, default=-1) + 1
        if "result_0" in h5:  # result_shape: one stacked dataset, extras per call
            stacked = h5["result_0"][()]
            extras = []
            for i in sorted(comps):
                group = _group(h5, i)
                if group is not None:
                    extras += [read_dataset(group[k]) for k in sorted(group, key=lambda k: int(k[7:]))]
            return [stacked, *extras] if extras else stacked
        values = []
        for i in range(n):
            group = _group(h5, i)
            values.append(read_group(group) if group is not None and len(group) else None)
    return _warn_missing(values, path)


def _group(h5: Any, index: int) -> Any:
    """``comp_<index>``, or None when it is absent or its link dangles (a failed call)."""
    try:
        return h5[f"comp_{index}"]
    except KeyError:
        return None


def _read_call_h5(path: str) -> Any:
    import h5py

    with h5py.File(path, "r") as h5:
        return read_group(h5)


def _load_call_file(path: str) -> Any:
    if path.endswith(".pickle"):
        folder = os.path.dirname(os.path.abspath(path))
        return _read_pickle(path, wrapped=_marker(folder).get("storage") not in (None, "pickle"))
    if not os.path.exists(path):
        log.warning(f"{path} does not exist: that call has no result.")
        return None
    return _read_call_h5(path)


def _read_pickle(path: str, wrapped: bool = False) -> Any:
    with open(path, "rb") as fh:
        value = pickle.load(fh)
    if wrapped and isinstance(value, list) and len(value) == 1:
        return value[0]  # ACME's emergency pickles hold the list-wrapped value
    return value


def _warn_missing(values: list[Any], where: str) -> list[Any]:
    missing = sum(v is None for v in values)
    if missing:
        log.warning(f"{missing} of {len(values)} calls have no result in {where}; "
                    f"they are None.")
    return values
