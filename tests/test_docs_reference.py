"""The documentation's reference parts are true: ParallelMap's parameters and defaults as its
signature has them, each backend's ``backend_options`` table as its ``ExecutorSpec`` says,
no placeholder links."""

from __future__ import annotations

import ast
import inspect
import os
import re

import pytest

from acme_core import ParallelMap, plugins
from acme_core.cli import options_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY = re.compile(r"^(\*{0,2}\w+(?:, \*{0,2}\w+)*)(?: : (.*))?$")


def documented_parameters(doc: str) -> dict[str, str]:
    """numpydoc ``Parameters`` entries: name -> type line (combined names kept together)."""
    section = re.split(r"\n\n(?=\S)", doc.split("Parameters\n----------\n", 1)[1])[0]
    entries = {}
    for line in section.splitlines():
        match = ENTRY.match(line)
        if match:
            entries[match.group(1)] = match.group(2) or ""
    return entries


def parameter_problems(func) -> list[str]:
    documented = documented_parameters(inspect.getdoc(func) or "")
    problems = []
    signature = inspect.signature(func)
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name == "self":
            continue
        if name not in documented:
            together = [k for k in documented if name in k.split(", ")]
            problems.append(f"{name}: not documented on its own line" + (
                f" (only together: {together[0]!r})" if together else ""))
            continue
        if param.default is param.empty:
            continue
        stated = re.search(r"default (.+)$", documented[name])
        if stated is None:
            problems.append(f"{name}: no default stated (signature: {param.default!r})")
        elif ast.literal_eval(stated.group(1)) != param.default:
            problems.append(f"{name}: documented default {stated.group(1)}, signature "
                            f"{param.default!r}")
    names = {n for k in documented for n in k.split(", ")}
    problems += [f"{n}: documented but not a parameter" for n in sorted(names)
                 if n.lstrip("*") not in signature.parameters]
    return problems


def test_parallel_map_parameters_and_defaults_match_the_signature():
    assert parameter_problems(ParallelMap) == []


def test_a_wrong_default_and_a_missing_parameter_are_reported():
    def f(a, b=60, c="auto", d=None):
        """Demo.

        Parameters
        ----------
        a : int
            A.
        b, c : int, default 'auto'
            Together.
        e : int, default 1
            Gone.
        """

    assert parameter_problems(f) == [
        "b: not documented on its own line (only together: 'b, c')",
        "c: not documented on its own line (only together: 'b, c')",
        "d: not documented on its own line", "e: documented but not a parameter"]


def repository_backends() -> list[str]:
    """Backends of this repository's distributions (not the test-only plugin)."""
    return [name for name, reg in plugins.executors().items()
            if not reg.distribution.endswith("-test-plugin")]


@pytest.mark.parametrize("backend", repository_backends())
def test_backend_options_tables_match_the_specs(backend):
    with open(os.path.join(ROOT, "docs", "guide", "backends.md"), encoding="utf-8") as fh:
        text = fh.read()
    heading = f"### `{backend}`\n"
    assert heading in text, f"docs/guide/backends.md has no section {heading.strip()}"
    section = text.split(heading, 1)[1]
    table = "\n".join(line for line in section.split("\n\n", 2)[1].splitlines()
                      if line.startswith("|"))
    assert table == options_table(backend), (
        f"the backend_options table of {backend!r} in docs/guide/backends.md is out of date; "
        f"replace it with the output of `python -m acme_core options {backend}`")


def test_no_placeholder_links():
    for path in ("mkdocs.yml", "README.md"):
        with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
            assert "example.invalid" not in fh.read(), path
