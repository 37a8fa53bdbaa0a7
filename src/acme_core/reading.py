"""Read a run's results back (``acme_core.load``), in call order, from any on-disk layout.

A run directory is read by the storage that wrote it: its name is in the run's marker,
the plugin registry gives its class, and the class's ``Storage.load`` reads (a storage
plugin is readable with no change here). Containers and per-call files given directly
are read here.

A call without a result (failed, not run yet, its file lost) never reads as data: it is
``None`` in a list, NaN in a stacked floating-point array, and ``load`` warns with the
indices of such calls (:class:`MissingResultsWarning`) and returns them on request
(``return_missing=True``).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import previous_names
from .errors import MissingResultsWarning
from .manifest import NAME as MANIFEST
from .output_dir import MARKER
from .records import StorageSettings, StoredResults
from .storage.readback import read_call_h5, read_container, read_pickle

PathLike = str | os.PathLike


def load(path: PathLike | Sequence[PathLike], return_missing: bool = False) -> Any:
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
    return_missing : bool
        Also return the sorted indices of the calls that have no result (as
        ``np.unique(..., return_index=True)`` returns a second value).

    Returns
    -------
    values : list or numpy.ndarray
        One entry per call, in call order: the arrays of an HDF5 result (``result_0``
        alone, or a tuple ``(result_0, result_1, ...)``; strings as ``str``), or the
        unpickled object of a pickle (a function that returned None gives None). With
        ``result_shape`` the stacked array, or ACME's flat list
        ``[array, r1_call0, r2_call0, r1_call1, ...]`` when calls returned more than one
        value. A call without a result is None in a list; in a stacked array its slice is
        NaN (floating-point dtypes) or 0 (other dtypes, which have no NaN: use
        ``missing``).
    missing : list of int
        Only with ``return_missing=True``: the calls without a result.

    Warns
    -----
    MissingResultsWarning
        When some calls have no result; the message and ``.missing`` name them.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When ``path`` holds no results acme-core can read.

    Notes
    -----
    HDF5 stores what ACME stores: ``return 18`` reads back as ``array([18])``, a tuple of
    numbers as one array and ``"ab"`` as ``array(['ab'], dtype=object)`` (h5py alone gives
    ``b'ab'``). Emergency pickles hold ACME's list-wrapped value (``[value]``); ``load``
    unwraps it.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> from acme_core import load
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> out = str(tmp_path / "loaded")
    >>> ParallelMap(f, [2, 4, 6, 8], 4, output_dir=out, verbose=False).compute()[0][-6:]
    'f_0.h5'
    >>> [int(v[0]) for v in load(out)]
    [18, 24, 30, 36]
    >>> os.remove(os.path.join(out, "f_payload", "f_2.h5"))
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     values, missing = load(out, return_missing=True)
    >>> values[2], missing
    (None, [2])
    >>> print(caught[0].message)
    1 of 4 calls have no result in ...loaded: call 2. Their entries are None.
    """
    read = _load(path)
    if read.missing:
        missing = read.missing
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        warnings.warn(MissingResultsWarning(
            f"{len(missing)} of {read.n} calls have no result in {read.where}: "
            f"call{'s' if len(missing) > 1 else ''} {shown}. {_note(read)}", missing),
            stacklevel=2)
    return (read.values, read.missing) if return_missing else read.values


class _Read(NamedTuple):
    values: Any
    missing: list[int]
    n: int
    where: str
    per_call: bool = True


def _note(read: _Read) -> str:
    if read.per_call:
        return "Their entries are None."
    arr = read.values[0] if isinstance(read.values, list) else read.values
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "fc":
        return "Their slices of the stacked array are NaN."
    return "Their slices of the stacked array are 0 (this dtype has no NaN)."


def _read(stored: StoredResults, n: int, where: str) -> _Read:
    return _Read(stored.values, stored.missing, n, where, stored.per_call)


def _load(path: PathLike | Sequence[PathLike]) -> _Read:
    if isinstance(path, (str, os.PathLike)):
        path = os.fspath(path)
        if os.path.isdir(path):
            return _load_dir(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} does not exist.")
        if path.endswith(".pickle"):
            return _Read([read_pickle(path)], [], 1, path)
        return _load_h5(path)
    paths = [os.fspath(p) for p in path]
    if len(paths) == 1 and paths[0].endswith(".h5") and _is_container(paths[0]):
        return _load_h5(paths[0])
    values: list[Any] = []
    missing: list[int] = []
    for i, p in enumerate(paths):
        value, found = _load_call_file(p) if os.path.exists(p) else (None, False)
        values.append(value)
        if not found:
            missing.append(i)
    return _Read(values, missing, len(paths), "the files given")


# ---------------------------------------------------------------------------- run directory
def _marker(folder: str) -> dict[str, Any]:
    """The run's description: our marker file, else the manifest's first line."""
    for name in (MARKER, MANIFEST):
        path = previous_names.find(folder, name)
        if os.path.isfile(path):
            with open(path) as fh:
                text = fh.read() if name == MARKER else fh.readline()
            try:
                return json.loads(text)
            except ValueError:
                continue
    return {}


def _load_dir(folder: str) -> _Read:
    """A run directory, read by the storage that wrote it (the default ``hdf5`` for
    directories whose marker names none)."""
    from .plugins import storages

    info = _marker(folder)
    func, n, name = info.get("func"), info.get("n_inputs"), info.get("storage", "hdf5")
    if func is None or n is None:
        containers = [e for e in os.listdir(folder) if e.endswith(".h5")]
        if len(containers) == 1:
            stored = read_container(os.path.join(folder, containers[0]))
            return _read(stored, _n_of(stored), os.path.join(folder, containers[0]))
        raise ValueError(f"{folder} holds no acme-core run (no {MARKER}).")
    known = storages()
    if name not in known:
        raise ValueError(f"{folder} was written by storage {name!r}, which is not installed "
                         f"here (installed: {', '.join(map(repr, known))}); install the "
                         f"plugin that provides it to read the results.")
    reader = getattr(known[name].spec.get_factory(), "load", None)
    if reader is None:
        raise ValueError(f"storage {name!r} ({known[name].distribution}) cannot read its "
                         f"results back: its factory has no `load`.")
    return _read(reader(StorageSettings(func_name=func, n_calls=n, output_dir=folder)), n,
                 folder)


def _n_of(stored: StoredResults) -> int:
    values = stored.values
    if stored.per_call:
        return len(values)
    arr = values[0] if isinstance(values, list) else values
    return arr.shape[0]


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


def _load_h5(path: str) -> _Read:
    if _is_container(path):
        folder, name = os.path.split(os.path.abspath(path))
        info = _marker(folder)
        if info.get("func") and name == f"{info['func']}.h5":
            return _load_dir(folder)
        stored = read_container(path)
        return _read(stored, _n_of(stored), path)
    value, found = read_call_h5(path)
    return _Read([value], [] if found else [0], 1, path)


def _load_call_file(path: str) -> tuple[Any, bool]:
    if path.endswith(".pickle"):
        folder = os.path.dirname(os.path.abspath(path))
        wrapped = _marker(folder).get("storage") not in (None, "pickle")
        return read_pickle(path, wrapped), True
    return read_call_h5(path)
