"""``python -m acme_core``: what is installed.

Commands
--------
``plugins``
    Every backend and storage with the distribution that provides it and its version.
"""

from __future__ import annotations

import argparse
import sys

from . import plugins


def list_plugins() -> str:
    """The table ``python -m acme_core plugins`` prints.

    Examples
    --------
    >>> from acme_core.cli import list_plugins
    >>> "memory" in list_plugins()
    True
    """
    lines = []
    for title, found in (("backends", plugins.executors()), ("storages", plugins.storages())):
        lines.append(f"{title}:")
        if not found:
            lines.append("  (none installed)")
        width = max((len(n) for n in found), default=0)
        for name, reg in found.items():
            lines.append(f"  {name.ljust(width)}  {reg.distribution} {reg.version}  "
                         f"{reg.spec.description}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m acme_core`` and the ``acme-core`` command."""
    parser = argparse.ArgumentParser(prog="python -m acme_core", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plugins", help="list installed backends and storages")
    args = parser.parse_args(argv)
    if args.command == "plugins":
        print(list_plugins())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
