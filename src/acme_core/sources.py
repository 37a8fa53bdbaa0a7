"""Source lines in workers' tracebacks of functions defined in ``__main__`` or a notebook.

cloudpickle ships such functions by value and names their code ``<dynamic-code>``, so a
worker's traceback reads ``File "<dynamic-code>", line 4, in f`` with no source line. The
parent still has the real code objects (and, through :mod:`linecache`, the script's or the
notebook cell's lines): each such frame gets its file name and source line back.
"""

from __future__ import annotations

import functools
import linecache
import re
import sys
from collections.abc import Iterator
from types import CodeType
from typing import Any

DYNAMIC = re.compile(r'^(\s*)File "<dynamic-code>", line (\d+), in (\S+)\s*$')


def _codes(value: Any, depth: int = 0) -> Iterator[CodeType]:
    """Code objects of a function (and of partials, methods, nested functions)."""
    if isinstance(value, functools.partial):
        yield from _codes(value.func, depth)
        return
    code = getattr(getattr(value, "__func__", value), "__code__", None)
    if code is None and isinstance(value, type) and depth == 0:
        for member in vars(value).values():
            yield from _codes(member, depth + 1)
        return
    if isinstance(code, CodeType):
        stack = [code]
        while stack:
            current = stack.pop()
            yield current
            stack += [c for c in current.co_consts if isinstance(c, CodeType)]


def code_index(func: Any) -> dict[str, list[CodeType]]:
    """The code objects a run's frames may come from, by name: ``func``'s and those of
    every function and class of ``__main__`` (the script or the notebook)."""
    found: dict[str, list[CodeType]] = {}
    main = sys.modules.get("__main__")
    values = [func, *(vars(main).values() if main is not None else ())]
    for value in values:
        if callable(value):
            for code in _codes(value):
                same_name = found.setdefault(code.co_name, [])
                if code not in same_name:
                    same_name.append(code)
    return found


def _lines(code: CodeType) -> range:
    numbers = [line for _, _, line in code.co_lines() if line is not None]
    return range(min(numbers, default=code.co_firstlineno), max(numbers, default=0) + 1)


def restore_sources(text: str, func: Any) -> str:
    """``text`` (a formatted traceback) with each ``<dynamic-code>`` frame's file and
    source line filled in from the parent's code objects, when one matches.

    Examples
    --------
    >>> from acme_core.sources import restore_sources
    >>> def f(x):
    ...     return 1 / x
    >>> tb = ('Traceback (most recent call last):\\n'
    ...       f'  File "<dynamic-code>", line {f.__code__.co_firstlineno + 1}, in f\\n'
    ...       'ZeroDivisionError: division by zero\\n')
    >>> print(restore_sources(tb, f), end="")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      File "<doctest ...>", line 2, in f
        return 1 / x
    ZeroDivisionError: division by zero
    """
    if "<dynamic-code>" not in text:
        return text
    index = code_index(func)
    lines = text.splitlines(keepends=True)
    out = []
    for k, line in enumerate(lines):
        match = DYNAMIC.match(line)
        if not match:
            out.append(line)
            continue
        indent, number, name = match.group(1), int(match.group(2)), match.group(3)
        codes = [c for c in index.get(name, ()) if number in _lines(c)]
        if len(codes) != 1:  # unknown or ambiguous: leave the frame as it came
            out.append(line)
            continue
        filename = codes[0].co_filename
        out.append(f'{indent}File "{filename}", line {number}, in {name}\n')
        source = linecache.getline(filename, number).strip()
        following = lines[k + 1] if k + 1 < len(lines) else ""
        if source and not following.startswith(indent + "  "):
            out.append(f"{indent}  {source}\n")
    return "".join(out)
