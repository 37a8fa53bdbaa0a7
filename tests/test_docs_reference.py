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
from acme_core.parameters import BY_NAME, PARAMETERS, reference_table

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


def docstring_entries(doc: str) -> list[tuple[str, str, str]]:
    """numpydoc ``Parameters`` entries in order: (name, type line, description on one line)."""
    section = re.split(r"\n\n(?=\S)", doc.split("Parameters\n----------\n", 1)[1])[0]
    entries: list[tuple[str, str, str]] = []
    for line in section.splitlines():
        match = ENTRY.match(line)
        if match:
            entries.append((match.group(1), match.group(2) or "", ""))
        elif entries:
            name, kind, text = entries[-1]
            entries[-1] = (name, kind, f"{text} {line.strip()}".strip())
    return entries


def table_problems(cls) -> list[str]:
    """Where ``cls``'s signature or docstring differs from the parameter table."""
    problems = []
    signature = [p for p in inspect.signature(cls).parameters.values()
                 if p.kind is p.KEYWORD_ONLY]
    if [p.name for p in signature] != [row.name for row in PARAMETERS]:
        problems.append(f"signature order {[p.name for p in signature]}")
    problems += [f"{p.name}: signature default {p.default!r}, table {BY_NAME[p.name].default!r}"
                 for p in signature if p.name in BY_NAME and p.default != BY_NAME[p.name].default]
    entries = [e for e in docstring_entries(inspect.getdoc(cls) or "") if e[0] in BY_NAME]
    if [name for name, _, _ in entries] != [row.name for row in PARAMETERS]:
        problems.append(f"docstring order {[name for name, _, _ in entries]}")
    for name, kind, text in entries:
        row = BY_NAME[name]
        if kind != f"{row.type}, default {row.default_text}":
            problems.append(f"{name}: docstring type {kind!r}, table "
                            f"{row.type!r} with default {row.default_text}")
        if not text.startswith(row.summary):
            problems.append(f"{name}: docstring {text!r} does not begin with the table's "
                            f"{row.summary!r}")
    return problems


def test_parallel_map_signature_and_docstring_follow_the_parameter_table():
    assert table_problems(ParallelMap) == []


def test_a_signature_or_docstring_that_left_the_table_is_reported():
    class Drifted:
        """Demo.

        Parameters
        ----------
        n_inputs : int, default "auto"
            Number of calls.
        """

        def __init__(self, func, *args, n_inputs="all", **kwargs):
            pass

    problems = table_problems(Drifted)
    assert "n_inputs: signature default 'all', table 'auto'" in problems
    assert any(p.startswith("n_inputs: docstring type 'int, default \"auto\"'") for p in problems)
    assert any(p.startswith("n_inputs: docstring 'Number of calls.' does not begin") for p in problems)
    assert problems[0] == "signature order ['n_inputs']"


def test_the_parameter_reference_page_is_the_table():
    with open(os.path.join(ROOT, "docs", "reference", "parameters.md"), encoding="utf-8") as fh:
        text = fh.read()
    backends = {name: reg.spec for name, reg in plugins.executors().items()
                if name in repository_backends()}
    assert reference_table(backends) in text, (
        "docs/reference/parameters.md is out of date; replace its table with the output of "
        "`reference_table(backends)` as this test builds it")
