"""SyNCoPy 2023.9, unmodified, on acme-core through the ``acme`` compat package: each of its
parallel computations on a fresh 2-worker ``LocalCluster`` equals ``parallel=False``, runs
through acme-core (one ParallelMap per computation), and acme-core warns about nothing."""

from __future__ import annotations

import logging

import dask.distributed as dd
import numpy as np
import pytest
import syncopy as spy

N_TRIALS = 6
ACME_LOGGERS = ("acme_core", "acme_dask", "acme_joblib", "acme_slurm_esi")


class Records(logging.Handler):
    """Every record of acme-core's package loggers."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def runs(self) -> int:
        return sum("parallel calls of" in r.getMessage() for r in self.records)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING]


@pytest.fixture(scope="module")
def client():
    assert spy.__acme__, "SyNCoPy did not take its ACME path (is `sinfo` on PATH?)"
    cluster = dd.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None)
    client = dd.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def acme_log(client):
    handler = Records()
    for name in ACME_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in ACME_LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    assert handler.warnings() == [], "acme-core warned"


@pytest.fixture(scope="module")
def data():
    return spy.synthdata.phase_diffusion(freq=30, eps=0.1, nTrials=N_TRIALS, nSamples=600,
                                         nChannels=3, samplerate=200, seed=42)


@pytest.fixture(scope="module")
def other():
    return spy.synthdata.white_noise(nTrials=N_TRIALS, nSamples=600, nChannels=2,
                                     samplerate=200, seed=7)


def trials(obj) -> list[np.ndarray]:
    return [np.asarray(t) for t in obj.trials]


def same(seq, par) -> None:
    assert seq.data.shape == par.data.shape
    assert np.allclose(seq.data[()], par.data[()], equal_nan=True)


FOI = list(np.linspace(10, 60, N_TRIALS))      # as many frequencies as trials
CASES = {
    "mtmfft": lambda d, p: spy.freqanalysis(d, method="mtmfft", taper="hann", foi=FOI,
                                            keeptrials=False, parallel=p),
    "mtmfft-multitaper-trials": lambda d, p: spy.freqanalysis(d, method="mtmfft", tapsmofrq=4,
                                                              foi=FOI, parallel=p),
    "wavelet": lambda d, p: spy.freqanalysis(d, method="wavelet", foi=FOI, keeptrials=False,
                                             parallel=p),
    "mtmconvol": lambda d, p: spy.freqanalysis(d, method="mtmconvol", t_ftimwin=0.5, toi=0.5,
                                               foi=FOI, keeptrials=False, parallel=p),
    "coh": lambda d, p: spy.connectivityanalysis(d, method="coh", foi=FOI, parallel=p),
    "corr": lambda d, p: spy.connectivityanalysis(d, method="corr", parallel=p),
    "butterworth": lambda d, p: spy.preprocessing(d, filter_class="but", filter_type="lp",
                                                  freq=40, order=4, parallel=p),
    "resample": lambda d, p: spy.resampledata(d, method="resample", resamplefs=100,
                                              parallel=p),
    "std": lambda d, p: spy.std(d, dim="channel", parallel=p),
}


@pytest.mark.parametrize("name", list(CASES))
def test_parallel_equals_sequential(name, data, acme_log):
    seq = CASES[name](data, False)
    assert acme_log.runs() == 0
    par = CASES[name](data, True)      # SyNCoPy hands the trials to acme.ParallelMap
    assert acme_log.runs() >= 1, "the computation did not go through acme-core"
    same(seq, par)


def test_concat_equals_numpy(data, other, acme_log):
    # the workers read `other`'s trials from its HDF5 file: SyNCoPy keeps a new object's
    # file open for writing, and HDF5's file lock then refuses every other reader
    other.mode = "r"
    joined = spy.concat(data, other, dim="channel")   # parallel: a client is running
    assert acme_log.runs() >= 1
    expected = [np.concatenate([a, b], axis=1) for a, b in zip(trials(data), trials(other), strict=True)]
    assert all(np.allclose(t, e) for t, e in zip(trials(joined), expected, strict=True))


@pytest.mark.parametrize("op", ["+", "*", "-"])
def test_arithmetic_equals_numpy(op, data, acme_log):
    noise = spy.synthdata.white_noise(nTrials=N_TRIALS, nSamples=600, nChannels=3,
                                      samplerate=200, seed=3)
    result = {"+": lambda: data + 2.5, "*": lambda: data * 3, "-": lambda: data - noise}[op]()
    assert acme_log.runs() >= 1
    expected = {"+": [t + 2.5 for t in trials(data)], "*": [t * 3 for t in trials(data)],
                "-": [a - b for a, b in zip(trials(data), trials(noise), strict=True)]}[op]
    assert all(np.allclose(t, e) for t, e in zip(trials(result), expected, strict=True))
