"""``python -m acme_core``: what is installed, and how runs on disk stand.

Commands: ``plugins`` (every loaded plugin and what it implements), ``options BACKEND``
(a backend's ``backend_options``), ``status DIR`` (a run's story, or one line per run of a
folder of runs; ``--json`` for scripts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from . import manifest, plugins
from .errors import PluginError
from .runstatus import RunStatus, find_runs, read_status

DESCRIPTION = """\
What acme-core has installed, and how runs on disk stand.

  python -m acme_core plugins            every loaded plugin and what it implements
  python -m acme_core options slurm      the backend_options a backend accepts
  python -m acme_core status DIR         a run's state: backend, storage, started,
                                         elapsed, done/failed/missing, failures
  python -m acme_core status .           one line per run in a folder of runs
"""


def list_plugins() -> str:
    """The text ``python -m acme_core plugins`` prints: backends, storages, then every
    loaded plugin with its distribution and the hooks it implements.

    Examples
    --------
    >>> from acme_core.cli import list_plugins
    >>> text = list_plugins()
    >>> "memory" in text and "acme_core.storage.builtin" in text
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
    lines.append("plugins (hooks they implement):")
    for name, dist, version, hooks in loaded_plugins():
        lines.append(f"  {name}  {dist} {version}: {', '.join(hooks) or '(no hooks)'}")
    return "\n".join(lines)


def loaded_plugins() -> list[tuple[str, str, str, list[str]]]:
    """``(name, distribution, version, hooks)`` of every registered plugin, lifecycle-only
    plugins included (a run's own progress bar is left out).

    Examples
    --------
    >>> from acme_core.cli import loaded_plugins
    >>> builtin = [p for p in loaded_plugins() if p[0] == "acme_core.storage.builtin"][0]
    >>> builtin[3]
    ['acme_core_storages']
    """
    pm = plugins.get_plugin_manager()
    found = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: str(item[0])):
        if name is None or str(name).startswith("acme_core.progress."):
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
        dist, version = plugins.origin_of(str(name)) or ("(registered at run time)", "")
        found.append((str(name), dist, version, hooks))
    return found


def options_table(backend: str) -> str:
    """The Markdown table of a backend's ``backend_options``, from its ``ExecutorSpec``
    (the documentation's tables are checked against it).

    Examples
    --------
    >>> from acme_core.cli import options_table
    >>> print(options_table("joblib"))
    | option | meaning |
    |---|---|
    | `idle_timeout` | seconds an idle worker stays alive for the next run (default 300) |
    | `heartbeat_timeout` | seconds of silence before a hung worker is killed (default 120) |
    """
    spec = plugins.get_executor_spec(backend)
    rows = ["| option | meaning |", "|---|---|"]
    rows += [f"| `{key}` | {text.replace('|', '/')} |" for key, text in spec.options.items()]
    if not spec.options:
        rows.append("| (none) | |")
    return "\n".join(rows)


def run_status(output_dir: str) -> tuple[str, bool]:
    """The text ``python -m acme_core status DIR`` prints, and whether the run is complete.

    Examples
    --------
    >>> from acme_core.cli import run_status
    >>> run_status(str(tmp_path))[0]  # doctest: +ELLIPSIS
    '... holds no acme-core run...'
    """
    status = read_status(output_dir)
    if status is not None:
        return status.describe(), status.state == "complete"
    runs = find_runs(output_dir)
    if not runs:
        return (f"{output_dir} holds no acme-core run (no {manifest.NAME}, and none in "
                f"its sub-folders)."), False
    return "\n".join(r.one_line() for r in runs), all(r.state == "complete" for r in runs)


def _status_json(output_dir: str) -> tuple[dict[str, Any], bool]:
    status = read_status(output_dir)
    if status is not None:
        return status.to_dict(), status.state == "complete"
    runs: list[RunStatus] = find_runs(output_dir)
    return ({"folder": output_dir, "runs": [r.to_dict() for r in runs]},
            bool(runs) and all(r.state == "complete" for r in runs))


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="python -m acme_core", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"acme-core {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plugins", help="list loaded plugins, backends and storages")
    options = sub.add_parser("options", help="the backend_options a backend accepts")
    options.add_argument("backend")
    status = sub.add_parser("status", help="how a run (or each run in a folder) stands",
                            description="A run's state, counts and failures; on a folder "
                            "of runs, one line per run. Exit code 0 when complete.")
    status.add_argument("output_dir")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m acme_core`` and the ``acme-core`` command.

    Examples
    --------
    >>> from acme_core.cli import main
    >>> main(["options", "joblib"])  # doctest: +ELLIPSIS
    | option | meaning |
    ...
    0
    """
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:
        # the reader left early (``status ... | head``): as other command-line tools do,
        # stop quietly; stdout goes to devnull so the interpreter's final flush fails no more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "status":
        if args.json:
            data, complete = _status_json(args.output_dir)
            print(json.dumps(data, indent=1))
        else:
            text, complete = run_status(args.output_dir)
            print(text)
        return 0 if complete else 1
    if args.command == "options":
        try:
            print(options_table(args.backend))
        except (PluginError, ValueError) as exc:
            print(f"python -m acme_core options: {exc}", file=sys.stderr)
            return 2
        return 0
    print(list_plugins())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
