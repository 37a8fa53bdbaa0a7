"""Usable cores, ``n_workers="auto"`` and ``stop_client``: one answer for every backend."""

from __future__ import annotations

import os

import pytest

from acme_core import resources


def test_every_backend_counts_the_same_usable_cores():
    from acme_dask import setup as dask_setup
    from acme_joblib import executor as joblib_executor

    counts = {resources.usable_cores(), dask_setup.usable_cores(),
              joblib_executor.usable_cores()}
    assert len(counts) == 1
    assert counts.pop() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("text, expected", [("150000 100000", 2), ("50000 100000", 1),
                                            ("max 100000", None), ("garbage", None)])
def test_a_cgroup_cpu_quota_caps_the_usable_cores(tmp_path, monkeypatch, text, expected):
    quota = tmp_path / "cpu.max"
    quota.write_text(text + "\n")
    monkeypatch.setattr(resources, "_CGROUP_V2", str(quota))
    monkeypatch.setattr(resources, "_CGROUP_V1", (str(tmp_path / "none"),) * 2)
    assert resources._cgroup_quota() == expected
    cores = len(os.sched_getaffinity(0))
    assert resources.usable_cores() == (min(cores, expected) if expected else cores)


def test_auto_workers_is_one_per_call_up_to_the_capacity():
    assert [resources.auto_workers(n, 4) for n in (0, 1, 3, 4, 100)] == [1, 1, 3, 4, 4]


@pytest.mark.parametrize("stop_client, started, stops", [
    ("auto", True, True), ("auto", False, False), (True, False, True), (False, True, False)])
def test_stop_client_means_the_same_for_every_backend(stop_client, started, stops):
    assert resources.stops_workers(stop_client, started_by_run=started) is stops
