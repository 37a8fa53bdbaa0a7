"""Backend "slurm-esi" and ``esi_cluster_setup`` on the real local SLURM (partitions named
like ESI's: ``<N>GB`` = N GiB per CPU), started by ``shared/slurm/start-slurm.sh``.

Without a cluster the SLURM tests skip, except with ``REQUIRE_SLURM=1`` (CI), where they
fail. Nothing mocks sbatch: jobs are real, on the virtual nodes n1 and n2. The memory
probes of ``partition="auto"`` really allocate 2.5 and 7 GiB on this host, one at a time.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
import uuid

import cloudpickle
import numpy as np
import pytest
from acme_dask import cluster_cleanup, local_cluster_setup
from acme_dask.setup import running_client
from acme_slurm_esi import ESI, esi_cluster_setup
from acme_slurm_esi import site as esi_site
from acme_slurm_esi.probe import measure_calls

from acme_core import ParallelMap
from acme_core.calls import CallProgram
from acme_core.testing import BackendConformance
from tests.helpers.funcs import allocate_gib, sleepy, slurm_job_of
from tests.helpers.slurm_helpers import GONE_WITHIN, assert_gone, job_fields, squeue_jobs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("no_dask_client_left")


def _name(what: str) -> str:
    return f"acmeesi_{what}_{uuid.uuid4().hex[:6]}"


def _logged_estimate(text: str) -> float:
    found = re.search(r"Estimated memory consumption across \d+ runs is ([\d.]+) GB", text)
    assert found, text
    return float(found.group(1))


# ------------------------------------------------------------------ without a cluster
def test_the_node_override_changes_only_the_claim(monkeypatch):
    monkeypatch.delenv("ACME_SLURM_ESI_NODE", raising=False)
    assert ESI.claim() is None                              # this host is no ESI node
    monkeypatch.setenv("ACME_SLURM_ESI_NODE", "1")
    claim = ESI.claim()
    assert (claim.backend, claim.priority) == ("slurm-esi", 100)
    assert ESI.default_output() is None                     # paths: still not an ESI node
    assert ESI.job_extra(["--account=lab"]) == ["--account=lab"]
    monkeypatch.setattr(esi_site.socket, "gethostname", lambda: "esi-svhpc2")
    monkeypatch.setattr(esi_site.os.path, "isdir", lambda p: p == "/cs")
    monkeypatch.setenv("ACME_SLURM_ESI_NODE", "0")
    assert ESI.is_node() and ESI.claim() is None            # "0" forbids even on a node
    monkeypatch.delenv("ACME_SLURM_ESI_NODE")
    assert "esi-svhpc2" in ESI.claim().reason
    with pytest.raises(ValueError, match="Cannot start SLURM workers in partition E880 with "
                                         "architecture ppc64le from submitting host"):
        ESI.check_arch("E880", "x86_64")
    with pytest.raises(ValueError, match="partition 8GBS with architecture x86_64"):
        ESI.check_arch("8GBS", "ppc64le")


def test_without_slurm_esi_cluster_setup_gives_a_local_client(tmp_path, monkeypatch, caplog):
    """No SLURM and nobody to ask: a working local client (with a warning)."""
    stub = tmp_path / "sinfo"
    stub.write_text("#!/bin/sh\necho 'sinfo: command not usable' >&2\nexit 127\n")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with caplog.at_level(logging.WARNING, logger="acme_slurm_esi"):
        client = esi_cluster_setup(partition="auto", interactive=False)
    try:
        assert "starting a local multi-processing computing client" in caplog.text
        assert client.submit(abs, -3).result(timeout=30) == 3
    finally:
        cluster_cleanup(client)


def test_a_running_client_is_reused_before_anything_is_checked():
    client = local_cluster_setup(n_workers=1, interactive=False)
    try:
        assert esi_cluster_setup("no-such-partition", interactive=False) is client
        assert esi_cluster_setup("auto", start_client=False) is client.cluster
    finally:
        cluster_cleanup(client)


def test_the_probe_takes_the_exact_peak_of_each_call_and_cuts_long_calls(caplog):
    """ru_maxrss from os.wait4: a 0.25 GiB call is 0.25 GiB plus an interpreter, and the
    0.5 GiB this process holds does not count; a call over the time cap is killed."""
    ballast = np.ones(2**29 // 8)                   # noqa: F841 - held while probing
    program = CallProgram("probe-test", allocate_gib, (("pos", "x", 0), ("pos", "gib", 1)),
                          (), None, split=([0, 1], [0.25, 0.0]))
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="could not load the run's function"):
        measure_calls(cloudpickle.dumps(program), [(0, None)], 10, sys_path=("/nowhere",))
    big, small = measure_calls(cloudpickle.dumps(program), [(0, None), (1, None)], 10,
                               sys_path=(REPO,), label="allocate_gib")
    assert (big.status, small.status) == ("ok", "ok")
    assert 0.25 < big.peak_gb < 0.35 and small.peak_gb < 0.1, (big, small)
    program = CallProgram("probe-test", sleepy, (("pos", "x", 0), ("pos", "seconds", 1)), (),
                          None, split=([0], [60]))
    with caplog.at_level(logging.WARNING, logger="acme_slurm_esi"):
        (cut,) = measure_calls(cloudpickle.dumps(program), [(0, None)], 1.0, (REPO,))
    assert cut.status == "timeout" and 1.0 <= cut.seconds < 3
    assert "stopped at the time cap of 1 s" in caplog.text
    print(f"probe test: {time.monotonic() - start:.1f} s")


# ------------------------------------------------------------------ on the local SLURM
def test_invalid_partition_is_a_valueerror_listing_the_valid_ones(slurm):
    valid = r"available SLURM partitions are '8GBXS', '8GBS', .*'64GBS'"
    with pytest.raises(ValueError, match=r"Invalid partition selection nope, " + valid):
        esi_cluster_setup("nope", interactive=False)
    # checked in the constructor now (before: at compute()), nothing made
    with pytest.raises(ValueError, match=r"Invalid partition selection nope, " + valid):
        ParallelMap(abs, [1, 2], write_worker_results=False, backend="slurm-esi",
                    partition="nope")
    with pytest.raises(OSError, match="Cannot auto-select partition without first invoking "
                                      "memory estimation"):
        esi_cluster_setup("auto", interactive=False)


def test_over_asking_memory_warns_caps_and_derives_cores(slurm, tmp_path, caplog):
    """20 GB in 8GBS: ACME's cores int(20000 / 8192) = 2, so the cap is 2 x 8 GiB - 100."""
    name = _name("cap")
    with caplog.at_level(logging.WARNING, logger="acme_dask"):
        cluster = esi_cluster_setup("8GBS", n_workers=1, mem_per_worker="20GB",
                                    interactive=False, start_client=False, job_name=name,
                                    log_directory=str(tmp_path / "logs"))
    try:
        assert ("`mem_per_worker` of 20000MB exceeds limit of 16284MB for partition 8GBS. "
                "Capping memory at partition limit.") in caplog.text
        (job,) = squeue_jobs(name, "PD,CF,R")
        fields = job_fields(job)
        assert (fields["Partition"], fields["MinMemoryNode"], fields["CPUs/Task"]) == \
            ("8GBS", "16284M", "2")
    finally:
        cluster.close()
    assert_gone(name)


def test_forty_calls_on_four_workers_in_8GBXS(slurm, tmp_path):
    name = _name("forty")
    start = time.perf_counter()
    with ParallelMap(slurm_job_of, list(range(40)), write_worker_results=False,
                     backend="slurm-esi", partition="8GBXS", n_workers=4,
                     setup_interactive=False, backend_options={"job_name": name}) as pmap:
        results = pmap.compute()
    print(f"40 calls on 4 slurm-esi workers: {time.perf_counter() - start:.1f} s")
    assert [x for x, _ in results] == list(range(40))
    jobs = squeue_jobs(name)
    assert len(jobs) == 4 and {job for _, job in results} <= set(jobs)
    for job in jobs:   # 8GBXS: DefMemPerCPU 8192 -> 1 core, 8192 - 100 MB cushion
        fields = job_fields(job)
        assert (fields["Partition"], fields["MinMemoryNode"], fields["CPUs/Task"]) == \
            ("8GBXS", "8092M", "1"), fields
    print(f"jobs gone {assert_gone(name):.1f} s after the run")


def test_job_output_goes_to_the_run_directory_unless_job_extra_says_where(slurm, tmp_path):
    name = _name("out")
    out = tmp_path / "run"
    ParallelMap(slurm_job_of, [1, 2], output_dir=str(out), backend="slurm-esi",
                partition="8GBXS", n_workers=1, setup_interactive=False,
                backend_options={"job_name": name}).compute()
    (job,) = squeue_jobs(name)
    assert job_fields(job)["StdOut"].startswith(str(out / "logs") + os.sep)
    assert_gone(name)
    mine = tmp_path / "mine"
    mine.mkdir()
    name = _name("out")
    ParallelMap(slurm_job_of, [1, 2], output_dir=str(tmp_path / "run2"), backend="slurm-esi",
                partition="8GBXS", n_workers=1, setup_interactive=False,
                backend_options={"job_name": name,
                                 "job_extra": [f"--output={mine}/job-%j.txt"]}).compute()
    (job,) = squeue_jobs(name)
    assert job_fields(job)["StdOut"] == f"{mine}/job-{job}.txt"
    assert_gone(name)


@pytest.mark.parametrize(("gib", "picked", "mem"), [(2.5, "8GBS", "8092M"),
                                                    (7.0, "16GBS", "16284M")])
def test_auto_partition_measures_calls_and_picks_the_smallest_that_fits(
        slurm, tmp_path, caplog, gib, picked, mem):
    """2.5 GiB + 20% fits 8GBS; 7 GiB + 20% = 8.4 GiB does not (ACME's closest-match
    would have picked 8GB), so 16GBS. The probe runs here, one call at a time."""
    name = _name("auto")
    out = tmp_path / "run"
    start = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="acme_slurm_esi"):
        calls = [0, 1] if gib < 5 else [0]        # 7 GiB: one call, to keep the test short
        pmap = ParallelMap(allocate_gib, calls, gib, output_dir=str(out), backend="slurm-esi",
                           n_workers=1, setup_interactive=False,
                           backend_options={"job_name": name, "probe_calls": 2,
                                            "probe_timeout": 30})
        paths = pmap.compute()
    elapsed = time.perf_counter() - start
    estimate = _logged_estimate(caplog.text)
    chosen = re.search(r"Picked partition (\S+)", caplog.text)
    print(f"{gib} GiB per call: estimate {estimate} GB, picked "
          f"{chosen.group(1) if chosen else None}, run {elapsed:.1f} s")
    assert gib <= estimate <= gib + 0.5, caplog.text
    assert f"Picked partition {picked} based on estimated memory consumption" in caplog.text
    assert re.search(r"Memory probe \d/\d: call #\d peaked at", caplog.text)
    assert len(paths) == len(calls)      # the probe calls wrote no result files
    assert sorted(os.listdir(out / "allocate_gib_payload")) == [
        f"allocate_gib_{i}.h5" for i in range(len(calls))]
    (job,) = squeue_jobs(name)
    fields = job_fields(job)
    assert (fields["Partition"], fields["MinMemoryNode"]) == (picked, mem)
    assert_gone(name)


def test_auto_partition_with_large_arguments_measures_the_first_calls(slurm, caplog):
    """Split arguments over 16 MB travel with the batches, not in the program: the probe
    then measures the first calls submitted, before any job starts."""
    name = _name("large")
    arrays = [np.zeros(1_200_000), np.zeros(1_200_000)]       # 2 x 9.6 MB
    with caplog.at_level(logging.INFO, logger="acme_slurm_esi"):
        result = ParallelMap(len, arrays, write_worker_results=False, backend="slurm-esi",
                             n_workers=1, setup_interactive=False,
                             backend_options={"job_name": name, "probe_calls": 2}).compute()
    assert result == [1_200_000, 1_200_000]
    assert "measuring the memory of 2 of 2 calls of len (#0, #1)" in caplog.text
    assert _logged_estimate(caplog.text) < 0.5 and "Picked partition 8GBS" in caplog.text
    assert_gone(name)


def test_an_esi_node_runs_parallelmap_without_a_backend_on_slurm(slurm, tmp_path):
    """ACME_SLURM_ESI_NODE=1 makes backend="auto" pick "slurm-esi"; without it, joblib. Each
    in a fresh interpreter, so the variable is read anew."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent("""
        from acme_core import ParallelMap
        from tests.helpers.funcs import slurm_job_of

        if __name__ == "__main__":
            pmap = ParallelMap(slurm_job_of, [0, 1, 2, 3], write_worker_results=False,
                               n_workers=2, setup_interactive=False)
            results = pmap.compute()
            print("BACKEND", pmap.backend)
            print("JOBS", " ".join(sorted({str(job) for _, job in results})))
    """))
    env = {k: v for k, v in os.environ.items() if k != "ACME_SLURM_ESI_NODE"}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")

    def run(extra):
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env={**env, **extra},
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines()
                     if line.startswith(("BACKEND", "JOBS")))
        return lines["BACKEND"], lines["JOBS"].split(), proc.stderr

    backend, jobs, log_text = run({"ACME_SLURM_ESI_NODE": "1"})
    assert backend == "slurm-esi" and jobs and "None" not in jobs, log_text
    assert "Picked partition 8GBS" in log_text, log_text
    for job in jobs:
        assert job_fields(job)["Partition"] == "8GBS"
    start = time.monotonic()
    while subprocess.run(["squeue", "-h", "-j", ",".join(jobs), "-t", "PD,CF,R,CG"],
                         capture_output=True, text=True).stdout.strip():
        assert time.monotonic() - start < GONE_WITHIN, f"jobs {jobs} still queued"
        time.sleep(0.3)
    backend, jobs, _ = run({})
    assert (backend, jobs) == ("joblib", ["None"])


# ------------------------------------------------------------------ conformance kit
class TestSlurmEsi(BackendConformance):
    """The conformance kit on backend "slurm-esi", each run with its own jobs in 8GBXS."""

    backend = "slurm-esi"
    backend_options = {"probe_calls": 1}

    @pytest.fixture(autouse=True)
    def _cluster(self, slurm):
        yield
        client = running_client()
        if client is not None:
            cluster_cleanup(client)
            pytest.fail(f"a dask client was left running: {client}")

    def pmap(self, func, *args, **kwargs):
        kwargs.setdefault("partition", "8GBXS")
        kwargs.setdefault("setup_interactive", False)
        return super().pmap(func, *args, **kwargs)
