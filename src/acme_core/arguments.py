"""ACME's argument contract: which inputs are split over calls, which are broadcast.

Rules (inventory §4), with ACME's bugs fixed:

- A list, tuple or range, or a NumPy array that is 1-D after ``squeeze()``, is a candidate
  for splitting. For a parameter with a default, a list/tuple value does not count towards
  ``n_inputs="auto"`` when the default is a list/tuple of the same length, and an array
  value does not count when the default is an array.
- ``n_inputs="auto"``: all candidates must have the same length, which becomes the number
  of calls. Explicit ``n_inputs=N``: some candidate has length N, or all have length 1, or
  there are none; everything else is broadcast (every call gets the whole object).
- Positional parameters may be given by name; positionals beyond the named ones fill
  ``*args``; with ``**kwargs`` any keyword is accepted (ACME counted ``*args``/``**kwargs``
  as required positionals and crashed on unknown names).
"""

from __future__ import annotations

import inspect
import io
import logging
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import UnknownKeywordError

log = logging.getLogger("acme_core")

_EMPTY = inspect.Parameter.empty
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
TASK_ID = "taskID"


@dataclass
class BoundArgument:
    """One argument as given by the user, after matching it to ``func``'s signature."""

    label: str  # for messages: "positional argument 1 ('y')", "keyword argument 'z'"
    kind: str  # "pos" or "kw"
    name: str
    value: Any
    default: Any = _EMPTY
    split: bool = False


@dataclass
class CallPlan:
    """How ``n_inputs`` calls of ``func`` get their arguments.

    Split arguments keep the user's object (no copies); call ``i`` takes element ``i``.
    Broadcast arguments are kept once and sent once per worker.
    """

    func: Callable[..., Any]
    func_name: str
    n_inputs: int
    arguments: list[BoundArgument]
    pass_task_id: bool

    @property
    def split_arguments(self) -> list[BoundArgument]:
        """The arguments that differ from call to call."""
        return [a for a in self.arguments if a.split]

    @property
    def broadcast_arguments(self) -> list[BoundArgument]:
        """The arguments every call receives whole."""
        return [a for a in self.arguments if not a.split]

    def layout(self) -> tuple[tuple[tuple[str, str, int], ...], tuple[Any, ...]]:
        """Slots ``(kind, name, source)`` and constants for :class:`~acme_core.calls.CallProgram`.

        ``source >= 0`` indexes the per-call split tuple, ``source < 0`` the constants.
        """
        slots, constants, k = [], [], 0
        for arg in self.arguments:
            if arg.split:
                slots.append((arg.kind, arg.name, k))
                k += 1
            else:
                constants.append(arg.value)
                slots.append((arg.kind, arg.name, -len(constants)))
        return tuple(slots), tuple(constants)

    def split_values(self, index: int) -> tuple[Any, ...]:
        """The split-argument values of call ``index``, in slot order."""
        return tuple(a.value[index] for a in self.arguments if a.split)

    def describe_call(self, index: int, width: int = 80) -> str:
        """A short repr of call ``index``'s split arguments (for failure tables)."""
        parts = [f"{a.name}={a.value[index]!r}" for a in self.arguments if a.split]
        text = ", ".join(parts)
        return text if len(text) <= width else text[: width - 3] + "..."


def build_call_plan(func: Any, args: Sequence[Any], kwargs: dict[str, Any],
                    n_inputs: Any, max_arg_size_mb: float) -> CallPlan:
    """Match ``args``/``kwargs`` to ``func`` and decide how they spread over calls.

    Parameters
    ----------
    func : callable
        The user's function.
    args, kwargs
        What the user passed to ``ParallelMap`` for ``func``.
    n_inputs : "auto" or int
        Already validated by :func:`acme_core.parameters.check_n_inputs`.
    max_arg_size_mb : float
        Size above which one argument triggers ACME's large-argument warning.

    Returns
    -------
    CallPlan

    Raises
    ------
    TypeError, ValueError
        With a message that names the argument and the fix.

    Examples
    --------
    >>> from acme_core.arguments import build_call_plan
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> plan = build_call_plan(f, ([2, 4, 6, 8], 4), {}, "auto", 1024)
    >>> plan.n_inputs, [a.name for a in plan.split_arguments]
    (4, ['x'])
    """
    if not callable(func):
        raise TypeError(
            f"<ParallelMap> first input has to be a callable function, not {type(func).__name__!r}. "
            f"Pass the function first: ParallelMap(func, *args, **kwargs)."
        )
    name = getattr(func, "__name__", type(func).__name__)
    bound, pass_task_id = _bind(func, name, list(args), dict(kwargs))
    for arg in bound:
        _reject_iterators(arg)
    n = _infer_n_inputs(bound, n_inputs)
    if n == 0:
        raise ValueError(
            "<ParallelMap> nothing to compute: the inputs to split have 0 elements. "
            "Pass at least one input, or n_inputs >= 1 to repeat broadcast arguments."
        )
    for arg in bound:
        arg.split = _is_split(arg, n)
        if isinstance(arg.value, range) and arg.split:
            arg.value = list(arg.value)
    _warn_about(bound, name, max_arg_size_mb)
    return CallPlan(func, name, n, bound, pass_task_id)


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None  # some builtins: accept whatever is given, Python checks at call time


def _bind(func: Callable[..., Any], name: str, args: list[Any],
          kwargs: dict[str, Any]) -> tuple[list[BoundArgument], bool]:
    sig = _signature(func)
    if sig is None:
        bound = [BoundArgument(f"positional argument {i}", "pos", f"arg{i}", v)
                 for i, v in enumerate(args)]
        bound += [BoundArgument(f"keyword argument {k!r}", "kw", k, v) for k, v in kwargs.items()]
        return bound, False
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in _POSITIONAL]
    var_pos = next((p for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
    var_kw = next((p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None)
    by_name = {p.name: p for p in params if p.kind not in (
        inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD,
        inspect.Parameter.POSITIONAL_ONLY)}

    task_param = by_name.get(TASK_ID)
    pass_task_id = task_param is not None and task_param.default is not _EMPTY
    if pass_task_id and TASK_ID in kwargs:
        log.warning("`taskID` is set by ParallelMap to each call's index; the given value is ignored.")
        kwargs.pop(TASK_ID)

    values: dict[str, Any] = dict(zip((p.name for p in positional), args, strict=False))
    extra = args[len(positional):]
    if extra and var_pos is None:
        names = ", ".join(repr(p.name) for p in positional)
        raise TypeError(
            f"<ParallelMap> {name} takes at most {len(positional)} positional arguments "
            f"({names}), found {len(args)}. Remove the surplus arguments or give them by name."
        )
    given_by_name: set[str] = set()
    extra_kw: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in values:
            raise TypeError(
                f"<ParallelMap> {name} got multiple values for argument {key!r}: once "
                f"positionally and once by name. Pass it only one way."
            )
        if key in by_name:
            values[key] = value
            given_by_name.add(key)
        elif var_kw is not None:
            extra_kw[key] = value
        else:
            accepted = ", ".join(repr(k) for k in by_name if k != TASK_ID) or "none"
            raise UnknownKeywordError(
                f"<ParallelMap> {name} got an unexpected keyword argument {key!r}; it accepts "
                f"{accepted}. Fix the name, or add **kwargs to {name}'s signature. (Note: "
                f"`backend`, `storage` and `backend_options` are ParallelMap's own keywords.)"
            )
    missing = [p.name for p in positional if p.default is _EMPTY and p.name not in values]
    if missing:
        required = [p.name for p in positional if p.default is _EMPTY]
        found = len(required) - len(missing)
        raise ValueError(
            f"<ParallelMap> {name} expects {len(required)} positional arguments "
            f"({', '.join(repr(r) for r in required)}), found {found}. Missing: "
            f"{', '.join(repr(m) for m in missing)}; pass them after `{name}` or by name."
        )
    missing_kw = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
                  and p.default is _EMPTY and p.name not in values]
    if missing_kw:
        raise TypeError(
            f"<ParallelMap> {name} requires keyword-only argument(s) "
            f"{', '.join(repr(m) for m in missing_kw)}; pass them as name=value."
        )
    return _order(params, values, given_by_name, extra, extra_kw, var_pos), pass_task_id


def _order(params: list[inspect.Parameter], values: dict[str, Any], given_by_name: set[str],
           extra: list[Any], extra_kw: dict[str, Any],
           var_pos: inspect.Parameter | None) -> list[BoundArgument]:
    bound: list[BoundArgument] = []
    still_positional = True
    for i, p in enumerate(params):
        if p.name not in values or p.kind in (inspect.Parameter.VAR_POSITIONAL,
                                              inspect.Parameter.VAR_KEYWORD):
            if p.kind in _POSITIONAL:
                still_positional = False
            continue
        positional = p.kind in _POSITIONAL and still_positional
        label = (f"positional argument {i} ({p.name!r})" if p.name not in given_by_name
                 else f"argument {p.name!r}")
        bound.append(BoundArgument(label, "pos" if positional else "kw", p.name,
                                   values[p.name], p.default))
    start = sum(1 for b in bound if b.kind == "pos")
    for j, value in enumerate(extra):
        assert var_pos is not None
        bound.append(BoundArgument(f"positional argument {start + j} (in *{var_pos.name})",
                                   "pos", var_pos.name, value))
    # keyword slots after every positional slot, as Python requires
    bound.sort(key=lambda b: b.kind == "kw")
    bound += [BoundArgument(f"keyword argument {k!r}", "kw", k, v) for k, v in extra_kw.items()]
    return bound


def _reject_iterators(arg: BoundArgument) -> None:
    value = arg.value
    if isinstance(value, types.GeneratorType) or (
            isinstance(value, Iterator) and not isinstance(value, io.IOBase)):
        raise TypeError(
            f"<ParallelMap> {arg.label} is a {type(value).__name__}: ParallelMap can neither split "
            f"it nor send it to workers. Pass list(...) of it instead."
        )


def _candidate_length(arg: BoundArgument) -> int | None:
    """Length if ``arg`` counts towards ``n_inputs="auto"``, else None."""
    value, default = arg.value, arg.default
    if isinstance(value, (list, tuple, range)):
        if isinstance(default, (list, tuple)) and len(default) == len(value):
            return None
        return len(value)
    if isinstance(value, np.ndarray) and value.squeeze().ndim == 1:
        return None if isinstance(default, np.ndarray) else value.squeeze().shape[0]
    return None


def _infer_n_inputs(bound: list[BoundArgument], n_inputs: Any) -> int:
    lengths = [n for n in (_candidate_length(a) for a in bound) if n is not None]
    if n_inputs == "auto":
        if len(set(lengths)) != 1:
            low, high = (min(lengths), max(lengths)) if lengths else (0, 0)
            raise ValueError(
                f"<ParallelMap> automatic input distribution failed: found {len(lengths)} objects "
                f"containing {low} to {high} elements. Please specify `n_inputs` manually: pass "
                f"n_inputs=<number of calls>; sequences of that length are split, everything "
                f"else is given whole to every call."
            )
        return lengths[0]
    n = int(n_inputs)
    if lengths and n not in lengths and set(lengths) != {1}:
        raise ValueError(
            f"<ParallelMap> No object has required length of {n} matching `n_inputs`. The "
            f"sequence arguments have lengths {sorted(set(lengths))}: pass n_inputs equal to "
            f"one of them, or wrap an argument that should go whole to every call in another "
            f"container."
        )
    return n


def _is_split(arg: BoundArgument, n: int) -> bool:
    value = arg.value
    if isinstance(value, (list, tuple, range)):
        return len(value) == n
    if isinstance(value, np.ndarray) and value.squeeze().ndim == 1:
        if isinstance(arg.default, np.ndarray):
            return False
        return value.squeeze().shape[0] == n and value.shape[0] == n
    return False


def _warn_about(bound: list[BoundArgument], name: str, max_arg_size_mb: float) -> None:
    for arg in bound:
        if callable(arg.value) and not arg.split and not isinstance(arg.value, type):
            log.warning(f"{arg.label} of {name} is a callable: every call receives the same object.")
        size = size_of(arg.value) / 1024**2
        if size > max_arg_size_mb:
            log.warning(
                f"{arg.label} of {name}: argument size {size:.2f} MB exceeds recommended limit of "
                f"{max_arg_size_mb:g} MB. Distributing large variables across workers may result "
                f"in poor performance; consider passing a file name and loading the data in {name}."
            )


def size_of(obj: Any, _seen: set[int] | None = None) -> int:
    """Approximate size of ``obj`` in bytes (containers recursively, arrays by their buffer).

    Examples
    --------
    >>> import numpy as np
    >>> from acme_core.arguments import size_of
    >>> size_of(np.ones(1000)) >= 8000
    True
    """
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes + sys.getsizeof(obj, 0) * (obj.base is not None)
    size = sys.getsizeof(obj, 0)
    if isinstance(obj, dict):
        size += sum(size_of(k, seen) + size_of(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(size_of(v, seen) for v in obj)
    return size
