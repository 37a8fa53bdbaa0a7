"""ACME's argument contract: which inputs are split over calls, which are broadcast.

Rules, with ACME's bugs fixed:

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

import difflib
import inspect
import io
import logging
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ArgumentMismatchError, UnknownKeywordError
from .parameters import BY_NAME as OWN_KEYWORDS  # for "did you mean" hints

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
    size: int = 0  # bytes, as size_of measures them (set by build_call_plan)
    #: The types of a list's or tuple's elements (None for other values), set with
    #: ``size``: the size measure, the pickling and the seeding rule each ask, and one scan
    #: of 10^6 elements costs 13 ms.
    element_types: frozenset[type] | None = None
    by_name: bool = False  # given as name=value


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
        from .failures import summarize

        parts = [f"{a.name}={summarize(a.value[index])}" for a in self.arguments if a.split]
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
        given = repr(func)
        given = given if len(given) <= 60 else given[:57] + "..."
        raise TypeError(
            f"<ParallelMap> first input has to be a callable function, not {given} "
            f"({type(func).__name__}). Pass the function first: ParallelMap(func, *args, **kwargs)."
        )
    name = getattr(func, "__name__", type(func).__name__)
    bound, pass_task_id = _bind(func, name, list(args), dict(kwargs))
    for arg in bound:
        _reject_iterators(arg)
    n = _infer_n_inputs(bound, n_inputs)
    if n == 0:
        empty = ", ".join(a.label for a in bound if _candidate_length(a) == 0)
        raise ValueError(
            f"<ParallelMap> nothing to compute: {empty} of {name} has 0 elements, so there are "
            f"0 calls. Pass at least one input, or n_inputs >= 1 to repeat the other arguments."
        )
    for arg in bound:
        arg.split = _is_split(arg, n)
        if isinstance(arg.value, range) and arg.split:
            arg.value = list(arg.value)
    _warn_about(bound, name, max_arg_size_mb)
    return CallPlan(func, name, n, bound, pass_task_id)


def rebuild_call_plan(func: Callable[..., Any], argv: Sequence[tuple[Any, bool]],
                      kwargv: Mapping[str, tuple[Any, bool]], n_inputs: int) -> CallPlan:
    """A call plan whose split/broadcast choice is given, not inferred (ACME's ``argv`` and
    ``kwargv`` after the user rewrote them); matched to ``func``'s signature as
    :func:`build_call_plan` does.

    Parameters
    ----------
    func : callable
        The user's function.
    argv, kwargv
        ``(value, split)`` of every positional and keyword argument; a split value has
        ``n_inputs`` elements.
    n_inputs : int
        The number of calls (the large-argument and callable warnings were given at
        construction and are not repeated).

    Examples
    --------
    >>> from acme_core.arguments import rebuild_call_plan
    >>> plan = rebuild_call_plan(max, [([1, 5], True), ([2, 3], False)], {}, 2)
    >>> [a.split for a in plan.arguments], plan.split_values(1)
    ([True, False], (5,))
    """
    name = getattr(func, "__name__", type(func).__name__)
    args = [value for value, _ in argv]
    kwargs = {key: value for key, (value, _) in kwargv.items()}
    bound, pass_task_id = _bind(func, name, args, kwargs)
    split = {id(value) for value, is_split in [*argv, *kwargv.values()] if is_split}
    for arg in bound:
        _reject_iterators(arg)
        arg.split = id(arg.value) in split
        _measure(arg)
    return CallPlan(func, name, n_inputs, bound, pass_task_id)


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

    values: dict[str, Any] = dict(zip((p.name for p in positional), args, strict=False))
    extra = args[len(positional):]
    if extra and var_pos is None:
        names = ", ".join(repr(p.name) for p in positional)
        raise ArgumentMismatchError(
            f"<ParallelMap> {name} takes at most {len(positional)} positional arguments "
            f"({names}), found {len(args)}. Remove the surplus arguments, give them by name, "
            f"or add *args to {name}'s signature."
        )

    pass_task_id = _set_aside_task_id(by_name, name, args, kwargs, values, extra, var_pos)
    unknown = [k for k in kwargs if k not in by_name] if var_kw is None else []
    if unknown:
        raise UnknownKeywordError(_unknown_keyword_message(name, params, kwargs, unknown))
    given_by_name, extra_kw = _take_keywords(name, kwargs, by_name, values)
    missing = [p.name for p in positional if p.default is _EMPTY and p.name not in values]
    if missing:
        required = [p.name for p in positional if p.default is _EMPTY]
        found = len(required) - len(missing)
        raise ArgumentMismatchError(
            f"<ParallelMap> {name} expects {len(required)} positional arguments "
            f"({', '.join(repr(r) for r in required)}), found {found}. Missing: "
            f"{', '.join(repr(m) for m in missing)}; pass them after `{name}` or by name."
        )
    missing_kw = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
                  and p.default is _EMPTY and p.name not in values]
    if missing_kw:
        raise ArgumentMismatchError(
            f"<ParallelMap> {name} requires keyword-only argument(s) "
            f"{', '.join(repr(m) for m in missing_kw)}, found none; pass them as name=value."
        )
    return _order(params, values, given_by_name, extra, extra_kw, var_pos), pass_task_id


def _set_aside_task_id(by_name: dict[str, inspect.Parameter], name: str, args: list[Any],
                       kwargs: dict[str, Any], values: dict[str, Any], extra: list[Any],
                       var_pos: inspect.Parameter | None) -> bool:
    """ACME's ``taskID``: a keyword with a default is set to each call's index, so a value
    given for it is dropped (with a warning). Returns whether ``func`` gets it."""
    task_param = by_name.get(TASK_ID)
    pass_task_id = task_param is not None and task_param.default is not _EMPTY
    if pass_task_id and (TASK_ID in kwargs or TASK_ID in values):
        log.warning(f"`taskID` of {name} is set by ParallelMap to each call's index; the given "
                    f"value is ignored.")
        kwargs.pop(TASK_ID, None)
        if TASK_ID in values and extra:
            raise ArgumentMismatchError(
                f"<ParallelMap> {name}'s `taskID` is set by ParallelMap, but {len(args)} "
                f"positional arguments fill it and *{var_pos.name if var_pos else 'args'}. "
                f"Give the arguments after `taskID` by name instead."
            )
        values.pop(TASK_ID, None)  # later positionals then travel by name (see _order)
    return pass_task_id


def _take_keywords(name: str, kwargs: dict[str, Any], by_name: dict[str, inspect.Parameter],
                   values: dict[str, Any]) -> tuple[set[str], dict[str, Any]]:
    """Add the keywords naming a parameter to ``values``; return their names and the
    keywords left for ``**kwargs``."""
    given_by_name: set[str] = set()
    extra_kw: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in values:
            raise ArgumentMismatchError(
                f"<ParallelMap> {name} got multiple values for argument {key!r}: once "
                f"positionally and once by name. Pass it only one way."
            )
        if key in by_name:
            values[key] = value
            given_by_name.add(key)
        else:
            extra_kw[key] = value
    return given_by_name, extra_kw


def _unknown_keyword_message(name: str, params: list[inspect.Parameter], kwargs: dict[str, Any],
                             unknown: list[str]) -> str:
    """Name the unknown keywords, keep ACME's "accepts at maximum" fragment, list the
    accepted names and suggest the closest ones."""
    accepted = [p.name for p in params if p.kind not in (
        inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD,
        inspect.Parameter.POSITIONAL_ONLY) and p.name != TASK_ID]
    plural = "s" if len(unknown) > 1 else ""
    text = (f"<ParallelMap> {name} got unexpected keyword argument{plural} "
            f"{', '.join(repr(k) for k in unknown)}")
    with_default = [p.name for p in params if p.default is not _EMPTY and p.name != TASK_ID]
    keywords = [k for k in kwargs if k in with_default or k in unknown]
    if len(keywords) > len(with_default):
        text += (f": {name} accepts at maximum {len(with_default)} keyword arguments "
                 f"({', '.join(repr(k) for k in with_default)}), found {len(keywords)}")
    text += f". {name} accepts {', '.join(repr(k) for k in accepted) or 'no keywords'}"
    positional_only = [k for k in unknown if any(
        p.name == k and p.kind is inspect.Parameter.POSITIONAL_ONLY for p in params)]
    if positional_only:
        text += (f" ({', '.join(repr(k) for k in positional_only)} of {name} can only be "
                 f"given positionally)")
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, [*accepted, *OWN_KEYWORDS], n=1, cutoff=0.75)
        if close and key not in positional_only:
            hints.append(f"{key!r} -> {close[0]!r}")
    if hints:
        text += f" (did you mean {', '.join(hints)}?)"
    return (text + f". Fix the name, or add **kwargs to {name}'s signature. ParallelMap's own "
            f"keywords (n_inputs, output_dir, backend, storage, ...) are never passed to {name}.")


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
                 else f"keyword argument {p.name!r}")
        bound.append(BoundArgument(label, "pos" if positional else "kw", p.name,
                                   values[p.name], p.default, by_name=p.name in given_by_name))
    start = sum(1 for b in bound if b.kind == "pos")
    for j, value in enumerate(extra):
        assert var_pos is not None
        bound.append(BoundArgument(f"positional argument {start + j} (in *{var_pos.name})",
                                   "pos", var_pos.name, value))
    # keyword slots after every positional slot, as Python requires
    bound.sort(key=lambda b: b.kind == "kw")
    bound += [BoundArgument(f"keyword argument {k!r}", "kw", k, v, by_name=True)
              for k, v in extra_kw.items()]
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
    candidates = [(a, n) for a, n in ((a, _candidate_length(a)) for a in bound) if n is not None]
    lengths = [n for _, n in candidates]
    found = "; ".join(f"{a.label} has {n}" for a, n in candidates)
    if n_inputs == "auto":
        if len(set(lengths)) != 1:
            low, high = (min(lengths), max(lengths)) if lengths else (0, 0)
            # ACME's sentence first and unchanged (code matches on it), the details after
            raise ValueError(
                f"<ParallelMap> automatic input distribution failed: found {len(lengths)} objects "
                f"containing {low} to {high} elements. Please specify `n_inputs` manually. "
                + (f"Found: {found}. " if found else "Found no list, tuple, range or 1-D array. ")
                + "Pass n_inputs=<number of calls>; lists, tuples, ranges and 1-D arrays of that "
                "length are split over the calls, everything else is given whole to every call."
            )
        return lengths[0]
    n = int(n_inputs)
    if lengths and n not in lengths and set(lengths) != {1}:
        raise ValueError(
            f"<ParallelMap> No object has required length of {n} matching `n_inputs` "
            f"(n_inputs={n}; {found}). Pass n_inputs equal to one of these lengths, or wrap an "
            f"argument that should go whole to every call in another container."
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
            # given by name (SyNCoPy's `operation=`), a function argument is deliberate
            note = log.debug if arg.by_name else log.warning
            note(f"Found a single callable object in {arg.label} of {name}: it is not "
                 f"called by ParallelMap; every call receives the same object.")
        _measure(arg)
        size = arg.size / 1024**2
        if size > max_arg_size_mb:
            log.warning(
                f"{arg.label} of {name}: argument size {size:.2f} MB exceeds recommended limit of "
                f"{max_arg_size_mb:g} MB. Distributing large variables across workers may result "
                f"in poor performance; consider passing a file name and loading the data in {name}."
            )


def measure_arguments(plan: CallPlan) -> None:
    """Measure every argument of ``plan`` again (size and element types), for a call
    program made later than the plan.

    Examples
    --------
    >>> from acme_core.arguments import build_call_plan, measure_arguments
    >>> plan = build_call_plan(abs, ([1, 2],), {}, "auto", 1024)
    >>> plan.arguments[0].value[1] = "two"
    >>> measure_arguments(plan)
    >>> sorted(t.__name__ for t in plan.arguments[0].element_types)
    ['int', 'str']
    """
    for arg in plan.arguments:
        _measure(arg)


def _measure(arg: BoundArgument) -> None:
    value = arg.value
    arg.element_types = (frozenset(map(type, value)) if isinstance(value, (list, tuple))
                         else None)
    arg.size = size_of(value, arg.element_types)


_SCALARS = frozenset({int, float, bool, complex, str, bytes, type(None)})
#: ``sys.getsizeof`` of 0, of a one-digit int and of each further 30-bit digit
_INT_ZERO, _INT_ONE = sys.getsizeof(0), sys.getsizeof(1)
_INT_DIGIT = sys.getsizeof(2**30) - _INT_ONE


#: Ints counted at once by ``_flat_size``: the temporaries of 10^6 ints at once were 40 MB
#: of the parent's peak
_SIZE_CHUNK = 1 << 16


def _int_sizes(items: list[int] | tuple[int, ...]) -> int | None:
    """``sum(map(sys.getsizeof, items))`` of ints (None: one does not fit in 64 bits)."""
    try:
        values = np.fromiter(items, dtype=np.int64, count=len(items))
    except OverflowError:
        return None
    if not len(values):
        return 0
    if values.min() > -(2**30) and values.max() < 2**30:
        # one 30-bit digit each (the usual indices and counts), none for 0
        zeros = len(values) - int(np.count_nonzero(values))
        return len(values) * _INT_ONE - zeros * (_INT_ONE - _INT_ZERO)
    if values.min() == np.iinfo(np.int64).min:
        return None
    size = np.abs(values)
    digits = (size >= 1).astype(np.int64) + (size >= 2**30) + (size >= 2**60)
    return int(np.sum(np.where(digits == 0, _INT_ZERO, _INT_ONE + (digits - 1) * _INT_DIGIT)))


def _flat_size(items: list[Any] | tuple[Any, ...], kinds: set[type]) -> int:
    """``sum(map(sys.getsizeof, items))`` for a flat sequence of scalars (of the types
    ``kinds``), counted by NumPy for plain floats and ints (a million of them in
    milliseconds, not a second)."""
    if kinds == {float}:
        return len(items) * sys.getsizeof(0.0)
    if kinds == {int}:
        sizes = [_int_sizes(items[k:k + _SIZE_CHUNK]) for k in range(0, len(items), _SIZE_CHUNK)]
        if None not in sizes:
            return sum(sizes)  # type: ignore[arg-type]
    return sum(map(sys.getsizeof, items))


def size_of(obj: Any, element_types: frozenset[type] | None = None) -> int:
    """Approximate size of ``obj`` in bytes (containers recursively, arrays by their buffer).

    ACME's measure: ``sys.getsizeof`` summed over list, tuple and set
    elements and dict keys and values; a NumPy array counts its buffer. Shared and
    self-referencing objects are counted once; any nesting depth works.
    ``element_types``: the types of ``obj``'s elements (a list or tuple), when the caller
    has them (not scanned again).

    Examples
    --------
    >>> import numpy as np
    >>> from acme_core.arguments import size_of
    >>> size_of(np.ones(1000)) >= 8000
    True
    >>> loop = {}
    >>> loop["self"] = loop
    >>> size_of(loop) > 0
    True
    """
    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += item.nbytes + sys.getsizeof(item, 0) * (item.base is not None)
            continue
        total += sys.getsizeof(item, 0)
        if not isinstance(item, (list, tuple)):
            kinds = None
        elif item is obj and element_types is not None:
            kinds = element_types
        else:
            kinds = frozenset(map(type, item))
        if kinds is not None and kinds <= _SCALARS:
            total += _flat_size(item, kinds)  # flat sequences of scalars: no walk
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return total
