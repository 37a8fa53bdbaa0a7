"""Every hook is documented in docs/plugins/hooks.md with its exact signature (datasette's rule)."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import types

import pluggy
import pytest

from acme_core import hookspecs

DOC = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "plugins", "hooks.md")


def documented_hooks(text: str) -> dict[str, list[str]]:
    """Headings ``### `name(a, b)``` -> parameter names."""
    found = {}
    for name, params in re.findall(r"^### `(acme_core_\w+)\(([^)]*)\)`", text, re.MULTILINE):
        found[name] = [p.strip() for p in params.split(",") if p.strip()]
    return found


def hook_problems(spec_module: types.ModuleType, text: str) -> list[str]:
    """What is wrong between the hook specifications and their documentation."""
    marker = pluggy.HookspecMarker(hookspecs.PROJECT)
    docs = documented_hooks(text)
    problems = []
    for name, function in inspect.getmembers(spec_module, inspect.isfunction):
        if not hasattr(function, marker.project_name + "_spec"):
            continue
        params = list(inspect.signature(function).parameters)
        if name not in docs:
            problems.append(f"{name} is not documented")
        elif docs[name] != params:
            problems.append(f"{name}: documented {docs[name]}, specified {params}")
    return problems


def test_every_hook_is_documented_with_its_signature():
    with open(DOC, encoding="utf-8") as fh:
        assert hook_problems(hookspecs, fh.read()) == []


def test_an_undocumented_hook_is_reported():
    module = types.ModuleType("fake_specs")

    @hookspecs.hookspec
    def acme_core_brand_new(run, extra):
        """Not in the docs."""

    @hookspecs.hookspec
    def acme_core_run_started(run, surprise):
        """Documented with another signature."""

    module.acme_core_brand_new = acme_core_brand_new
    module.acme_core_run_started = acme_core_run_started
    with open(DOC, encoding="utf-8") as fh:
        problems = hook_problems(module, fh.read())
    assert "acme_core_brand_new is not documented" in problems
    assert any(p.startswith("acme_core_run_started: documented ['run']") for p in problems)


@pytest.mark.parametrize("flag, traced", [("1", True), ("0", False)])
def test_trace_env_prints_every_hook_call(tmp_path, flag, traced):
    code = ("from acme_core import ParallelMap\n"
            "ParallelMap(abs, [-1, -2], write_worker_results=False, backend='threads',"
            " verbose=False).compute()\n")
    env = {**os.environ, "ACME_CORE_TRACE_PLUGINS": flag}
    err = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True).stderr
    assert ("acme_core_executors" in err) is traced
    assert ("acme_core_claim_auto" in err) is False  # an explicit backend claims nothing
