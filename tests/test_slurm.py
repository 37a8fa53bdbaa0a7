"""Backend "slurm" and ``slurm_cluster_setup`` on a real SLURM (``shared/slurm/start-slurm.sh``).

Without a cluster these tests skip, except with ``REQUIRE_SLURM=1`` (CI), where they fail
(the ``slurm`` fixture of tests/conftest.py).
Nothing here mocks sbatch or dask-jobqueue: jobs are real, on the virtual nodes n1 and n2.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest
from acme_dask import cluster_cleanup, slurm_cluster_setup
from acme_dask import prompts as dask_prompts
from acme_dask.setup import running_client
from acme_dask.slurm import get_slurm_partitions, partition_memory

from acme_core import ParallelComputationError, ParallelMap, plugins
from tests.helpers.dask_funcs import node_of, triple_sum
from tests.helpers.funcs import fail_on_3
from tests.helpers.read_back import assert_same_results, run_and_read_back
from tests.helpers.slurm_helpers import active_jobs, assert_gone, squeue_jobs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("no_dask_client_left")


def _name(what: str) -> str:
    return f"acmetest_{what}_{uuid.uuid4().hex[:6]}"


def _batch_script(job_id: str) -> str:
    out = subprocess.run(["scontrol", "write", "batch_script", job_id, "-"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


# ------------------------------------------------------------------ without a cluster
def test_without_slurm_the_setup_raises_acmes_oserror(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "sinfo"
    stub.write_text("#!/bin/sh\nexit 127\n")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(OSError, match="Error fetching SLURM partition setup"):
        slurm_cluster_setup(interactive=False)
    pmap = ParallelMap(fail_on_3, [1, 2], write_worker_results=False, backend="slurm")
    with pytest.raises(OSError, match="Error fetching SLURM partition setup"):
        pmap.compute()


# ------------------------------------------------------------------ queries
def test_partitions_and_memory_come_from_sinfo_and_scontrol(slurm):
    partitions, default = get_slurm_partitions()
    assert default == slurm["default_partition"] and "64GBS" in partitions
    memory = partition_memory("16GBS")                      # no accounting needed
    assert (memory.def_per_cpu, memory.max_per_cpu, memory.node_mb) == (16384, 16384, 65536)
    assert memory.limit(cores=2) == 32768
    with pytest.raises(ValueError, match=r"Invalid partition selection nope, available SLURM "
                                         r"partitions are .*'8GBS'"):
        slurm_cluster_setup(partition="nope", interactive=False)


def test_job_script_carries_partition_memory_time_and_tls(slurm, tmp_path, caplog):
    name = _name("script")
    with caplog.at_level(logging.WARNING, logger="acme_dask"):
        cluster = slurm_cluster_setup(partition="16GBXS", n_workers=1, mem_per_worker="20GB",
                                      walltime="00:05:00", interactive=False, start_client=False,
                                      log_directory=str(tmp_path / "logs"), job_name=name)
    try:
        assert "Capping memory at partition limit" in caplog.text
        (job_id,) = active_jobs(name)
        script = _batch_script(job_id)
        for line in ("#SBATCH -p 16GBXS", "#SBATCH --mem=16284M", "#SBATCH -t 00:05:00",
                     f"#SBATCH -J {name}", f"#SBATCH -o {tmp_path / 'logs'}"):
            assert line in script, script
        assert " tls://" in script and "--protocol tls://" in script
        for option in ("--tls-ca-file", "--tls-cert", "--tls-key"):
            path = script.split(option + " ", 1)[1].split()[0]
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path   # only the owner
            assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert cluster.scheduler_address.startswith("tls://")
    finally:
        cluster.close()
    assert_gone(name)
    assert os.listdir(tmp_path / "logs")


# ------------------------------------------------------------------ start-up wait
def test_startup_timeout_without_a_prompt_raises_and_cancels_thesqueue_jobs(slurm, tmp_path):
    name = _name("timeout")
    with pytest.raises(TimeoutError, match="could not be started within given time-out "
                                           "interval of 1 seconds"):
        slurm_cluster_setup(n_workers=2, timeout=1, interactive=False,
                            job_extra=["--begin=now+3600"],   # pending for an hour
                            log_directory=str(tmp_path), job_name=name)
    assert squeue_jobs(name), "no job was submitted"
    assert_gone(name)


def test_startup_prompt_keep_waiting_then_abort(slurm, tmp_path, monkeypatch):
    name = _name("prompt")
    answers, asked = ["k", "a"], []

    class Terminal:
        def isatty(self):
            return True

    def answer(message, valid, default, timeout):
        asked.append((message, valid, default))
        return answers.pop(0)

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(dask_prompts, "user_input", answer)
    monkeypatch.setattr(dask_prompts, "KEEP_WAITING", 1.0)
    result = slurm_cluster_setup(n_workers=1, timeout=1, interactive=True,
                                 job_extra=["--begin=now+3600"], log_directory=str(tmp_path),
                                 job_name=name)
    assert result is None
    assert [a[1:] for a in asked] == [("ka", "a"), ("ka", "a")]
    assert "Do you want to [k]eep waiting for 1s or [a]bort?" in asked[0][0]
    assert_gone(name)


# ------------------------------------------------------------------ no orphans
def test_normal_run_auto_workers_logs_in_the_output_dir_and_nothing_left(slurm, tmp_path):
    name = _name("normal")
    out = tmp_path / "run"
    pmap = ParallelMap(node_of, [0, 1, 2], backend="slurm", output_dir=str(out),
                       setup_interactive=False, backend_options={"job_name": name})
    paths = pmap.compute()
    assert len(paths) == 3
    assert len(squeue_jobs(name)) == 3            # n_workers="auto": never more jobs than calls
    logs = os.listdir(out / "logs")
    assert len({n.rsplit("-", 1)[1].split(".")[0] for n in logs}) == 3, logs
    print(f"jobs gone {assert_gone(name):.1f} s after the run")


def test_run_with_a_failing_call_leaves_nothing(slurm, tmp_path):
    name = _name("failing")
    pmap = ParallelMap(fail_on_3, [1, 2, 3, 4], backend="slurm", n_workers=2,
                       output_dir=str(tmp_path / "run"), setup_interactive=False,
                       backend_options={"job_name": name})
    with pytest.raises(ParallelComputationError, match="1/4 tasks failed"):
        pmap.compute()
    print(f"jobs gone {assert_gone(name):.1f} s after the run")


def test_sigint_mid_run_leaves_nothing(slurm, tmp_path):
    name = _name("sigint")
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from acme_core import ParallelMap
        from acme_core.testing.funcs import nap

        if __name__ == "__main__":
            with ParallelMap(nap, list(range(16)), 30.0, backend="slurm", n_workers=2,
                             write_worker_results=False, setup_interactive=False,
                             backend_options={{"job_name": {name!r},
                                              "log_directory": {str(tmp_path)!r}}}) as pmap:
                pmap.compute()
            print("AFTER THE WITH BLOCK", flush=True)
    """))
    # a terminal's Ctrl-C: SIGINT handled by Python, even if this process ignores it
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any("Preparing" in line for line in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        time.sleep(2)                                   # calls are running on both workers
        assert len(active_jobs(name)) == 2
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        print(f"the process ended {time.monotonic() - sent:.1f} s after SIGINT")
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    text = "".join(lines)
    assert proc.returncode != 0 and "AFTER THE WITH BLOCK" not in text, text
    assert "KeyboardInterrupt" in text and "Successfully shut down" in text, text
    print(f"jobs gone {assert_gone(name):.1f} s after the process ended")


# ------------------------------------------------------------------ one cluster, many runs
@pytest.fixture(scope="class")
def client(slurm, tmp_path_factory):
    """Eight workers started by backend="slurm" with ``stop_client=False``, then reused."""
    name = _name("shared")
    logs = tmp_path_factory.mktemp("shared_logs")
    with ParallelMap(node_of, [0], write_worker_results=False, backend="slurm", n_workers=8,
                     stop_client=False, setup_interactive=False,
                     backend_options={"job_name": name, "log_directory": str(logs)}) as pm:
        pm.compute()
    client = running_client()
    assert client is not None and len(client.scheduler_info()["workers"]) == 8
    client.acme_test_job_name = name
    yield client
    cluster_cleanup(client)
    assert_gone(name)


class TestOnOneSlurmCluster:
    """Eight workers (8 one-CPU jobs over n1 and n2), started by backend="slurm" with
    ``stop_client=False`` and reused by every test of this class, as ACME's docs suggest."""

    shares_a_dask_client = True

    def test_200_calls_spread_over_both_nodes(self, client):
        start = time.perf_counter()
        with ParallelMap(node_of, list(range(200)), 0.02, write_worker_results=False,
                         backend="slurm") as pmap:
            results = pmap.compute()
        print(f"200 calls on 8 SLURM workers: {time.perf_counter() - start:.2f} s")
        assert [x for x, _ in results] == list(range(200))
        assert {node for _, node in results} == {"n1", "n2"}
        assert client.status == "running"       # attached: stop_client="auto" kept it

    @pytest.mark.parametrize("storage", sorted(plugins.storages()))
    def test_results_equal_joblib(self, client, storage, tmp_path):
        on_slurm, on_joblib = (
            run_and_read_back(triple_sum, list(range(200)), 4, backend=backend, storage=storage,
                              output_dir=str(tmp_path / backend))
            for backend in ("slurm", "joblib"))
        assert_same_results(on_slurm, on_joblib, 200)

    def test_a_function_from_a_local_module_reaches_thesqueue_jobs(self, client, tmp_path,
                                                              monkeypatch):
        folder = tmp_path / "mine"
        folder.mkdir()
        (folder / "my_slurm_mod.py").write_text("def twice(x):\n    return 2 * x\n")
        monkeypatch.syspath_prepend(str(folder))
        import my_slurm_mod

        pmap = ParallelMap(my_slurm_mod.twice, [1, 2, 3], write_worker_results=False,
                           backend="slurm")
        assert pmap.compute() == [2, 4, 6]

    def test_submitted_job_scripts_carry_partition_memory_and_tls(self, client):
        jobs = active_jobs(client.acme_test_job_name)
        assert len(jobs) == 8
        script = _batch_script(jobs[0])
        assert "#SBATCH -p 8GBS" in script and "#SBATCH --mem=8092M" in script, script
        assert "--protocol tls://" in script and "--tls-key" in script
        assert all(a.startswith("tls://") for a in client.scheduler_info()["workers"])

    def test_a_process_without_the_credentials_cannot_connect(self, client, tmp_path):
        address = client.scheduler.address
        assert address.startswith("tls://")
        tls = client.security.get_tls_config_for_role("client")
        for key in ("ca_file", "cert", "key"):
            path = tmp_path / key
            path.write_text(tls[key])
            path.chmod(0o600)
        probe = tmp_path / "probe.py"
        probe.write_text(textwrap.dedent(f"""
            import sys
            from distributed import Client
            from distributed.security import Security

            address = {address!r}
            attempts = {{
                "plain tcp": (address.replace("tls://", "tcp://"), None),
                "tls without credentials": (address, None),
                "tls with other credentials": (address, Security.temporary()),
            }}
            if sys.argv[1:] == ["own"]:
                attempts = {{"own credentials": (address, Security(
                    tls_ca_file={str(tmp_path / 'ca_file')!r},
                    tls_client_cert={str(tmp_path / 'cert')!r},
                    tls_client_key={str(tmp_path / 'key')!r}, require_encryption=True))}}
            for what, (addr, security) in attempts.items():
                try:
                    c = Client(addr, security=security, timeout="3s")
                except Exception as exc:
                    print("REFUSED", what, type(exc).__name__, flush=True)
                else:
                    print("CONNECTED", what, len(c.scheduler_info()["workers"]), flush=True)
                    c.close()
        """))
        stranger = subprocess.run([sys.executable, str(probe)], capture_output=True,
                                  text=True, timeout=120)
        assert stranger.stdout.count("REFUSED") == 3, stranger.stdout + stranger.stderr
        assert "CONNECTED" not in stranger.stdout
        owner = subprocess.run([sys.executable, str(probe), "own"], capture_output=True,
                               text=True, timeout=120)
        assert "CONNECTED own credentials 8" in owner.stdout, owner.stdout + owner.stderr
