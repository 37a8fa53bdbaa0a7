"""Every hook is documented in docs/plugins/hooks.md with its exact signature (datasette's rule)."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap
import types

import pluggy
import pytest

from acme_core import ParallelMap, hookspecs, plugins
from acme_core.records import AutoClaim, CallOutcome, Failure, RunInfo, RunSummary

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


def hook_example(name: str) -> str:
    """The code of hook ``name``'s ``Example::`` block, dedented."""
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    block = doc.split("Example::\n", 1)[1]
    return textwrap.dedent("\n".join(line for line in block.splitlines()
                                     if not line or line.startswith(" ")))


def example_plugin(name: str) -> types.ModuleType:
    module = types.ModuleType(f"example_{name}")
    exec(compile(hook_example(name), f"<{name} example>", "exec"), module.__dict__)
    return module


HOOKS = [name for name, f in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(f, hookspecs.PROJECT + "_spec")]


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_example_is_a_plugin_pluggy_accepts(name):
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(example_plugin(name))  # checks the example's argument names against the spec
    assert [impl.function.__name__ for impl in getattr(pm.hook, name).get_hookimpls()] == [name]


def test_the_backend_and_storage_examples_run_a_parallel_map(monkeypatch):
    monkeypatch.delenv("MY_SITE_NODE", raising=False)
    pm = plugins.get_plugin_manager()
    added = [example_plugin("acme_core_executors"), example_plugin("acme_core_storages")]
    for module in added:
        pm.register(module)
    try:
        pmap = ParallelMap(pow, [1, 2, 3], 2, backend="my-threads", storage="my-list",
                           write_worker_results=False, verbose=False)
        assert pmap.compute() == [1, 4, 9]
    finally:
        for module in added:
            pm.unregister(module)


def test_the_claim_example_claims_only_on_its_site(monkeypatch):
    claim = example_plugin("acme_core_claim_auto").acme_core_claim_auto
    monkeypatch.delenv("MY_SITE_NODE", raising=False)
    assert claim() is None
    monkeypatch.setenv("MY_SITE_NODE", "1")
    assert claim() == AutoClaim(backend="my-site", priority=100, reason="MY_SITE_NODE=1")


def test_the_lifecycle_examples_print_what_they_say(capsys):
    run = RunInfo("r1", "f", 4, "threads", "memory", None)
    outcome = CallOutcome(2, duration=0.25, failure=Failure(2, "error", "ValueError", "boom"))
    example_plugin("acme_core_run_started").acme_core_run_started(run=run)
    example_plugin("acme_core_call_finished").acme_core_call_finished(run=run, outcome=outcome)
    example_plugin("acme_core_call_failed").acme_core_call_failed(run=run, outcome=outcome)
    example_plugin("acme_core_call_retried").acme_core_call_retried(run=run, outcome=outcome)
    example_plugin("acme_core_run_finished").acme_core_run_finished(
        run=run, summary=RunSummary(4, n_done=3, n_failed=1))
    assert capsys.readouterr().out.splitlines() == [
        "f: 4 calls on threads", "done 2 0.250s", "failed 2 ValueError",
        "retrying 2 after error", "3 done, 1 failed"]
