"""Reading stored results back, shared by the storages' :meth:`Storage.load` halves and by
``acme_core.load`` for files given directly.

A call without a result never reads as data: it is None in a per-call list and NaN (or 0
for dtypes without NaN) in a stacked array; its index is in :attr:`StoredResults.missing`.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np

from ..records import StoredResults
from .values import read_dataset, read_group
from .virtual import AXIS_ATTR


def read_files(folder: str, func: str, n: int, wrapped: bool) -> StoredResults:
    """Per-call files, where ACME puts them: the payload folder, or (pickles, emergency
    pickling) the run directory itself.

    Examples
    --------
    >>> from acme_core.storage.pickle_files import PickleWriter
    >>> from acme_core.storage.readback import read_files
    >>> _ = PickleWriter(str(tmp_path), "f").write(1, "b")
    >>> read_files(str(tmp_path), "f", 2, wrapped=False)
    StoredResults(values=[None, 'b'], missing=[0], per_call=True)
    """
    payload = os.path.join(folder, f"{func}_payload")
    values: list[Any] = []
    missing: list[int] = []
    for i in range(n):
        value, found = None, False
        for where in (folder, payload):
            base = os.path.join(where, f"{func}_{i}")
            if os.path.isfile(base + ".pickle"):
                value, found = read_pickle(base + ".pickle", wrapped), True
                break
            if os.path.isfile(base + ".h5"):
                value, found = read_call_h5(base + ".h5")
                break
        values.append(value)
        if not found:
            missing.append(i)
    return StoredResults(values, missing)


def pickle_complete(path: str) -> bool:
    """A cheap check that ``path`` holds a whole pickle: it starts with a protocol header
    and ends with the STOP opcode, and (protocol 4 and 5) is at least as long as its first
    frame says. A truncated file fails it (certainly when it is shorter than its first
    frame, which holds every small result; else unless it was cut right after a STOP byte).

    Examples
    --------
    >>> import pickle
    >>> from acme_core.storage.readback import pickle_complete
    >>> data = pickle.dumps({"a": list(range(100))}, protocol=5)
    >>> _ = (tmp_path / "p").write_bytes(data)
    >>> _ = (tmp_path / "t").write_bytes(data[:-9])
    >>> pickle_complete(str(tmp_path / "p")), pickle_complete(str(tmp_path / "t"))
    (True, False)
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(11)
            fh.seek(max(0, size - 1))
            last = fh.read(1)
    except OSError:
        return False
    if len(head) < 2 or head[0] != 0x80 or last != b".":
        return False
    if head[1] >= 4 and len(head) == 11 and head[2] == 0x95:  # FRAME <8-byte length>
        return size >= 11 + int.from_bytes(head[3:11], "little")
    return True


def result_keys(group: Any) -> list[str]:
    """``result_<k>`` names of ``group`` in ``k`` order."""
    return sorted((k for k in group if k.startswith("result_")), key=lambda k: int(k[7:]))


def overlay_results(values: list[Any], have: np.ndarray, axis: int,
                    template: Any = None) -> StoredResults:
    """``values`` (None where ``have`` is False) as :class:`StoredResults`: stacked along
    ``axis`` (``result_shape``'s calls' axis; -1: none) on ``template`` (an earlier
    stacked array, or None) when there is anything to stack.

    Examples
    --------
    >>> from acme_core.storage.readback import overlay_results
    >>> overlay_results([np.ones(1), None], np.array([True, False]), -1).missing
    [1]
    """
    missing = np.flatnonzero(~have).tolist()
    if axis >= 0:
        stacked = stack_values(values, axis, template, have)
        if stacked is not values:
            return StoredResults(stacked, missing, per_call=False)
    return StoredResults(values, missing)


def stack_values(values: list[Any], axis: int, template: Any, have: np.ndarray) -> Any:
    """First values stacked along ``axis`` (zero-padded along a ragged axis, NaN or 0 for
    missing calls), plus ACME's flat list of further return values; ``values`` itself
    when nothing can be stacked.

    Examples
    --------
    >>> from acme_core.storage.readback import stack_values
    >>> stack_values([np.ones(2), None], 0, None, np.array([True, False])).tolist()
    [[1.0, 1.0], [nan, nan]]
    """
    firsts = [v[0] if isinstance(v, tuple) else v for v in values]
    present = [np.asarray(v) for v in firsts if v is not None]
    if not present and template is None:
        return values
    ref = present[0] if present else template[0]
    shape = tuple(np.max([v.shape for v in present], axis=0)) if present and ref.ndim else ()
    if template is not None:
        shape = tuple(max(a, b) for a, b in zip(shape or template.shape[1:],
                                                template.shape[1:], strict=True))
    dtype = ref.dtype
    stacked = np.zeros((len(values), *shape), dtype=dtype)
    uniform = present and all(v.shape == shape for v in present) and len(present) == len(values)
    if uniform:
        stacked[...] = np.stack(present)
    else:
        for i, v in enumerate(firsts):
            if v is not None:
                stacked[(i, *(slice(0, s) for s in np.shape(v)))] = v
    if dtype.kind in "fc":
        stacked[~have] = np.nan
    stacked = np.moveaxis(stacked, 0, axis)
    extras = [x for v in values if isinstance(v, tuple) for x in v[1:]]
    return [stacked, *extras] if extras else stacked


def read_container(path: str, n: int | None = None) -> StoredResults:
    """An ACME container: links ``comp_<i>``, or a stacked ``result_0`` (virtual: a call is
    there when its source dataset is).

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.readback import read_container
    >>> with h5py.File(tmp_path / "c.h5", "w") as h5:
    ...     h5["comp_1/result_0"] = [3]
    >>> read_container(str(tmp_path / "c.h5")).missing
    [0]
    """
    import h5py

    with h5py.File(path, "r") as h5:
        comps = [int(k[5:]) for k in h5 if k.startswith("comp_") and k[5:].isdigit()]
        if "result_0" in h5:  # result_shape: one stacked dataset, extras per call
            stacked, axis, sources, extras = _read_stacked(h5, comps)
        else:
            if n is None:
                n = max(comps, default=-1) + 1
            values, missing = [], []
            for i in range(n):
                group = group_of(h5, i)
                if group is not None and "result_0" in group:
                    values.append(read_group(group))
                else:
                    values.append(None)
                    missing.append(i)
            return StoredResults(values, missing)
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
    return StoredResults([stacked, *extras] if extras else stacked, missing, per_call=False)


def _read_stacked(h5: Any, comps: list[int]) -> tuple[np.ndarray, int, Any, list[Any]]:
    """(stacked array, calls' axis, virtual sources (index, file, dataset) or None,
    further return values in call order)."""
    dset = h5["result_0"]
    axis = int(dset.attrs.get(AXIS_ATTR, -1))
    stacked = dset[()]
    sources = None
    if dset.is_virtual and axis >= 0:
        sources = [(s.vspace.get_select_bounds()[0][axis], s.file_name, s.dset_name)
                   for s in dset.virtual_sources() if s.dset_name != "acme_core_zeros"]
    extras = []
    for i in sorted(comps):
        group = group_of(h5, i)
        if group is not None:
            extras += [read_dataset(group[k]) for k in result_keys(group)]
    return stacked, axis, sources, extras


def _present(path: str, entries: list[tuple[int, str]]) -> list[int]:
    """The indices of ``entries`` (index, dataset) whose dataset ``path`` holds."""
    import h5py

    try:
        with h5py.File(path, "r", locking=False) as h5:
            return [index for index, dataset in entries if dataset in h5]
    except OSError:
        return []


def group_of(h5: Any, index: int) -> Any:
    """``comp_<index>``, or None when it is absent or its link dangles (a failed call).

    Examples
    --------
    >>> import h5py
    >>> from acme_core.storage.readback import group_of
    >>> with h5py.File(tmp_path / "g.h5", "w") as h5:
    ...     h5["comp_0"] = h5py.ExternalLink("gone.h5", "/")
    ...     group_of(h5, 0) is None
    True
    """
    try:
        return h5[f"comp_{index}"]
    except (KeyError, OSError):
        return None


def read_call_h5(path: str) -> tuple[Any, bool]:
    """One call's file: (value, True), or (None, False) when it does not open.

    Examples
    --------
    >>> from acme_core.storage.readback import read_call_h5
    >>> read_call_h5(str(tmp_path / "absent.h5"))
    (None, False)
    """
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            return read_group(h5), "result_0" in h5
    except OSError:
        return None, False


def read_pickle(path: str, wrapped: bool = False) -> Any:
    """The object pickled in ``path``; ``wrapped``: unwrap ACME's emergency pickles, which
    hold the list-wrapped value.

    Examples
    --------
    >>> import pickle
    >>> from acme_core.storage.readback import read_pickle
    >>> _ = (tmp_path / "p").write_bytes(pickle.dumps([5]))
    >>> read_pickle(str(tmp_path / "p"), wrapped=True)
    5
    """
    with open(path, "rb") as fh:
        value = pickle.load(fh)
    if wrapped and isinstance(value, list) and len(value) == 1:
        return value[0]  # ACME's emergency pickles hold the list-wrapped value
    return value
