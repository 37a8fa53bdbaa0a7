"""Open h5py objects as arguments: they travel as the file's name and the object's path.

An h5py ``File``, ``Group`` or ``Dataset`` cannot be pickled (it is a handle on an open
file). ACME's users pass them anyway (``ParallelMap(func, h5py.File(name)["data"], ...)``)
and dask, which ACME runs on, sends an object of a file opened read-only as its file name
and path, re-opened read-only on the worker (``distributed.protocol.h5py``). acme-core does
the same for every backend that pickles. An object of a file opened for writing is refused
(the worker would read what is on disk, not what the caller has not flushed yet).
"""

from __future__ import annotations

import sys
from typing import Any


def reduce_h5py(obj: Any) -> tuple[Any, tuple[str, str]] | None:
    """``(reopen, (filename, name))`` for an h5py object of a read-only file; None for
    anything else.

    Raises
    ------
    pickle.PicklingError
        For an object of a file opened for writing.

    Examples
    --------
    >>> import h5py, pickle
    >>> from acme_core.h5py_arguments import reduce_h5py
    >>> from acme_core.pickling import cloud_dumps
    >>> with h5py.File(tmp_path / "d.h5", "w") as h5:
    ...     _ = h5.create_dataset("data", data=[1, 2, 3])
    >>> data = h5py.File(tmp_path / "d.h5", "r")["data"]
    >>> pickle.loads(cloud_dumps(data))[()].tolist(), reduce_h5py([1, 2]) is None
    ([1, 2, 3], True)
    """
    h5py = sys.modules.get("h5py")
    if h5py is None or not isinstance(obj, h5py.HLObject):
        return None
    import pickle

    if not obj:  # a closed file or an object of one
        raise pickle.PicklingError(f"cannot pickle a closed h5py object ({type(obj).__name__})")
    if obj.file.mode != "r":
        raise pickle.PicklingError(
            f"cannot send h5py {type(obj).__name__} {obj.name!r} of {obj.file.filename!r}: its "
            f"file is open for writing; close it and pass the file name, or open it with "
            f"mode 'r'")
    return reopen, (obj.file.filename, obj.name)


def reopen(filename: str, name: str) -> Any:
    """The object ``name`` of ``filename``, opened read-only (on the worker).

    Examples
    --------
    >>> import h5py
    >>> from acme_core.h5py_arguments import reopen
    >>> with h5py.File(tmp_path / "d.h5", "w") as h5:
    ...     _ = h5.create_dataset("data", data=[1, 2, 3])
    >>> reopen(str(tmp_path / "d.h5"), "/data").shape
    (3,)
    """
    import h5py

    return h5py.File(filename, "r")[name]
