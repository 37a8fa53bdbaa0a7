"""Every public function and class has a numpydoc docstring with a runnable example."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC_MODULES = ["acme_core", "acme_joblib", "acme_dask", "acme_slurm_esi",
                  "acme_core.testing"]


def public_objects():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{module_name}.{name}", obj


@pytest.mark.parametrize("qualname, obj",
                         [pytest.param(q, o, id=q) for q, o in public_objects()])
def test_public_api_has_a_numpydoc_docstring_with_an_example(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{qualname} has no docstring"
    assert "Examples\n--------" in doc, f"{qualname}: no numpydoc 'Examples' section"
    assert ">>>" in doc, f"{qualname}: the example is not a runnable doctest"


def test_public_functions_have_type_hints():
    missing = []
    for qualname, obj in public_objects():
        target = obj.__init__ if inspect.isclass(obj) else obj
        if not inspect.isfunction(target):
            continue
        hints = inspect.signature(target).parameters
        for p in hints.values():
            if p.name in ("self", "cls") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.annotation is inspect.Parameter.empty:
                missing.append(f"{qualname}({p.name})")
    assert not missing, f"parameters without type hints: {missing}"
