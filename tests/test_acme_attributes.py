"""ACME's semi-public ParallelMap attributes, as real clients (SyNCoPy) use them, and the
log file behaviour ACME users rely on: kwargv/argv rewritable until compute(), n_inputs,
daemon.client right after the constructor, a read-only config, logfile after compute(),
construction warnings in the log file, ACME's message texts."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from acme_core import ParallelMap, load
from acme_core.acme_attributes import ConfigView, Daemon
from acme_core.early_log import EarlyRecords
from tests.helpers.dask_funcs import worker_address
from tests.helpers.funcs import f

QUIET = {"write_worker_results": False, "verbose": False}


def whole(x, table=None):
    """What a call receives: its x and the table argument as a list."""
    return x, np.asarray(table).tolist() if table is not None else None


# ---------------------------------------------------------------------- argv / kwargv
def test_split_entries_hold_the_users_sequence_and_broadcast_ones_a_one_element_list():
    xs, zs = [2, 4, 6, 8], (1, 2, 3, 4)
    pmap = ParallelMap(f, xs, 4, z=zs, **QUIET)
    assert pmap.argv == [xs, [4]] and pmap.argv[0] is xs
    assert pmap.kwargv == {"z": zs} and pmap.kwargv["z"] is zs
    assert pmap.n_inputs == 4 and pmap.config.n_inputs == 4 and pmap.config.n_calls == 4


def test_required_arguments_given_by_name_are_positional_as_in_acme():
    pmap = ParallelMap(f, y=[1, 2, 3], x=5, z=2, **QUIET)
    assert pmap.argv == [[5], [1, 2, 3]]
    assert pmap.kwargv == {"z": [2]}
    assert pmap.compute() == [12, 14, 16]


@pytest.mark.parametrize("backend", ["threads", "joblib"])
def test_syncopys_rewrite_gives_a_sequence_of_n_inputs_whole_to_every_call(backend):
    # SyNCoPy: "if any element of cfg satisfies len(x) == numCalls, ParallelMap would split
    # it: prevent this" -> pmap.kwargv[key] = [value] after the constructor
    table = [10, 20, 30]
    pmap = ParallelMap(whole, [0, 1, 2], table=table, backend=backend, **QUIET)
    assert pmap.kwargv["table"] is table          # split by the constructor (length 3)
    for key, value in pmap.kwargv.items():
        if isinstance(value, list) and len(value) == pmap.n_inputs:
            pmap.kwargv[key] = [value]
    assert pmap.compute() == [(0, table), (1, table), (2, table)]


def test_an_array_of_n_inputs_rewritten_to_broadcast_reaches_every_call_whole():
    weights = np.arange(3.0)
    pmap = ParallelMap(whole, [0, 1, 2], table=weights, backend="joblib", **QUIET)
    pmap.kwargv["table"] = [weights]
    assert [t for _, t in pmap.compute()] == [[0.0, 1.0, 2.0]] * 3


def test_a_broadcast_entry_turned_into_a_split_one_is_split():
    pmap = ParallelMap(f, [1, 2, 3], 4, **QUIET)
    pmap.argv[1] = [10, 20, 30]
    assert pmap.compute() == [33, 66, 99]


def test_a_broadcast_value_replaced_in_place_is_used():
    pmap = ParallelMap(f, [1, 2, 3], 4, backend="joblib", **QUIET)
    pmap.argv[1][0] = 0
    assert pmap.compute() == [3, 6, 9]


@pytest.mark.parametrize("new_value", [2.7, "two"])
def test_an_element_replaced_in_place_is_recorded_by_its_own_digest(tmp_path, new_value):
    """``pmap.argv[0][1] = v`` changes call 1's argument after the constructor read the
    list's types: the manifest must record v's digest, so a later run over the original
    inputs re-runs call 1 instead of keeping f(v) as f(2)."""
    out = str(tmp_path / "run")

    def times_ten(x):
        return x * 10

    pmap = ParallelMap(times_ten, [1, 2, 3], backend="threads", output_dir=out,
                       storage="pickle", verbose=False)
    pmap.argv[0][1] = new_value
    assert pmap.compute() and load(out)[1] == new_value * 10
    ParallelMap(times_ten, [1, 2, 3], backend="threads", output_dir=out, storage="pickle",
                verbose=False).compute()
    assert load(out) == [10, 20, 30]


def test_an_entry_of_the_wrong_length_is_an_error_naming_it_before_any_work(tmp_path):
    out = tmp_path / "run"
    pmap = ParallelMap(f, [1, 2, 3], 4, z=[1, 2, 3], output_dir=str(out), verbose=False)
    pmap.kwargv["z"] = [1, 2]
    with pytest.raises(ValueError, match=r"pmap.kwargv\['z'\] holds 2 elements, but the run "
                                         r"has n_inputs=3 calls"):
        pmap.compute()
    assert not list(out.glob("f_*.h5"))          # no call ran


def test_a_keyword_the_function_does_not_take_is_rejected_when_compute_starts():
    pmap = ParallelMap(f, [1, 2, 3], 4, **QUIET)
    pmap.kwargv["w"] = [1]
    with pytest.raises(TypeError, match="unexpected keyword argument 'w'"):
        pmap.compute()


def test_unchanged_lists_keep_the_constructors_plan():
    pmap = ParallelMap(f, [1, 2, 3], 4, **QUIET)
    plan = pmap._plan
    assert pmap.compute() == [15, 18, 21]
    assert pmap._plan is plan


# ---------------------------------------------------------------------- config / daemon
def test_config_is_a_read_only_view_and_daemon_config_its_alias(tmp_path):
    out = str(tmp_path / "run")
    pmap = ParallelMap(f, [1, 2], 4, output_dir=out, result_shape=(None,),
                       result_dtype="float32", verbose=False)
    config = pmap.config
    assert isinstance(config, ConfigView)
    assert (config.output_dir, config.result_shape, config.result_dtype) == (out, (None,),
                                                                            "float32")
    assert (config.single_file, config.write_pickle, config.write_worker_results) == (
        False, False, True)
    assert config.kwargv is pmap.kwargv and config["n_inputs"] == 2
    assert dict(pmap.daemon.config).keys() == dict(config).keys()
    assert pmap.daemon.config.output_dir == out
    with pytest.raises(AttributeError, match="read-only: pass output_dir to ParallelMap"):
        config.output_dir = "elsewhere"
    with pytest.raises(AttributeError, match="pmap.config has no 'nonsense'"):
        config.nonsense  # noqa: B018
    pmap.cleanup()


def test_daemon_computes_and_has_no_client_on_a_backend_without_one():
    pmap = ParallelMap(f, [1, 2], 4, backend="threads", **QUIET)
    assert pmap.daemon is pmap.daemon
    assert pmap.daemon.client is None and pmap.config.client is None
    assert pmap.daemon.compute() == [15, 18]
    with pytest.raises(TypeError, match="`pmap` has to be a `ParallelMap` instance, not <class .str.>"):
        Daemon("invalid")


def test_daemon_client_is_the_running_client_right_after_the_constructor(
        no_dask_client_left):
    from acme_dask import cluster_cleanup, local_cluster_setup

    client = local_cluster_setup(n_workers=1, interactive=False)
    try:
        pmap = ParallelMap(worker_address, [1, 2], setup_interactive=False, **QUIET)
        assert pmap.backend == "dask"
        assert pmap.daemon.client is client
        workers = client.cluster.scheduler_info["workers"]
        assert all(w["memory_limit"] > 0 for w in workers.values())   # what SyNCoPy reads
        with pmap as pm:
            addresses = pm.compute()
        assert set(addresses) <= set(workers)
        assert client.status == "running"       # the user's client is left alone
    finally:
        cluster_cleanup(client)


def test_reading_daemon_client_starts_the_backends_cluster_which_compute_uses(
        no_dask_client_left):
    pmap = ParallelMap(worker_address, [1, 2], backend="dask", n_workers=1, **QUIET)
    client = pmap.daemon.client
    assert client is not None and client.status == "running"
    workers = set(client.scheduler_info()["workers"])
    assert pmap.daemon.client is client                  # started once
    assert set(pmap.compute()) <= workers                # the run used that cluster
    assert client.status != "running"                    # and stopped it (stop_client="auto")


# ---------------------------------------------------------------------- logs and messages
def test_logfile_is_the_path_after_compute(tmp_path):
    pmap = ParallelMap(f, [1, 2], 4, output_dir=str(tmp_path / "run"))
    before = pmap.logfile
    pmap.compute()
    assert pmap.logfile == before and pmap.logfile is not None
    with open(pmap.logfile) as log:
        assert "SUCCESS" in log.read()


class SmallLimit(ParallelMap):
    """ACME's tests lower the large-argument threshold the same way."""

    _maxArgSize = 1


def test_warnings_given_during_construction_reach_the_log_file(tmp_path):
    log = tmp_path / "custom.log"
    big = np.ones((600, 500))     # 2.3 MB, 2-D: broadcast
    pmap = SmallLimit(whole, [0, 1], table=big, write_worker_results=False, single_file=True,
                      logfile=str(log), backend="threads", verbose=False)
    pmap.compute()
    text = log.read_text()
    assert "exceeds recommended limit of 1 MB" in text
    assert "single_file is ignored" in text
    pickled = tmp_path / "pickle.log"
    ParallelMap(f, [1, 2], 4, write_worker_results=False, write_pickle=True,
                logfile=str(pickled), backend="threads", verbose=False).compute()
    assert "write_pickle is ignored" in pickled.read_text()


def test_no_construction_buffer_stays_on_the_loggers():
    for _ in range(3):
        ParallelMap(f, [1, 2], 4, backend="threads", **QUIET)
    with pytest.raises(ValueError):
        ParallelMap(f, [1, 2], [1, 2, 3], **QUIET)     # a failed construction, traceback kept
    for name in ("acme_core", "acme_dask", "acme_joblib"):
        handlers = logging.getLogger(name).handlers
        assert not any(isinstance(h, EarlyRecords) for h in handlers), (name, handlers)


def test_setup_interactive_false_on_dask_is_silent_but_an_ignored_request_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="acme_core"):
        ParallelMap(f, [1, 2], 4, backend="dask", setup_interactive=False, **QUIET)
    assert "has no effect" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="acme_core"):
        ParallelMap(f, [1, 2], 4, backend="dask", partition="8GBXS", **QUIET)
    assert "`partition='8GBXS'` has no effect on backend 'dask'" in caplog.text


def test_the_distribution_error_starts_with_acmes_sentence_and_adds_details_after():
    with pytest.raises(ValueError) as info:
        ParallelMap(f, [2, 4, 6, 8], [2, 2], **QUIET)
    message = str(info.value)
    assert message.startswith(
        "<ParallelMap> automatic input distribution failed: found 2 objects containing 2 to 4 "
        "elements. Please specify `n_inputs` manually. ")
    assert "positional argument 1 ('y') has 2" in message.split("manually. ", 1)[1]


def test_a_cluster_from_daemon_client_whose_workers_were_retired_fails_compute_clearly(
        no_dask_client_left):
    # ACME's test_init: kill the single worker of pmap.daemon.config.client, then compute()
    pmap = ParallelMap(f, [1, 2], 4, backend="dask", n_workers=1, **QUIET)
    client = pmap.daemon.config.client
    client.retire_workers(list(client.scheduler_info()["workers"]), close_workers=True)
    with pytest.raises(RuntimeError, match="no active workers found"):
        pmap.compute()
    assert client.status != "running"        # the cluster it started is stopped


# ---------------------------------------------------------------------- outFile
def test_out_file_lists_where_each_calls_result_file_goes_and_is_not_an_argument(tmp_path):
    out = str(tmp_path / "run")
    pmap = ParallelMap(f, [1, 2, 3], 4, output_dir=out, backend="threads", verbose=False)
    assert pmap.kwargv["outFile"] == [f"{out}/f_payload/f_{i}.h5" for i in range(3)]
    assert pmap.config.kwargv["outFile"] is pmap.kwargv["outFile"]
    assert pmap.compute() == pmap.kwargv["outFile"]        # f never received outFile
    pickled = ParallelMap(f, [1, 2], 4, output_dir=str(tmp_path / "p"), write_pickle=True,
                          backend="threads", verbose=False)
    assert pickled.kwargv["outFile"] == [f"{tmp_path}/p/f_{i}.pickle" for i in range(2)]
    single = ParallelMap(f, [1, 2], 4, output_dir=str(tmp_path / "s"), single_file=True,
                         backend="threads", verbose=False)
    assert single.kwargv["outFile"] == [single.results_container]
    assert "outFile" not in ParallelMap(f, [1, 2], 4, **QUIET).kwargv


@pytest.mark.parametrize("backend", ["threads", "joblib"])
def test_a_rewritten_out_file_receives_that_calls_result(tmp_path, backend):
    import h5py

    elsewhere = str(tmp_path / "mine.h5")
    pmap = ParallelMap(f, [1, 2, 3], 4, output_dir=str(tmp_path / "run"), backend=backend,
                       verbose=False)
    pmap.kwargv["outFile"][1] = elsewhere
    paths = pmap.compute()
    assert paths[1] == elsewhere and paths[0] == pmap.kwargv["outFile"][0]
    with h5py.File(elsewhere) as h5:
        assert h5["result_0"][()] == [18]


def test_a_large_runs_out_file_holds_no_string_per_call_and_can_be_rewritten(tmp_path,
                                                                             monkeypatch):
    """Beyond LIST_LIMIT calls kwargv["outFile"] builds each path when read (10^6 calls
    held 10^6 strings, about 100 bytes each, in the user's process) and still takes a
    rewritten entry, as the list does."""
    import h5py

    from acme_core import result_paths

    monkeypatch.setattr(result_paths, "LIST_LIMIT", 5)
    out = str(tmp_path / "run")
    pmap = ParallelMap(f, list(range(12)), 4, output_dir=out, backend="joblib", verbose=False)
    files = pmap.kwargv["outFile"]
    assert not isinstance(files, list) and len(files) == 12
    assert files == [f"{out}/f_payload/f_{i}.h5" for i in range(12)]
    with pytest.raises(TypeError, match="one path at a time"):
        files[2:4] = ["a.h5", "b.h5"]
    elsewhere = str(tmp_path / "mine.h5")
    files[3] = elsewhere
    paths = pmap.compute()
    assert paths[3] == elsewhere and paths[4] == files[4] == f"{out}/f_payload/f_4.h5"
    with h5py.File(elsewhere) as h5:
        assert h5["result_0"][()] == [(3 + 4) * 3]
    assert not os.path.exists(f"{out}/f_payload/f_3.h5")
    again = ParallelMap(f, list(range(12)), 4, output_dir=str(tmp_path / "two"),
                        backend="threads", verbose=False)
    again.kwargv["outFile"] = list(again.kwargv["outFile"])   # a whole list, as for ACME
    again.kwargv["outFile"][0] = str(tmp_path / "zero.h5")
    assert again.compute()[0] == str(tmp_path / "zero.h5")


def test_an_out_file_that_cannot_be_written_fails_that_call_alone(tmp_path):
    # ACME's test_pickling: pmap.kwargv["outFile"][0] = "/path/to/nowhere"
    pmap = ParallelMap(f, [1, 2, 3], 4, output_dir=str(tmp_path / "run"), backend="joblib",
                       verbose=False)
    pmap.kwargv["outFile"][0] = str(tmp_path / "no" / "such" / "folder" / "f_0.h5")
    with pytest.raises(RuntimeError, match="Parallel computation failed: 1/3 tasks failed") \
            as info:
        pmap.compute()
    assert info.value.failures.indices == [0]
    assert info.value.failures[0].exc_type == "FileNotFoundError"
    assert not (tmp_path / "run" / "f_payload" / "f_0.h5").exists()   # no stray file
    assert (tmp_path / "run" / "f_payload" / "f_2.h5").is_file()


def test_a_malformed_out_file_is_an_error_naming_it_before_any_work(tmp_path):
    pmap = ParallelMap(f, [1, 2], 4, output_dir=str(tmp_path / "run"), backend="threads",
                       verbose=False)
    pmap.kwargv["outFile"] = [pmap.kwargv["outFile"]]      # SyNCoPy's broadcast wrapping
    with pytest.raises(ValueError, match=r"pmap.kwargv\['outFile'\] has to stay a list of 2"):
        pmap.compute()
    assert not (tmp_path / "run").exists()
    single = ParallelMap(f, [1, 2], 4, output_dir=str(tmp_path / "s"), single_file=True,
                         backend="threads", verbose=False)
    single.kwargv["outFile"][0] = str(tmp_path / "other.h5")
    with pytest.raises(ValueError, match="single_file=True run is the results container"):
        single.compute()


def test_a_functions_own_out_file_keyword_is_its_argument(tmp_path):
    def save(x, outFile="default"):
        return f"{x}:{outFile}"

    pmap = ParallelMap(save, [1, 2], outFile="mine", write_worker_results=False,
                       backend="threads", verbose=False)
    assert pmap.kwargv["outFile"] == ["mine"] and pmap.compute() == ["1:mine", "2:mine"]


# ---------------------------------------------------------------------- the "ACME" logger
def acme_log_files():
    from logging import handlers

    return [h.target.baseFilename for h in logging.getLogger("ACME").handlers
            if isinstance(h, handlers.MemoryHandler)]


def test_the_acme_logger_reaches_the_latest_runs_log_file(tmp_path):
    # ACME's users (and ACME's tests) find the log file through logging.getLogger("ACME")
    first = ParallelMap(f, [1, 2], 4, output_dir=str(tmp_path / "a"), backend="threads",
                        verbose=False)
    first.compute()
    assert acme_log_files() == [first.logfile]
    custom = str(tmp_path / "custom.log")
    second = ParallelMap(f, [1, 2], 4, logfile=custom, backend="threads", **QUIET)
    assert acme_log_files() == [custom]
    second.compute()
    with open(custom) as fh:
        assert "Finished parallel computation" in fh.read()


def test_flushing_the_acme_handler_before_compute_writes_the_constructions_warnings(
        tmp_path):
    from logging import handlers

    out = tmp_path / "run"
    pmap = SmallLimit(whole, [0, 1], table=np.ones((600, 500)), output_dir=str(out),
                      logfile=True, backend="threads", verbose=False)
    [handle] = [h for h in logging.getLogger("ACME").handlers
                if isinstance(h, handlers.MemoryHandler)]
    handle.flush()                        # ACME's tests do this to read the warnings
    with open(handle.target.baseFilename) as fh:
        assert "exceeds recommended limit of 1 MB" in fh.read()
    assert len(pmap.compute()) == 2       # the folder holding only that log is still usable
    with open(pmap.logfile) as fh:
        text = fh.read()
    assert text.count("exceeds recommended limit of 1 MB") == 1 and "SUCCESS" in text


# ---------------------------------------------------------------------- h5py arguments
@pytest.mark.parametrize("backend", ["joblib", "dask"])
def test_an_h5py_dataset_of_a_read_only_file_reaches_worker_processes(
        tmp_path, backend, no_dask_client_left):
    # ACME's test_simple_filter passes h5py.File(name, "r")["data"]; dask sends it by name
    import h5py

    from tests.helpers.funcs import column_sum

    data = np.arange(12.0).reshape(4, 3)
    with h5py.File(tmp_path / "data.h5", "w") as h5:
        h5.create_dataset("data", data=data)
    with h5py.File(tmp_path / "data.h5", "r") as h5:
        pmap = ParallelMap(column_sum, h5["data"], [0, 1, 2], backend=backend, n_workers=2,
                           **QUIET)
        assert pmap.compute() == data.sum(axis=0).tolist()


def test_an_h5py_dataset_of_a_file_open_for_writing_is_refused_naming_it(tmp_path):
    import h5py

    from tests.helpers.funcs import column_sum

    with h5py.File(tmp_path / "data.h5", "w") as h5:
        h5.create_dataset("data", data=np.ones((2, 2)))
        with pytest.raises(TypeError, match="h5py Dataset '/data' of .*open for writing") \
                as info:
            ParallelMap(column_sum, h5["data"], [0, 1], backend="joblib", **QUIET)
    assert "positional argument 0 ('data')" in str(info.value)
