"""Read a run's results back (``acme_core.load``), in call order, from any on-disk layout.

A call without a result (failed, not run yet, its file lost) never reads as data: it is
``None`` in a list, NaN in a stacked floating-point array, and ``load`` warns with the
indices of such calls (:class:`MissingResultsWarning`) and returns them on request
(``return_missing=True``).
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .errors import MissingResultsWarning
from .output_dir import MARKER
from .storage.values import read_dataset, read_group

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
            f"call{'s' if len(missing) > 1 else ''} {shown}. {_note(read.values)}", missing),
            stacklevel=2)
    return (read.values, read.missing) if return_missing else read.values


class _Read(NamedTuple):
    values: Any
    missing: list[int]
    n: int
    where: str


class _Calls(list):
    """A list with one entry per call (not ACME's flat list of stacked results)."""


def _note(values: Any) -> str:
    if isinstance(values, _Calls):
        return "Their entries are None."
    arr = values[0] if isinstance(values, list) else values
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "fc":
        return "Their slices of the stacked array are NaN."
    return "Their slices of the stacked array are 0 (this dtype has no NaN)."


def _load(path: PathLike | Sequence[PathLike]) -> _Read:
    if isinstance(path, (str, os.PathLike)):
        path = os.fspath(path)
        if os.path.isdir(path):
            return _load_dir(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} does not exist.")
        if path.endswith(".pickle"):
            return _Read(_Calls([_read_pickle(path)]), [], 1, path)
        return _load_h5(path)
    paths = [os.fspath(p) for p in path]
    if len(paths) == 1 and paths[0].endswith(".h5") and _is_container(paths[0]):
        return _load_h5(paths[0])
    values, missing = _Calls(), []
    for i, p in enumerate(paths):
        value, found = _load_call_file(p) if os.path.exists(p) else (None, False)
        values.append(value)
        if not found:
            missing.append(i)
    return _Read(values, missing, len(paths), "the files given")


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


def _load_dir(folder: str) -> _Read:
    info = _marker(folder)
    func, n, storage = info.get("func"), info.get("n_inputs"), info.get("storage")
    if func is None or n is None:
        containers = [e for e in os.listdir(folder) if e.endswith(".h5")]
        if len(containers) == 1:
            return _load_container(os.path.join(folder, containers[0]))
        raise ValueError(f"{folder} holds no acme-core run (no {MARKER}).")
    if storage == "memory":
        raise ValueError(f"{folder} is an in-memory run: it holds no results.")
    container = os.path.join(folder, f"{func}.h5")
    payload = os.path.join(folder, f"{func}_payload")
    if storage == "hdf5-shards":
        return _from_segments(folder, payload, func, n, None)
    if storage == "hdf5-single":
        return _from_segments(folder, payload, func, n, container)
    if storage == "pickle":
        return _from_files(folder, func, n, wrapped=False)
    if os.path.isfile(container):
        return _load_container(container, n)._replace(where=folder)
    return _from_files(folder, func, n, wrapped=True)


def _from_files(folder: str, func: str, n: int, wrapped: bool) -> _Read:
    """Per-call files, where ACME puts them: the payload folder, or (pickles, emergency
    pickling) the run directory itself."""
    payload = os.path.join(folder, f"{func}_payload")
    values: list[Any] = _Calls()
    missing: list[int] = []
    for i in range(n):
        value, found = None, False
        for where in (folder, payload):
            base = os.path.join(where, f"{func}_{i}")
            if os.path.isfile(base + ".pickle"):
                value, found = _read_pickle(base + ".pickle", wrapped), True
                break
            if os.path.isfile(base + ".h5"):
                value, found = _read_call_h5(base + ".h5")
                break
        values.append(value)
        if not found:
            missing.append(i)
    return _Read(values, missing, n, folder)


def _from_segments(folder: str, payload: str, func: str, n: int,
                   container: str | None) -> _Read:
    """``hdf5-shards`` and ``hdf5-single``: the results file (single) overlaid by the
    shards and segments in the payload folder (they are the truth during a run and after
    a crash; a call found in several reads from the most recent)."""
    import h5py

    from .storage.segments import result_files

    values: list[Any] = [None] * n
    have = np.zeros(n, dtype=bool)
    axis = -1
    stacked = None
    if container is not None and os.path.isfile(container):
        stacked, axis = _read_single(container, n, values, have)
    for path in result_files(payload, func):
        try:
            with h5py.File(path, "r", locking=False) as h5:
                axis = int(h5.attrs.get("acme_core_stacking_axis", axis))
                for key, group in h5.items():
                    index = int(key[5:]) if key.startswith("comp_") else n
                    if index < n and "result_0" in group:
                        values[index], have[index] = read_group(group), True
        except OSError:
            continue  # a damaged file: its calls count as missing (resume re-runs them)
    missing = np.flatnonzero(~have).tolist()
    if axis < 0:
        return _Read(_Calls(values), missing, n, folder)
    return _Read(_stack(values, axis, stacked, have), missing, n, folder)


def _read_single(container: str, n: int, values: list[Any],
                 have: np.ndarray) -> tuple[Any, int]:
    """Fill ``values``/``have`` from an ``hdf5-single`` file; (stacked array, axis)."""
    import h5py

    from .storage.hdf5_single import stored_calls

    try:
        with h5py.File(container, "r", locking=False) as h5:
            have |= stored_calls(h5, n)
            if isinstance(h5.get("result_0"), h5py.Dataset):
                dset = h5["result_0"]
                axis = int(dset.attrs.get("acme_core_stacking_axis", 0))
                arr = np.moveaxis(dset[()], axis, 0)
                for i in np.flatnonzero(have).tolist():
                    group = _group(h5, i)
                    extras = tuple(read_dataset(group[k]) for k in _result_keys(group)
                                   if k != "result_0") if group is not None else ()
                    values[i] = (arr[i], *extras) if extras else arr[i]
                return arr, axis
            for i in np.flatnonzero(have).tolist():
                values[i] = read_group(h5[f"comp_{i}"])
    except OSError:
        have[:] = False
    return None, -1


def _result_keys(group: Any) -> list[str]:
    return sorted((k for k in group if k.startswith("result_")), key=lambda k: int(k[7:]))


def _stack(values: list[Any], axis: int, template: Any, have: np.ndarray) -> Any:
    """First values stacked along ``axis`` (zero-padded along a ragged axis, NaN or 0 for
    missing calls), plus ACME's flat list of further return values."""
    firsts = [v[0] if isinstance(v, tuple) else v for v in values]
    present = [np.asarray(v) for v in firsts if v is not None]
    if not present and template is None:
        return _Calls(values)
    ref = present[0] if present else template[0]
    shape = tuple(np.max([v.shape for v in present], axis=0)) if present and ref.ndim else ()
    if template is not None:
        shape = tuple(max(a, b) for a, b in zip(shape or template.shape[1:],
                                                template.shape[1:], strict=True))
    dtype = ref.dtype
    stacked = np.zeros((len(values), *shape), dtype=dtype)
    for i, v in enumerate(firsts):
        if v is not None:
            stacked[(i, *(slice(0, s) for s in np.shape(v)))] = v
    if dtype.kind in "fc":
        stacked[~have] = np.nan
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


def _load_h5(path: str) -> _Read:
    if _is_container(path):
        folder, name = os.path.split(os.path.abspath(path))
        info = _marker(folder)
        if info.get("func") and name == f"{info['func']}.h5" and info.get("storage") in (
                "hdf5-shards", "hdf5-single"):
            return _load_dir(folder)
        return _load_container(path)
    value, found = _read_call_h5(path)
    return _Read(_Calls([value]), [] if found else [0], 1, path)


def _load_container(path: str, n: int | None = None) -> _Read:
    import h5py

    with h5py.File(path, "r") as h5:
        comps = [int(k[5:]) for k in h5 if k.startswith("comp_") and k[5:].isdigit()]
        if "result_0" in h5:  # result_shape: one stacked dataset, extras per call
            stacked, axis, sources, extras = _read_stacked(h5, comps)
        else:
            if n is None:
                n = max(comps, default=-1) + 1
            values, missing = _Calls(), []
            for i in range(n):
                group = _group(h5, i)
                if group is not None and "result_0" in group:
                    values.append(read_group(group))
                else:
                    values.append(None)
                    missing.append(i)
            return _Read(values, missing, n, path)
    if n is None:
        n = stacked.shape[axis] if axis >= 0 else len(stacked)
    missing = []
    if sources is not None:  # virtual: a call is there when its source file opens
        folder = os.path.dirname(os.path.abspath(path))
        have = np.zeros(n, dtype=bool)
        by_file: dict[str, list[tuple[int, str]]] = {}
        for index, file_name, dataset in sources:
            by_file.setdefault(file_name, []).append((index, dataset))
        for file_name, entries in by_file.items():
            target = file_name if os.path.isabs(file_name) else os.path.join(folder, file_name)
            for index in _present(target, entries):
                if index < n:
                    have[index] = True
        missing = np.flatnonzero(~have).tolist()
        if stacked.dtype.kind in "fc" and missing:
            np.moveaxis(stacked, axis, 0)[~have] = np.nan
    return _Read([stacked, *extras] if extras else stacked, missing, n, path)


def _read_stacked(h5: Any, comps: list[int]) -> tuple[np.ndarray, int, Any, list[Any]]:
    """(stacked array, calls' axis, virtual sources (index, file, dataset) or None,
    further return values in call order)."""
    dset = h5["result_0"]
    axis = int(dset.attrs.get("acme_core_stacking_axis", -1))
    stacked = dset[()]
    sources = None
    if dset.is_virtual and axis >= 0:
        sources = [(s.vspace.get_select_bounds()[0][axis], s.file_name, s.dset_name)
                   for s in dset.virtual_sources() if s.dset_name != "acme_core_zeros"]
    extras = []
    for i in sorted(comps):
        group = _group(h5, i)
        if group is not None:
            extras += [read_dataset(group[k]) for k in _result_keys(group)]
    return stacked, axis, sources, extras


def _present(path: str, entries: list[tuple[int, str]]) -> list[int]:
    """The indices of ``entries`` (index, dataset) whose dataset ``path`` holds."""
    import h5py

    try:
        with h5py.File(path, "r", locking=False) as h5:
            return [index for index, dataset in entries if dataset in h5]
    except OSError:
        return []


def _group(h5: Any, index: int) -> Any:
    """``comp_<index>``, or None when it is absent or its link dangles (a failed call)."""
    try:
        return h5[f"comp_{index}"]
    except (KeyError, OSError):
        return None


def _read_call_h5(path: str) -> tuple[Any, bool]:
    """One call's file: (value, True), or (None, False) when it does not open."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            return read_group(h5), "result_0" in h5
    except OSError:
        return None, False


def _load_call_file(path: str) -> tuple[Any, bool]:
    if path.endswith(".pickle"):
        folder = os.path.dirname(os.path.abspath(path))
        wrapped = _marker(folder).get("storage") not in (None, "pickle")
        return _read_pickle(path, wrapped), True
    return _read_call_h5(path)


def _read_pickle(path: str, wrapped: bool = False) -> Any:
    with open(path, "rb") as fh:
        value = pickle.load(fh)
    if wrapped and isinstance(value, list) and len(value) == 1:
        return value[0]  # ACME's emergency pickles hold the list-wrapped value
    return value
