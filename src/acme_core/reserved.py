"""Keywords of ParallelMap that a user's function may also have: ``f(x, backend=...)``.

ParallelMap takes ``backend=``, ``storage=``, ... itself, so such a keyword never reaches the
function. When its value makes no sense to ParallelMap (``backend="numpy"``) the user meant
the function's parameter: the error says the name is reserved and how to pass it.
"""

from __future__ import annotations

import inspect
from typing import Any

from .parameters import DEFAULTS, RESERVED, validate


def _parameters(func: Any) -> set[str]:
    try:
        return set(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return set()


def _valid(name: str, value: Any) -> bool:
    from . import plugins  # late: the plugins load only when a name collides

    try:
        if name == "backend":
            return value == "auto" or value in plugins.executors()
        if name == "storage":
            return value == "auto" or value in plugins.storages()
        validate(**{name: value})
    except (TypeError, ValueError):
        return False
    return True


def check_reserved(func: Any, **given: Any) -> None:
    """Raise a ``ValueError`` when a reserved keyword's value is meant for ``func``.

    Examples
    --------
    >>> from acme_core.reserved import check_reserved
    >>> def f(x, backend="scipy"):
    ...     return x
    >>> check_reserved(f, backend="numpy")
    Traceback (most recent call last):
    ...
    ValueError: `backend='numpy'` is no backend of ParallelMap, and `f` has a parameter `backend`: ...
    >>> check_reserved(f, backend="joblib")  # a backend: ParallelMap's, as documented
    """
    params = _parameters(func)
    for name, value in given.items():
        default = DEFAULTS[name]
        if name not in params or value is default or (
                type(value) is type(default) and value == default):
            continue
        if _valid(name, value):
            continue
        func_name = getattr(func, "__name__", "func")
        others = ", ".join(n for n in RESERVED if n != name)
        raise ValueError(
            f"`{name}={value!r}` is no {name} of ParallelMap, and `{func_name}` has a parameter "
            f"`{name}`: `{name}` is reserved by ParallelMap (as are {others}), so it never "
            f"reaches `{func_name}`. To pass it to `{func_name}`, bind it first: "
            f"ParallelMap(functools.partial({func_name}, {name}={value!r}), ...).")
