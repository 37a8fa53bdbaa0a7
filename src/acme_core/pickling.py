"""Proving a run picklable before anything starts, and naming the culprit when it is not.

The bytes made here are the bytes that get sent: each call's split-argument tuple is
pickled once, and the call program (function, broadcast arguments, storage writer) once
per run.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from .arguments import CallPlan
from .calls import CallProgram


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` fast; fall back to cloudpickle for what plain pickle cannot ship
    (lambdas, closures, objects defined in ``__main__`` or a notebook)."""
    try:
        data = pickle.dumps(obj, protocol=5)
    except Exception:
        return cloudpickle.dumps(obj, protocol=5)
    if b"__main__" in data:
        return cloudpickle.dumps(obj, protocol=5)
    return data


class UnpicklableError(TypeError):
    """An argument or the function cannot be sent to the backend's worker processes."""


def _explain(what: str, obj: Any, backend: str, exc: BaseException) -> UnpicklableError:
    return UnpicklableError(
        f"{what} cannot be pickled, so backend {backend!r} cannot send it to its worker "
        f"processes ({type(exc).__name__}: {exc}). Objects such as locks, open files, "
        f"database connections or generators cannot travel between processes: pass what is "
        f"needed to re-create them (e.g. a file name) instead, or use an in-process backend."
    )


def pickle_program(program: CallProgram, plan: CallPlan, backend: str) -> bytes:
    """Pickle the call program once; on failure say which part cannot be pickled."""
    try:
        return cloudpickle.dumps(program, protocol=5)
    except Exception as exc:
        raise _find_culprit(program, plan, backend, exc) from None


def _find_culprit(program: CallProgram, plan: CallPlan, backend: str,
                  exc: BaseException) -> UnpicklableError:
    try:
        cloudpickle.dumps(program.func)
    except Exception as inner:
        return _explain(f"The function {plan.func_name!r}", program.func, backend, inner)
    for arg in plan.broadcast_arguments:
        try:
            cloudpickle.dumps(arg.value)
        except Exception as inner:
            return _explain(f"{arg.label} of {plan.func_name}", arg.value, backend, inner)
    return _explain("The storage's result writer", program.writer, backend, exc)


def pickle_calls(plan: CallPlan, backend: str) -> list[bytes]:
    """Pickle every call's split-argument tuple once (what is sent for that call)."""
    blobs = []
    for index in range(plan.n_inputs):
        values = plan.split_values(index)
        try:
            blobs.append(dumps(values))
        except Exception:
            for arg, value in zip(plan.split_arguments, values, strict=False):
                try:
                    cloudpickle.dumps(value)
                except Exception as inner:
                    raise _explain(f"{arg.label} of {plan.func_name}, element {index},", value,
                                   backend, inner) from None
            raise
    return blobs
