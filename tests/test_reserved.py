"""A function keyword that collides with a reserved ParallelMap name."""

from __future__ import annotations

import functools

import pytest

from acme_core import ParallelMap


def transform(x, backend="scipy", retries=1):
    return f"{x}:{backend}:{retries}"


def test_a_value_meant_for_the_function_gets_the_reserved_name_error():
    with pytest.raises(ValueError) as info:
        ParallelMap(transform, [1, 2], backend="numpy", write_worker_results=False)
    text = str(info.value)
    assert "`backend='numpy'` is no backend of ParallelMap" in text
    assert "`transform` has a parameter `backend`" in text and "reserved" in text
    assert "functools.partial(transform, backend='numpy')" in text
    with pytest.raises(ValueError, match="functools.partial\\(transform, retries='many'\\)"):
        ParallelMap(transform, [1, 2], retries="many", write_worker_results=False)


def test_the_fix_the_error_names_works_and_valid_values_stay_parallel_maps():
    bound = functools.partial(transform, backend="numpy")
    assert ParallelMap(bound, [1, 2], write_worker_results=False, verbose=False,
                       backend="threads").compute() == ["1:numpy:1", "2:numpy:1"]
    # a real backend name is ParallelMap's (as documented); the function keeps its default
    assert ParallelMap(transform, [1, 2], backend="threads", write_worker_results=False,
                       verbose=False).compute() == ["1:scipy:1", "2:scipy:1"]


def test_a_function_without_such_a_parameter_gets_the_usual_error():
    with pytest.raises(ValueError, match="unknown backend 'numpy'") as info:
        ParallelMap(abs, [1, 2], backend="numpy", write_worker_results=False)
    assert "reserved" not in str(info.value)
