"""``python -m acme_core``: what is installed.

Commands
--------
``plugins``
    Every backend and storage with the distribution that provides it and its version.
``status DIR``
    A run's state from its output directory: done / failed / missing counts and the
    failures table (exit code 0 when every call has a result, 1 otherwise).
"""

from __future__ import annotations

import argparse
import sys

from . import manifest, plugins
from .calls import Failure
from .failures import FailureTable


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


def run_status(output_dir: str) -> tuple[str, bool]:
    """The text ``python -m acme_core status DIR`` prints, and whether the run is complete.

    Examples
    --------
    >>> from acme_core.cli import run_status
    >>> run_status(str(tmp_path))[0]  # doctest: +ELLIPSIS
    '... holds no acme-core run...'
    """
    if not manifest.exists(output_dir):
        return f"{output_dir} holds no acme-core run (no {manifest.NAME}).", False
    state = manifest.read(output_dir)
    n = state.n_inputs
    done, failed, missing = len(state.done), len(state.failed), len(state.missing)
    lines = [f"run of {state.header.get('func')!r} in {output_dir} (storage "
             f"{state.header.get('storage')!r}): {n} calls",
             f"  done {done}, failed {failed}, missing {missing}"]
    older = len(state.older_code)
    if older:
        lines.append(f"  {older} of the {done} results come from an earlier version of the "
                     f"function's code than the latest run's (rerun=\"changed\" re-runs them)")
    if state.failures:
        table = FailureTable([
            (Failure(i, e.get("kind", "?"), e.get("type", "?"), e.get("msg", ""), e.get("tb", ""),
                     e.get("worker", ""), e.get("attempts", 1)), e.get("args", ""))
            for i, e in state.failures.items()])
        table.replay_dir = output_dir
        lines += ["", str(table)]
    if done < n:
        lines += ["", "To run the failed and missing calls: create the same ParallelMap with "
                      f"output_dir={output_dir!r} and call compute()."]
    return "\n".join(lines), done == n


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m acme_core`` and the ``acme-core`` command."""
    parser = argparse.ArgumentParser(prog="python -m acme_core", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plugins", help="list installed backends and storages")
    status = sub.add_parser("status", help="done/failed/missing calls of a run directory")
    status.add_argument("output_dir")
    args = parser.parse_args(argv)
    if args.command == "status":
        text, complete = run_status(args.output_dir)
        print(text)
        return 0 if complete else 1
    print(list_plugins())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
