"""Whether a run's calls can draw from a random generator: a conservative reading of the
function's code, so calls that cannot skip the per-call seeding of :mod:`acme_core.seeding`.

Seeding Python's and NumPy's global generators costs about 6 microseconds a call, ten
times what acme-core spends on a tiny call otherwise. It changes nothing for a call that
never reaches a generator, and most tiny functions never do: ``np.sqrt(x) * SCALE``,
``math.exp(-x / TAU)``, a helper of the same module. A call *cannot draw* when every
name its code uses is one of these:

- a builtin (except the few that reach any name: ``getattr``, ``eval``, ``__import__``...);
- a module of :data:`SAFE_MODULES` (``numpy`` among them: its random module is reached only
  through an attribute named ``random``, which no code may name);
- a NumPy (or SciPy) ufunc with typed loops, or a function of a safe module (``from numpy
  import sqrt, mean``);
- a number (NumPy's scalars too), string or numeric array, or a small list, tuple, set or
  dict of numbers and strings (of exactly these types: a subclass may add methods);
- a plain Python function (or closure) whose own code, defaults and captured values pass
  the same test and that carries no attributes;
- an attribute name, unless :data:`DRAWING_NAMES` has it (``random``, ``default_rng``, a
  frame's ``f_globals``, the ``sys`` or ``pickle`` a NumPy module holds, ...);

and its split arguments are ranges, numeric arrays or lists and tuples (exactly: a
subclass's ``__getitem__`` may give other objects) of numbers and strings (their methods
draw nothing) and its broadcast arguments pass the same test as names. Anything else, a user class,
another module (``time``, ``scipy``, ``acme_core``: ``acme_core.rng()`` needs the seeding),
too deep a chain of helpers, counts as able to draw: such calls are seeded as always. The
reading can only err towards seeding. It sees a module as the calling process has it: a
module global rebound after import (``model.noise = off``) is not what a worker that
imports the module afresh calls, so pass such choices as arguments. NumPy's print options
are process state too: with a formatter set, every call counts as able to draw.
"""

from __future__ import annotations

import builtins
import opcode
import types
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Modules none of whose functions draw from Python's or NumPy's global generators (NumPy's
#: own random module excepted, see :data:`DRAWING_NAMES`).
SAFE_MODULES = frozenset({"math", "cmath", "operator", "itertools", "functools", "numpy"})

#: Names no code may use, as a name, an attribute or a string constant: they reach a generator
#: (``random``, ``default_rng``; ``matlib``, whose ``rand`` draws) or any object at all
#: (``getattr``, ``eval``, ``__dict__``; ``load``, which may unpickle one).
DRAWING_NAMES = frozenset({
    "random", "default_rng", "RandomState", "Generator", "SeedSequence", "seed", "rng",
    "getattr", "setattr", "delattr", "eval", "exec", "compile", "__import__", "globals",
    "locals", "vars", "__dict__", "__globals__", "__builtins__", "breakpoint", "import_module",
    "modules", "testing", "__getattribute__", "__getattr__", "attrgetter", "methodcaller",
    "matlib", "load", "loads", "allow_pickle",
    # a third review's: frames reach their globals and builtins (gen.gi_frame.f_builtins)
    "gi_frame", "cr_frame", "ag_frame", "tb_frame", "f_back", "f_globals", "f_locals",
    "f_builtins", "_getframe", "__traceback__",
    # np.bmat (and np.r_/np.c_ given a string) look names up in the caller's frame
    "bmat", "r_", "c_",
    # NumPy's other readers of pickles
    "_load", "_loads", "read_array", "NpzFile",
    # the attributes under which NumPy's modules hold modules that are not safe
    # (np.matrixlib.defmatrix.sys, np._core._methods.pickle): a chain stops at its first
    # step out of the safe modules
    "ast", "builtins", "collections", "contextlib", "ctypes", "enum", "inspect", "io",
    "numbers", "os", "pickle", "platform", "re", "sys", "textwrap", "types", "typing",
    "warnings", "weakref"})

#: Helpers followed from the function (a helper's helpers count): beyond, it may draw.
MAX_FUNCTIONS = 32
#: Elements a global container may hold and still be read (beyond: it may draw).
MAX_ELEMENTS = 1000

_SCALARS = (int, float, complex, bool, str, bytes, type(None))
#: Exact types only: a subclass may define methods that draw.
_SCALAR_TYPES = frozenset(_SCALARS) | frozenset(
    np.dtype(code).type for code in "?bhilqBHILQefdgFDG")  # NumPy's numeric scalars
_CONTAINERS = (list, tuple, set, frozenset)
#: An ``import`` inside a function reaches any module; its code units (two bytes each
#: since Python 3.6, inline caches included) are scanned for it.
_IMPORTS = frozenset({opcode.opmap["IMPORT_NAME"], opcode.opmap["IMPORT_FROM"]})


def cannot_draw(func: Any, broadcast: Any, split: Any,
                split_types: Sequence[frozenset[type] | None] | None = None) -> bool:
    """True when no call can reach a random generator, so seeding would change nothing
    (see the module docstring for the rule); ``broadcast`` are the broadcast values and
    ``split`` the split sequences; ``split_types``, when the caller has them, the types of
    each split list's elements (not scanned again; None where it is not a list).

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> from acme_core.drawing import cannot_draw
    >>> cannot_draw(lambda x, y: x + y, [2], [range(4)])
    True
    >>> cannot_draw(lambda x: np.sqrt(x) + math.pi, [], [range(4)])
    True
    >>> cannot_draw(lambda x: x + np.random.rand(), [], [range(4)])
    False
    >>> cannot_draw(lambda x, y: x + y, [object()], [range(4)])  # its __add__ could draw
    False
    """
    if not isinstance(func, types.FunctionType):
        return False
    if np.get_printoptions()["formatter"] is not None:  # a formatter of the user's may draw
        return False
    reader = _Reader()
    types_of = split_types if split_types is not None else [None] * len(split)
    if not (all(reader.value(v) for v in broadcast)
            and all(_plain_values(seq, kinds) for seq, kinds in zip(split, types_of, strict=True))):
        return False
    return reader.function(func)


def _plain_values(values: Any, kinds: frozenset[type] | None) -> bool:
    if type(values) is range:
        return True
    if type(values) is np.ndarray:  # a subclass may hook ufuncs and methods
        return values.dtype.kind in "biufc"
    # exact types: a subclass's __getitem__ (what a call's value comes from) may return
    # other objects than its iteration does
    if type(values) not in (list, tuple):
        return False
    return (kinds if kinds is not None else frozenset(map(type, values))) <= _SCALAR_TYPES


class _Reader:
    """One reading of a function and the helpers it names (each read once)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def function(self, func: types.FunctionType) -> bool:
        if id(func) in self.seen:
            return True  # being read (recursion) or read already
        self.seen.add(id(func))
        if len(self.seen) > MAX_FUNCTIONS:
            return False
        if func.__dict__:  # attributes a call may reach (helper.impl(x)), or __wrapped__
            return False
        if not all(self.value(v) for v in (*(func.__defaults__ or ()),
                                           *(func.__kwdefaults__ or {}).values())):
            return False
        cells = func.__closure__ or ()
        try:
            captured = [cell.cell_contents for cell in cells]
        except ValueError:  # a cell not filled yet
            return False
        if not all(self.value(v) for v in captured):
            return False
        names = _names(func.__code__)
        if names is None:
            return False
        scope = func.__globals__
        base = scope.get("__builtins__", builtins)
        base = base if isinstance(base, dict) else vars(base)
        # a name in neither scope is an attribute name (or one the call would not find)
        return all(self.value(scope[name]) if name in scope else
                   name not in base or _safe_builtin(base[name]) for name in names)

    def value(self, value: Any) -> bool:
        if type(value) in _SCALAR_TYPES:
            return True
        if isinstance(value, types.ModuleType):
            return _safe_module(value.__name__)
        if isinstance(value, types.FunctionType):
            # a safe module's own functions are trusted whole (reading numpy's would only
            # find names of its internals); where a function was defined is its globals'
            # module, not __module__ (functools.wraps copies that)
            # (np.errstate or functools.singledispatch wrap a function of the user's in one
            # of theirs: a closure or attributes, read as any other function)
            own = (not value.__closure__ and not value.__dict__
                   and value.__name__ not in DRAWING_NAMES)  # np.load under another name
            return (own and _safe_module(value.__globals__.get("__name__", ""))
                    or self.function(value))
        if type(value) is np.ufunc:
            # NumPy's and SciPy's ufuncs have typed loops; np.frompyfunc(f) has only
            # object loops, which call f
            return any("O" not in loop for loop in value.types)
        if type(value) is np.ndarray:
            return value.dtype.kind in "biufcSU"
        if type(value) in _CONTAINERS:
            return len(value) <= MAX_ELEMENTS and set(map(type, value)) <= _SCALAR_TYPES
        if type(value) is dict:
            return (len(value) <= MAX_ELEMENTS
                    and set(map(type, value)) | set(map(type, value.values())) <= _SCALAR_TYPES)
        return _safe_builtin(value) or _safe_module_function(value)


def _names(code: types.CodeType) -> set[str] | None:
    """Every global, attribute and string name of ``code`` and the code nested in it; None
    when one of them reaches a generator or any object."""
    units = code.co_code
    if any(units[k] in _IMPORTS for k in range(0, len(units), 2)):
        return None
    names: set[str] = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            nested = _names(const)
            if nested is None:
                return None
            names |= nested
        elif _names_a_blocked_one(const):
            return None
    if names & DRAWING_NAMES:
        return None
    return names


def _names_a_blocked_one(const: Any) -> bool:
    """A string constant that is a blocked name or a dotted path through one
    (``"random.normal"``), also inside a tuple of them (keyword names, ``allow_pickle``);
    a docstring's words are not names."""
    if isinstance(const, str):
        return any(part in DRAWING_NAMES for part in const.split("."))
    if isinstance(const, (tuple, frozenset)):
        return any(_names_a_blocked_one(item) for item in const)
    return False


def _safe_module(name: str) -> bool:
    root, _, rest = name.partition(".")
    # numpy.testing's measure() runs a string of code in its caller's globals
    return (root in SAFE_MODULES and "random" not in rest and "matlib" not in rest
            and "testing" not in rest)


def _safe_builtin(value: Any) -> bool:
    """A builtin function or type (``len``, ``float``, ``ValueError``) or one of a safe
    module (``math.sqrt``, ``numpy.float64``), not one of :data:`DRAWING_NAMES`."""
    if isinstance(value, types.BuiltinFunctionType):
        owner = value.__self__
        return (isinstance(owner, types.ModuleType) and _safe_module_or_builtins(owner)
                and value.__name__ not in DRAWING_NAMES)
    if isinstance(value, type):  # the builtin of that name itself, or a safe module's
        return ((getattr(builtins, value.__name__, None) is value
                 or _safe_module(value.__module__))
                and value.__name__ not in DRAWING_NAMES)  # operator.attrgetter as `ag`
    return False


def _safe_module_or_builtins(module: types.ModuleType) -> bool:
    return module.__name__ == "builtins" or _safe_module(module.__name__.lstrip("_"))


def _safe_module_function(value: Any) -> bool:
    """One of NumPy's array functions (``from numpy import mean``): neither a plain Python
    function nor a builtin. (Other objects of safe modules may hold a function of the
    user's, ``np.vectorize(f)``, ``functools.partial(f)``: they count as able to draw.)"""
    return (type(value).__name__ == "_ArrayFunctionDispatcher"
            and _safe_module(getattr(value, "__module__", "") or "")
            and getattr(value, "__name__", "") not in DRAWING_NAMES)
