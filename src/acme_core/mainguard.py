"""A script that starts a run without ``if __name__ == "__main__":``, found before any worker
starts.

Worker processes started with multiprocessing's *spawn* (``ProcessPoolExecutor`` with a spawn
context, dask's nannies) import the user's ``__main__`` script again, so an unguarded script
would start its run again in every worker: workers die at start-up with long tracebacks and
every call is lost. Backends whose workers do that declare the capability ``imports-main``;
for them the core checks, when the ``ParallelMap`` is made, whether the ``ParallelMap`` line
of the ``__main__`` script is inside an ``if __name__ == "__main__":`` block. Notebooks,
``python -c`` and interactive sessions have no script to import again and are never refused.
"""

from __future__ import annotations

import ast
import sys
from types import FrameType

#: The capability of backends whose workers import the ``__main__`` script again.
IMPORTS_MAIN = "imports-main"


class MainGuardError(RuntimeError):
    """The ``__main__`` script starts a run outside ``if __name__ == "__main__":``.

    Examples
    --------
    >>> from acme_core.mainguard import MainGuardError
    >>> issubclass(MainGuardError, RuntimeError)
    True
    """


def unguarded_call(frame: FrameType | None = None) -> tuple[str, int] | None:
    """``(script, line)`` of the ``__main__`` script's top-level line that (directly or
    through functions) is running now, when that line is not under an ``if __name__ ==
    "__main__":`` block; None when guarded or when there is no script.

    Examples
    --------
    >>> from acme_core.mainguard import unguarded_call
    >>> unguarded_call() is None   # pytest's __main__ guards its entry point
    True
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or not path.endswith(".py"):
        return None
    frame = frame or sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals is vars(main):
            break
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    guarded = any(isinstance(node, ast.If) and _is_main_test(node.test)
                  and node.body[0].lineno <= line <= (node.body[-1].end_lineno or line)
                  for node in tree.body)
    return None if guarded else (path, line)


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    values = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and values == ["__main__"]


def check_main_guard(backend: str = "", *, starter: str | None = None,
                     started: str = "the run") -> None:
    """Raise :class:`MainGuardError` when the ``__main__`` script runs this line outside
    ``if __name__ == "__main__":`` (called for backends with the ``imports-main``
    capability, before anything starts).

    ``starter`` names what starts the workers (default ``backend '<backend>'``) and
    ``started`` what the line starts, so a plugin's own helper (e.g. acme-dask's
    ``local_cluster_setup``) raises the same error in its own words.

    Examples
    --------
    >>> from acme_core.mainguard import check_main_guard
    >>> check_main_guard("futures")  # under pytest: nothing to complain about
    >>> check_main_guard(starter="local_cluster_setup", started="them")
    """
    found = unguarded_call(sys._getframe(1))
    if found is None:
        return
    path, line = found
    starter = starter or f"backend {backend!r}"
    raise MainGuardError(
        f"{starter} starts worker processes that import your script {path} again, "
        f"and its line {line}, which starts {started}, is not under "
        f"`if __name__ == \"__main__\":`: every worker would start {started} again. Put the "
        f"code that starts {started} under `if __name__ == \"__main__\":` (functions stay "
        f"defined above it), or move it into a function called from there. Nothing was "
        f"started.")
