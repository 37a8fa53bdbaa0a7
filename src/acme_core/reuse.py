"""The result store of ``reuse=DIR``: results of calls computed once, taken by later runs.

An entry is keyed by the code version of the function (``acme_core.codeversion``), the
call's own argument values and, when the call drew random numbers, its random stream.
"""

from __future__ import annotations

import os
from typing import Any


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
    return path
