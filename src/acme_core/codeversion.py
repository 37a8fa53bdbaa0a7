"""A version of a function's code that changes when its results may change.

:func:`code_version` hashes what a call of ``func`` executes and reads in the user's own
code, so a resumed run can tell which stored results came from other code:

- the function's bytecode, constants, names and signature; never line numbers or column
  positions, so comment and whitespace edits keep the version. A docstring does not count
  either (it never changes a result; on Python 3.14, which stores docstrings differently,
  adding or removing one does);
- the globals it (and its nested functions, lambdas and comprehensions) reads: plain values
  by content; functions and classes of the user's own modules by their own code version
  (recursively, a cycle ends in a reference by name); a user module's attributes that the
  code names (``helpers.scale``);
- closure cells, defaults and keyword-only defaults; ``functools.partial`` function,
  arguments and keywords; a bound method's function and its ``__self__``; a callable
  object's class (``__call__`` and the other methods) and its instance state.

Code outside the user's modules (the standard library, anything under ``site-packages``,
acme-core itself) counts by its qualified name and its distribution's ``__version__``.

Values are hashed by content, never through ``repr`` of sets or dicts or ``pickle`` (both
depend on ``PYTHONHASHSEED``): set elements and dict items are sorted by their own digest.
Other objects are hashed through ``__reduce_ex__`` (their pickled state, walked the same
way); an object that cannot be reduced (a lock, an open file, a client) counts by its type
name only, so a change of its state goes unnoticed.

:func:`value_digest` is the same hash for one value (the manifest's argument keys use it).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import struct
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator
from typing import Any

#: Nesting depth beyond which a value counts by its type name only.
MAX_DEPTH = 40
#: Scalars and strings hashed by ``repr`` (stable for these types).
_PLAIN = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis))
#: Attributes of a class that say nothing about what its methods compute.
_CLASS_NOISE = frozenset({"__dict__", "__weakref__", "__doc__", "__module__", "__qualname__",
                          "__annotations__", "__firstlineno__", "__static_attributes__"})
#: 3.14 marks a docstring in ``co_flags``; before, a function's first constant is its
#: docstring or None.
_CO_HAS_DOCSTRING = 0x4000000


def code_version(func: Callable[..., Any]) -> str:
    """A hash of ``func``'s code and of what it reads and calls in the user's own code.

    Stable across interpreters and ``PYTHONHASHSEED``; unchanged by comment, whitespace
    and docstring edits. See the module docstring for what is covered.

    Parameters
    ----------
    func : callable
        A function, lambda, ``functools.partial``, bound method or callable object.

    Returns
    -------
    str
        16 hexadecimal digits.

    Examples
    --------
    >>> from acme_core.codeversion import code_version
    >>> def f(x):
    ...     return 2 * x
    >>> before = code_version(f)
    >>> def f(x):  # a comment
    ...     return 2 * x
    >>> code_version(f) == before
    True
    >>> def f(x):
    ...     return 3 * x
    >>> code_version(f) == before
    False
    """
    return _Digest().of(func).hex()[:16]


def value_digest(value: Any) -> bytes:
    """The content hash (32 bytes) of one value, by the rules of :func:`code_version`.

    Examples
    --------
    >>> from acme_core.codeversion import value_digest
    >>> value_digest({"b", "a"}) == value_digest({"a", "b"})
    True
    >>> value_digest([1, 2]) == value_digest((1, 2))
    False
    """
    return _Digest().of(value)


# ---------------------------------------------------------------------------- user code
@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.add(os.path.dirname(os.path.abspath(__file__)))  # acme-core itself
    return tuple(sorted(os.path.realpath(r) + os.sep for r in roots if r))


@functools.lru_cache(maxsize=4096)
def _is_user_module(name: str | None) -> bool:
    """True for modules the user writes: ``__main__``, notebooks, their own files."""
    if not name or name == "__main__":
        return True
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or top == "acme_core":
        return False
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if module is None or path is None:
        return module is None  # unknown (a function unpickled by value): treat as user code
    return _is_user_file(path)


@functools.lru_cache(maxsize=4096)
def _is_user_file(path: str) -> bool:
    if path.startswith("<"):
        return True  # typed in: a notebook cell, a doctest, exec()
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not real.startswith(_library_roots())


def _is_user_function(func: types.FunctionType) -> bool:
    """By the file its code was compiled from (a notebook's functions claim no module)."""
    if func.__module__ == "acme_core" or (func.__module__ or "").startswith("acme_core."):
        return func.__code__.co_filename.startswith("<")  # a doctest of acme-core
    return _is_user_file(func.__code__.co_filename)


def _library_tag(module_name: str | None, qualname: str) -> bytes:
    top = (module_name or "").split(".")[0]
    version = getattr(sys.modules.get(top), "__version__", "")
    return f"lib:{module_name}.{qualname}@{version if isinstance(version, str) else ''}".encode()


# ---------------------------------------------------------------------------- hashing
class _Digest:
    """One hashing session: memoises functions, classes and modules, breaks cycles."""

    def __init__(self) -> None:
        self._memo: dict[int, bytes] = {}
        self._active: set[int] = set()
        self._keep: list[Any] = []  # memo keys are ids: keep their objects alive

    def of(self, value: Any, depth: int = 0) -> bytes:
        """The 32-byte digest of ``value``."""
        h = hashlib.sha256()
        for part in self._parts(value, depth):
            h.update(struct.pack("<Q", len(part)))
            h.update(part)
        return h.digest()

    def _parts(self, value: Any, depth: int) -> Iterator[bytes]:
        kind = type(value)
        if kind in _PLAIN:
            yield kind.__name__.encode()
            yield repr(value).encode("utf-8", "surrogatepass")
            return
        if depth > MAX_DEPTH:
            yield b"deep:" + _type_name(value).encode()
            return
        key = id(value)
        if key in self._active:
            yield b"cycle:" + _type_name(value).encode() + _name_of(value).encode()
            return
        if key in self._memo:
            yield self._memo[key]
            return
        self._active.add(key)
        try:
            digest = self._compound(value, depth + 1)
        except Exception:  # noqa: BLE001 - an object that breaks while being walked
            digest = b"opaque:" + _type_name(value).encode()
        finally:
            self._active.discard(key)
        if isinstance(value, (types.FunctionType, type, types.ModuleType, types.CodeType)):
            self._memo[key] = digest
            self._keep.append(value)
        yield digest

    def _compound(self, value: Any, depth: int) -> bytes:
        h = hashlib.sha256()
        for part in self._compound_parts(value, depth):
            h.update(struct.pack("<Q", len(part)))
            h.update(part)
        return h.digest()

    def _compound_parts(self, value: Any, depth: int) -> Iterator[bytes]:  # noqa: C901
        of = functools.partial(self.of, depth=depth)
        if isinstance(value, (list, tuple)):
            yield type(value).__name__.encode()
            yield from map(of, value)
        elif isinstance(value, (set, frozenset)):
            yield type(value).__name__.encode()
            yield from sorted(map(of, value))
        elif isinstance(value, dict):
            yield type(value).__name__.encode()
            yield from sorted(of(k) + of(v) for k, v in value.items())
        elif isinstance(value, types.CodeType):
            yield from self._code_parts(value, depth)
        elif isinstance(value, types.FunctionType):
            yield from self._function_parts(value, depth)
        elif isinstance(value, functools.partial):
            yield b"partial"
            yield from (of(value.func), of(value.args), of(value.keywords))
        elif isinstance(value, types.MethodType):
            yield b"method"
            yield from (of(value.__func__), of(value.__self__))
        elif isinstance(value, type):
            yield from self._class_parts(value, depth)
        elif isinstance(value, types.ModuleType):
            yield b"module:" + value.__name__.encode()
        elif isinstance(value, (types.BuiltinFunctionType, types.WrapperDescriptorType,
                                types.MethodDescriptorType, types.MethodWrapperType)):
            yield _library_tag(getattr(value, "__module__", None), _name_of(value))
            owner = getattr(value, "__self__", None)
            if owner is not None and not isinstance(owner, (types.ModuleType, type)):
                yield of(owner)
        else:
            yield from self._object_parts(value, depth)

    def _code_parts(self, code: types.CodeType, depth: int) -> Iterator[bytes]:
        yield b"code"
        yield code.co_code
        yield code.co_exceptiontable if hasattr(code, "co_exceptiontable") else b""
        yield repr((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
                    code.co_flags & ~_CO_HAS_DOCSTRING, code.co_names, code.co_varnames,
                    code.co_freevars, code.co_cellvars)).encode()
        consts = list(code.co_consts)
        if _has_docstring(code):
            consts[0] = "<docstring>"
        for const in consts:
            yield self.of(const, depth)

    def _function_parts(self, func: types.FunctionType, depth: int) -> Iterator[bytes]:
        if not _is_user_function(func):
            yield _library_tag(func.__module__, func.__qualname__)
            return
        of = functools.partial(self.of, depth=depth)
        yield b"function:" + func.__qualname__.encode()
        yield of(func.__code__)
        yield of(func.__defaults__)
        yield of(func.__kwdefaults__)
        for cell in func.__closure__ or ():
            try:
                yield of(cell.cell_contents)
            except ValueError:
                yield b"empty-cell"
        names = _global_names(func.__code__)
        found = {n: func.__globals__[n] for n in sorted(names) if n in func.__globals__}
        for name, value in found.items():
            yield name.encode()
            if isinstance(value, types.ModuleType) and _is_user_module(value.__name__):
                attrs = {a: getattr(value, a) for a in sorted(names) if hasattr(value, a)}
                yield b"module:" + value.__name__.encode()
                yield from (a.encode() + of(v) for a, v in attrs.items())
            else:
                yield of(value)

    def _class_parts(self, cls: type, depth: int) -> Iterator[bytes]:
        if not _is_user_module(cls.__module__):
            yield _library_tag(cls.__module__, cls.__qualname__)
            return
        yield b"class:" + cls.__qualname__.encode()
        for base in cls.__bases__:
            yield self.of(base, depth)
        for name in sorted(vars(cls)):
            if name not in _CLASS_NOISE:
                yield name.encode() + self.of(_unwrap_member(vars(cls)[name]), depth)

    def _object_parts(self, obj: Any, depth: int) -> Iterator[bytes]:
        of = functools.partial(self.of, depth=depth)
        cls = type(obj)
        yield of(cls)
        array = _array_bytes(obj)
        if array is not None:
            yield from array
            return
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception:  # noqa: BLE001 - not reducible: the documented type-name rule
            yield b"opaque"
            return
        if isinstance(reduced, str):
            yield b"global:" + reduced.encode()
            return
        parts = list(reduced) + [None] * (5 - len(reduced))
        func, args, state, items, dict_items = parts[:5]
        yield of(func)
        yield of(args)
        yield of(state)
        yield of(list(items) if items is not None else None)
        yield of(dict(dict_items) if dict_items is not None else None)


def _has_docstring(code: types.CodeType) -> bool:
    """True when the first constant is the docstring slot (a docstring, or None if none)."""
    if not code.co_consts or not isinstance(code.co_consts[0], (str, type(None))):
        return False
    if sys.version_info >= (3, 14):
        return bool(code.co_flags & _CO_HAS_DOCSTRING)
    # Before 3.14 a function's first constant is its docstring or None; lambdas and
    # comprehensions (names in angle brackets) have no docstring slot.
    return bool(code.co_flags & inspect.CO_NEWLOCALS) and not code.co_name.startswith("<")


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _unwrap_member(member: Any) -> Any:
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    if isinstance(member, property):
        return (member.fget, member.fset, member.fdel)
    return member


def _array_bytes(obj: Any) -> list[bytes] | None:
    numpy = sys.modules.get("numpy")
    if numpy is None or not isinstance(obj, (numpy.ndarray, numpy.generic)):
        return None
    array = numpy.asarray(obj)
    if array.dtype.hasobject:
        return None  # object arrays: their elements go through the reduce rule
    return [array.dtype.str.encode(), repr(array.shape).encode(),
            numpy.ascontiguousarray(array).tobytes()]


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _name_of(value: Any) -> str:
    return str(getattr(value, "__qualname__", getattr(value, "__name__", "")))
