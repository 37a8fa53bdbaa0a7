"""Proving a run picklable before anything starts, and naming the culprit when it is not.

The bytes made here are the bytes that get sent: each call's split-argument tuple is
pickled once, and the call program (function, broadcast arguments, storage writer) once
per run (:meth:`acme_core.payloads.Payloads.batch` ships the stored bytes, executors ship
the program bytes).
"""

from __future__ import annotations

import functools
import importlib
import io
import pickle
import sys
import types
from collections.abc import Iterator
from typing import Any

import cloudpickle
import numpy as np

from .arguments import BoundArgument, CallPlan
from .calls import CallProgram
from .errors import UnpicklableError
from .h5py_arguments import reduce_h5py


class _Pickler(cloudpickle.Pickler):
    """cloudpickle, except that open files are refused (cloudpickle would ship a snapshot of
    a file opened for reading, and the worker would silently read a copy, never the file),
    imported modules of a module subclass travel by name, and h5py objects of read-only
    files as their file name and path (:mod:`acme_core.h5py_arguments`, as dask sends them)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType) and type(obj) is not types.ModuleType \
                and sys.modules.get(obj.__name__) is obj:
            # a package whose module object is of its own class (acme_core itself) is
            # imported by name on the worker; cloudpickle only knows plain modules
            return importlib.import_module, (obj.__name__,)
        reduced = reduce_h5py(obj)
        if reduced is not None:
            return reduced
        if isinstance(obj, io.IOBase) and not isinstance(obj, (io.BytesIO, io.StringIO)):
            where = getattr(obj, "name", None)
            raise pickle.PicklingError(
                f"cannot pickle an open file ({type(obj).__name__}"
                + (f" {where!r}" if where is not None else "") + ")"
            )
        return super().reducer_override(obj)


def cloud_dumps(obj: Any) -> bytes:
    """Pickle ``obj`` with cloudpickle (by value where needed), refusing open files.

    Examples
    --------
    >>> import pickle
    >>> from acme_core.pickling import cloud_dumps
    >>> pickle.loads(cloud_dumps(lambda x: x + 1))(1)
    2
    """
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` fast; fall back to cloudpickle for what plain pickle cannot ship
    (lambdas, closures, objects defined in ``__main__`` or a notebook).

    Examples
    --------
    >>> import pickle
    >>> from acme_core.pickling import dumps
    >>> pickle.loads(dumps((1, "a", [2.5])))
    (1, 'a', [2.5])
    """
    try:
        data = pickle.dumps(obj, protocol=5)
    except Exception:
        return cloud_dumps(obj)
    if b"__main__" in data:  # by reference to the parent's __main__: workers lack it
        return cloud_dumps(obj)
    return data


def _explain(what: str, obj: Any, backend: str, exc: BaseException) -> UnpicklableError:
    given = f"{type(obj).__module__}.{type(obj).__qualname__}".removeprefix("builtins.")
    return UnpicklableError(
        f"{what} cannot be pickled, so backend {backend!r} cannot send it to its worker "
        f"processes: it is a {given} ({type(exc).__name__}: {exc}). Objects such as locks, "
        f"open files, database connections or generators cannot travel between processes: "
        f"pass what is needed to re-create them (e.g. a file name) instead, or use an "
        f"in-process backend."
    )


def pickle_program(program: CallProgram, plan: CallPlan, backend: str) -> bytes:
    """Pickle the call program (function, broadcast arguments, writer) once.

    Returns
    -------
    bytes
        What the executor sends to its workers.

    Raises
    ------
    UnpicklableError
        Naming the function or the argument that cannot be pickled, and why.

    Examples
    --------
    >>> import pickle
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.calls import CallProgram
    >>> from acme_core.pickling import pickle_program
    >>> plan = build_call_plan(pow, ([1, 2], 2), {}, "auto", 1024)
    >>> slots, constants = plan.layout()
    >>> program = CallProgram("run", pow, slots, constants, writer=None)
    >>> pickle.loads(pickle_program(program, plan, "joblib")).constants
    (2,)
    """
    try:
        return cloud_dumps(program)
    except Exception as exc:
        raise _find_culprit(program, plan, backend, exc) from None


def _find_culprit(program: CallProgram, plan: CallPlan, backend: str,
                  exc: BaseException) -> UnpicklableError:
    try:
        cloud_dumps(program.func)
    except Exception as inner:
        return _explain(f"The function {plan.func_name!r}", program.func, backend, inner)
    for arg in plan.broadcast_arguments:
        try:
            cloud_dumps(arg.value)
        except Exception as inner:
            return _explain(f"{arg.label} of {plan.func_name}", arg.value, backend, inner)
    if program.split is not None:  # small split arguments travel inside the program
        for index in range(plan.n_inputs):
            for arg, value in zip(plan.split_arguments, plan.split_values(index), strict=True):
                try:
                    cloud_dumps(value)
                except Exception as inner:
                    return _explain(f"{arg.label} of {plan.func_name}, element {index},", value,
                                    backend, inner)
    return _explain("The storage's result writer", program.writer, backend, exc)


_PLAIN = frozenset({int, float, bool, complex, str, bytes, type(None)})


def _plain_scalars(arg: BoundArgument) -> bool:
    """True for a range, a 1-D numeric array or a list/tuple of plain scalars: what plain
    pickle ships as it is, element by element."""
    values = arg.value
    if isinstance(values, range):
        return True
    if isinstance(values, np.ndarray):
        return values.ndim == 1 and values.dtype.kind in "biufc"
    return arg.element_types is not None and arg.element_types <= _PLAIN


def plain_calls(plan: CallPlan) -> bool:
    """True when every split argument is a sequence of plain scalars (see
    :func:`iter_call_blobs`): their pickles cannot fail."""
    return all(_plain_scalars(a) for a in plan.split_arguments)


def iter_call_blobs(plan: CallPlan) -> Iterator[bytes]:
    """Each call's pickled split-argument tuple, one after the other (for a plan of
    :func:`plain_calls`: nothing to check).

    Examples
    --------
    >>> import pickle
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.pickling import iter_call_blobs
    >>> plan = build_call_plan(pow, ([1, 2], [3, 4]), {}, "auto", 1024)
    >>> [pickle.loads(b) for b in iter_call_blobs(plan)]
    [(1, 3), (2, 4)]
    """
    return map(functools.partial(pickle.dumps, protocol=5),
               zip(*(a.value for a in plan.split_arguments), strict=True))


def pickle_calls(plan: CallPlan, backend: str) -> list[bytes]:
    """Pickle every call's split-argument tuple once (what is sent for that call).

    Examples
    --------
    >>> import pickle
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.pickling import pickle_calls
    >>> plan = build_call_plan(pow, ([1, 2], [3, 4]), {}, "auto", 1024)
    >>> [pickle.loads(b) for b in pickle_calls(plan, "joblib")]
    [(1, 3), (2, 4)]
    """
    if plain_calls(plan):  # cannot fail: one C-level pass, no check
        return list(iter_call_blobs(plan))
    blobs = []
    for index in range(plan.n_inputs):
        values = plan.split_values(index)
        try:
            blobs.append(dumps(values))
        except Exception as exc:
            for arg, value in zip(plan.split_arguments, values, strict=False):
                try:
                    cloud_dumps(value)
                except Exception as inner:
                    raise _explain(f"{arg.label} of {plan.func_name}, element {index},", value,
                                   backend, inner) from None
            raise _explain(f"The arguments of call {index} of {plan.func_name}", values,
                           backend, exc) from None
    return blobs
