"""Modules a test writes and imports on the fly (a user's own module beside the script)."""

from __future__ import annotations


def import_fresh(folder, name: str, source: str):
    """Write module ``name`` into ``folder``, put it on sys.path and import it (the parent's
    own SIGINT handler is kept: the module may replace it)."""
    import importlib
    import signal
    import sys
    import textwrap

    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(folder))
    before = signal.getsignal(signal.SIGINT)
    try:
        sys.modules.pop(name, None)
        return importlib.import_module(name)
    finally:
        signal.signal(signal.SIGINT, before)
