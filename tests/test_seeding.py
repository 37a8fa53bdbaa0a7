"""Per-call random streams: the same draws whatever the backend, batch size or resume."""

from __future__ import annotations

import collections
import operator
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import typing

import numpy as np
import pytest

import acme_core
from acme_core import ParallelMap, run
from acme_core.replays import recorded_entropy
from acme_core.seeding import CallStreams, call_seed_sequence, replaying
from tests.helpers.repro_funcs import draws, draws_slowly

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 200
ENTROPY = 2026_12_01_123456789


def expected(entropy: int, n: int = N) -> np.ndarray:
    """Each call's draws made here, one call at a time, from the documented contract."""
    rows = []
    streams = CallStreams(entropy)
    for i in range(n):
        with replaying(streams, i):
            row = draws(i)
        own = np.random.default_rng(call_seed_sequence(entropy, i))
        assert np.array_equal(row[6:8], own.random(2))   # rng() is SeedSequence(E, (i,))
        rows.append(row)
    return np.array(rows)


@pytest.fixture
def batches_of(monkeypatch):
    """Force every batch to hold ``size`` calls (the run loop's sizer otherwise adapts)."""
    def force(size: int) -> None:
        monkeypatch.setattr(run.BatchSizer, "size", lambda self, remaining: min(size, remaining))
    return force


@pytest.mark.parametrize(("n_workers", "batch"), [(1, 1), (1, 100), (4, 1), (4, 100)])
def test_joblib_draws_depend_on_entropy_and_index_only(n_workers, batch, batches_of):
    batches_of(batch)
    got = ParallelMap(draws, list(range(N)), seed=ENTROPY, n_workers=n_workers,
                      backend="joblib", write_worker_results=False, verbose=False).compute()
    assert np.array_equal(np.array(got), expected(ENTROPY))


def test_every_call_has_its_own_stream():
    got = np.array(ParallelMap(draws, list(range(N)), seed=ENTROPY, backend="joblib",
                               write_worker_results=False, verbose=False).compute())
    for column in range(1, got.shape[1]):
        assert len(set(got[:, column])) == N, column  # no two calls share a stream


def test_dask_draws_the_same(batches_of, no_dask_client_left):
    pytest.importorskip("acme_dask")
    batches_of(100)
    got = ParallelMap(draws, list(range(N)), seed=ENTROPY, n_workers=2, backend="dask",
                      write_worker_results=False, verbose=False).compute()
    assert np.array_equal(np.array(got), expected(ENTROPY))


@pytest.mark.slow
def test_slurm_draws_the_same(slurm, tmp_path, batches_of, no_dask_client_left):
    batches_of(10)
    got = ParallelMap(draws, list(range(40)), seed=ENTROPY, n_workers=2, backend="slurm",
                      write_worker_results=False, setup_interactive=False, verbose=False,
                      backend_options={"job_name": f"acmetest_repro_{os.getpid()}",
                                       "log_directory": str(tmp_path)}).compute()
    assert np.array_equal(np.array(got), expected(ENTROPY, 40))


@pytest.mark.slow
def test_slurm_array_draws_the_same(slurm, tmp_path, batches_of):
    pytest.importorskip("acme_slurm")
    batches_of(10)
    got = ParallelMap(draws, list(range(40)), seed=ENTROPY, n_workers=2, backend="slurm-array",
                      write_worker_results=False, verbose=False,
                      backend_options={"job_name": f"acmetest_repro_arr_{os.getpid()}",
                                       "poll_interval": 1.0}).compute()
    assert np.array_equal(np.array(got), expected(ENTROPY, 40))


def test_default_entropy_is_fresh_recorded_and_kept_on_resume_after_sigkill(tmp_path):
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from acme_core import ParallelMap
        from tests.helpers.repro_funcs import draws_slowly
        ParallelMap(draws_slowly, list(range({N})), {str(marks)!r}, output_dir={str(out)!r},
                    n_workers=2, write_pickle=True, verbose=False).compute()
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(marks.iterdir())) < 30:   # well into the run
        assert parent.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(parent.pid, signal.SIGKILL)    # the parent and its workers, as a crash would
    parent.wait(timeout=30)
    entropy = recorded_entropy(str(out))
    assert isinstance(entropy, int) and entropy > 2**64   # fresh, 128 bits, recorded
    done_before = len([n for n in os.listdir(out) if n.endswith(".pickle")])
    assert 0 < done_before < N
    pmap = ParallelMap(draws_slowly, list(range(N)), str(marks), output_dir=str(out),
                       n_workers=2, write_pickle=True, verbose=False)
    pmap.compute()
    got = acme_core.load(str(out))
    assert np.array_equal(np.array(got), expected(entropy))


def test_a_conflicting_seed_on_resume_is_refused(tmp_path):
    out = str(tmp_path / "run")
    ParallelMap(draws, [0, 1], seed=1, output_dir=out, verbose=False).compute()
    with pytest.raises(ValueError, match=r"`seed=2`, but the run in .* ran with seed=1"):
        ParallelMap(draws, [0, 1], seed=2, output_dir=out, verbose=False)


def test_seed_false_leaves_the_generators_alone():
    def state_draw(x):
        import random as r
        return r.random()
    random.seed(7)
    pmap = ParallelMap(state_draw, [0, 1], seed=False, write_worker_results=False,
                       verbose=False)
    got = pmap.compute(debug=True)
    random.seed(7)
    assert got == [random.random(), random.random()]   # the caller's own stream, unseeded
    with pytest.raises(RuntimeError, match=r"no ParallelMap call is running here"):
        ParallelMap(draws, [0], seed=False, write_worker_results=False,
                    verbose=False).compute(debug=True)


def test_debug_run_draws_the_same_and_restores_the_callers_generators():
    np.random.seed(11)
    after = np.random.rand()
    np.random.seed(11)
    got = ParallelMap(draws, list(range(20)), seed=ENTROPY, write_worker_results=False,
                      verbose=False).compute(debug=True)
    assert np.array_equal(np.array(got), expected(ENTROPY, 20))
    assert np.random.rand() == after


def test_rng_outside_a_call_says_what_to_do():
    with pytest.raises(RuntimeError, match=r"acme_core.rng\(\).*pmap.replay\(i\)"):
        acme_core.rng()


def test_a_function_with_its_own_seed_parameter_still_gets_it():
    def simulate(x, seed=0):
        return x + seed
    assert ParallelMap(simulate, [1, 2], seed=10, write_worker_results=False,
                       verbose=False).compute() == [11, 12]


@pytest.mark.parametrize(("bad", "error"), [(-1, ValueError), ("42", TypeError),
                                            (True, TypeError), (1.5, TypeError)])
def test_bad_seeds_are_refused_before_anything_starts(bad, error, tmp_path):
    with pytest.raises(error, match="`seed` has to be None, False or an integer >= 0"):
        ParallelMap(draws, [1], seed=bad, output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- calls that cannot draw
def test_calls_reaching_a_generator_only_through_helpers_are_seeded():
    """The code reading that lets calls skip the seeding follows helpers: a function that
    draws two helpers down gets its per-call streams (the same draws on every run)."""
    from tests.helpers.repro_funcs import draws_two_helpers_down

    def run_once(workers):
        return ParallelMap(draws_two_helpers_down, list(range(40)), seed=ENTROPY,
                           n_workers=workers, backend="joblib", write_worker_results=False,
                           verbose=False).compute()

    first, again = run_once(2), run_once(1)
    assert first == again and len(set(first)) == 40
    with replaying(CallStreams(ENTROPY), 7):
        assert draws_two_helpers_down(7) == first[7]


def test_calls_that_cannot_draw_skip_the_seeding_and_leave_the_generators_alone():
    """A function reading only numbers, numpy and helpers that draw nothing runs its calls
    unseeded (6 us a call saved): on a backend running calls in the caller's process, the
    process's generators keep their state; a function that draws through a helper has
    them seeded."""
    from tests.helpers.repro_funcs import draws_two_helpers_down, scaled_sqrt

    def generators_after(func, values=None):
        np.random.seed(11)
        random.seed(11)
        before = np.random.get_state()[1].copy(), random.getstate()
        got = ParallelMap(func, list(range(5)) if values is None else values, backend="threads",
                          n_workers=1, write_worker_results=False, verbose=False).compute()
        after = np.random.get_state()[1], random.getstate()
        return got, np.array_equal(after[0], before[0]) and after[1] == before[1]

    got, untouched = generators_after(scaled_sqrt)
    assert got == [scaled_sqrt(i) for i in range(5)] and untouched
    _, untouched = generators_after(draws_two_helpers_down)
    assert not untouched
    _, untouched = generators_after(lambda x: x + 1, [0, 1, 2, 3.0, 4])
    assert untouched

    def drawn(process_seed):
        random.seed(process_seed)
        return ParallelMap(lambda x: x + 1, [0, 1, _Noisy()], backend="threads", n_workers=1,
                           seed=5, write_worker_results=False, verbose=False).compute()[2]

    # the same code over a split list holding an object (its __add__ may draw) is seeded:
    # the call draws from its own stream, whatever the process's generator holds
    assert drawn(1) == drawn(2)


def test_a_split_value_replaced_in_place_before_a_redirected_run_is_seeded(tmp_path):
    """An ACME rewrite of kwargv["outFile"] makes the call program when compute() starts:
    it reads the split values of then, so an object put into the list after the
    constructor (its __add__ draws) gets the call's own stream."""
    import pickle

    def drawn(process_seed):
        random.seed(process_seed)
        xs = [0.0, 1.0, 2.0]
        out = tmp_path / f"run{process_seed}"
        pmap = ParallelMap(lambda x: x + 1, xs, backend="threads", n_workers=1, seed=5,
                           output_dir=str(out), storage="pickle", verbose=False)
        xs[2] = _Noisy()
        pmap.kwargv["outFile"][0] = str(tmp_path / f"moved{process_seed}.pickle")
        pmap.compute()
        with open(out / "lambda__2.pickle", "rb") as fh:
            return pickle.load(fh)

    assert drawn(1) == drawn(2)


class _Noisy:
    def __add__(self, other):
        return other + random.random()


def _module_helper(x):
    return x * 2


def _drawing_helper(x):
    return x + random.random()


def _documented(x):
    """Nothing random about it: a docstring's words are not names."""
    return x * 2


SQRT2 = np.sqrt(2.0)  # an np.float64


def _scaled_default(x, bounds=(0.0, 1.0)):
    return min(max(x * SQRT2, bounds[0]), bounds[1])


def _wrapped(func):
    import functools

    @functools.wraps(func)  # copies func's __module__, "numpy"
    def wrapper(x):
        return func(x) * (1 + 1e-3 * np.random.normal())
    return wrapper


class _Params(typing.NamedTuple):
    sigma: float = 0.1

    def noise(self):
        return self.sigma * random.gauss(0, 1)


class _NoisyArray(np.ndarray):
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return getattr(ufunc, method)(*map(np.asarray, inputs), **kwargs) + random.random()


@np.errstate(divide="ignore", invalid="ignore")
def _log_noisy(x):
    return np.log(x) + np.random.normal()


def _perturb(x):
    return x + random.gauss(0, 1)


_perturb = __import__("functools").singledispatch(_perturb)


def _with_impl():
    def helper(x):
        return x
    helper.impl = _drawing_helper
    return helper


class _Trials(list):
    """Trial ids that index as trial objects: iteration gives ints, ``[i]`` an object."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        return item if isinstance(i, slice) else _Params(item)


def _via_frame_builtins(x):
    importer = (i for i in ()).gi_frame.f_builtins["".join(("__imp", "ort__"))]
    return x + importer("".join(("ran", "dom"))).gauss(0, 1)


def _own_module(source):
    """The function ``f`` of ``source``, defined in a module of its own that imports only
    numpy (in this module, `sys` is a global: refused as such)."""
    scope = {"np": np}
    exec(textwrap.dedent(source), scope)
    return scope["f"]


_via_numpy_sys = _own_module("""
    def f(x):  # np.matrixlib.defmatrix holds sys: its _getframe reaches builtins
        frame = np.matrixlib.defmatrix.sys._getframe()
        importer = frame.f_builtins["".join(("__imp", "ort__"))]
        return x + importer("".join(("ran", "dom"))).gauss(0, 1)
""")


def _via_numpy_inspect(x):
    found = np.matrixlib.defmatrix.N.overrides.inspect.getattr_static(np, "".join(("ran", "dom")))
    return x + found.normal()


def _via_numpy_pickle(x):
    return x + np._core._methods.pickle._loads(b"cbuiltins\neval\n(V__import__('random')"
                                               b".random()\ntR.")


def _cases():
    import functools
    import math

    from numpy import mean, sqrt
    from numpy.random import rand

    def closure(value):
        return lambda x: x * value

    def inner_import(x):
        import json
        return json.dumps(x)

    yield "arithmetic", lambda x: x + 1, True
    yield "numpy function", lambda x: np.sqrt(x) * 2, True
    yield "math", lambda x: math.exp(-x) + math.pi, True
    yield "imported ufunc and array function", lambda x: sqrt(x) + mean([x, 1.0]), True
    yield "builtins", lambda x: sum(range(int(x))) + len(str(x)), True
    yield "a helper", lambda x: _module_helper(x) + 1, True
    yield "a closure over a number", closure(3), True
    yield "a docstring naming random", _documented, True
    yield "numpy.random", lambda x: x + np.random.rand(), False
    yield "random", lambda x: x + random.random(), False
    yield "imported from numpy.random", lambda x: x + rand(), False
    yield "a helper that draws", lambda x: _drawing_helper(x), False
    yield "a closure over a drawing function", closure(rand), False
    yield "another module", lambda x: time.time() + x, False
    yield "acme_core.rng()", lambda x: acme_core.rng().normal(), False
    yield "a name built at run time", lambda x: getattr(np, "ran" + "dom").rand(), False
    yield "the name as a string", lambda x: np.__getattribute__("random"), False
    yield "an import inside", inner_import, False
    yield "np.vectorize of a drawing helper", np.vectorize(_drawing_helper), False
    yield "partial of a drawing helper", functools.partial(_drawing_helper), False
    yield "frompyfunc of a drawing helper", (
        lambda u: (lambda x: u(x)))(np.frompyfunc(_drawing_helper, 1, 1)), False
    yield "an object", (lambda o: (lambda x: o))(object()), False
    # found by review: each reached a generator while the reading said it could not
    yield "numpy.matlib.rand", lambda x: x + np.matlib.rand(1)[0, 0], False
    yield "a drawing wrapper made by functools.wraps(np.sqrt)", (
        lambda w: (lambda x: w(x)))(_wrapped(np.sqrt)), False
    yield "a method of a NamedTuple of parameters", (
        lambda p: (lambda x: x + p.noise()))(_Params()), False
    yield "a defaultdict with a drawing factory", (
        lambda d: (lambda x: d[x]))(collections.defaultdict(_drawing_helper)), False
    yield "an ndarray subclass hooking ufuncs", (
        lambda w: (lambda x: w + x))(np.zeros(3).view(_NoisyArray)), False
    yield "a function attribute", (lambda h: (lambda x: h.impl(x)))(_with_impl()), False
    yield "an object unpickled by np.load", lambda x: np.load("f.npy", allow_pickle=True), False
    yield "numpy scalars, a default tuple", _scaled_default, True
    # found by a second review
    yield "a helper decorated with np.errstate", lambda x: _log_noisy(x), False
    yield "a helper made a functools.singledispatch", lambda x: _perturb(x), False
    yield "allow_pickle as a keyword of an alias of np.load", (
        lambda load_npy: (lambda x: load_npy("f.npy", allow_pickle=True)))(np.load), False
    yield "an alias of np.load, allow_pickle given by position", (
        lambda load_npy: (lambda x: load_npy("f.npy", None, True)))(np.load), False
    yield "a dotted name in a string", (
        lambda field: (lambda x: field("random.normal")(np)()))(operator.attrgetter), False
    # found by a third review (names built at run time: the compiler folds "ran" + "dom")
    yield "a frame's builtins", _via_frame_builtins, False
    yield "an alias of operator.attrgetter, a name built at run time", (
        lambda field: (lambda x: field("".join(("ran", "dom")))(np).normal()))(
            operator.attrgetter), False
    yield "an alias of operator.methodcaller", (
        lambda call: (lambda x: call("".join(("__getattri", "bute__")),
                                     "".join(("ran", "dom")))(np).normal()))(
            operator.methodcaller), False
    yield "the sys module a numpy module holds", _via_numpy_sys, False
    yield "the inspect module a numpy module holds", _via_numpy_inspect, False
    yield "the pickle module a numpy module holds", _via_numpy_pickle, False
    yield "numpy.testing's measure, which runs a string of code", (
        lambda measure: (lambda x: measure("x = 1", 1)))(np.testing.measure), False
    yield "np.bmat, which looks a name up in its caller's globals", (
        lambda x: np.bmat("W")[0, 0]), False


@pytest.mark.parametrize(("func", "can_skip"), [c[1:] for c in _cases()],
                         ids=[c[0] for c in _cases()])
def test_which_functions_cannot_draw(func, can_skip):
    from acme_core.drawing import cannot_draw

    assert cannot_draw(func, [], [range(3)]) is can_skip
    assert cannot_draw(func, [object()], [range(3)]) is False  # an argument's methods may draw
    noisy_rows = np.zeros((3, 2)).view(_NoisyArray)
    assert cannot_draw(func, [], [noisy_rows]) is False        # so may a split subclass's
    assert cannot_draw(func, [], [_Trials([0, 1, 2])]) is False  # and a list subclass's items
    with np.printoptions(formatter={"float": lambda v: f"{v + random.random():.3f}"}):
        assert cannot_draw(func, [], [range(3)]) is False      # a print formatter may draw


def test_broadcast_values_are_read_as_names():
    from acme_core.drawing import cannot_draw

    assert cannot_draw(lambda x, w: x * w, [np.arange(3.0)], [range(3)]) is True
    assert cannot_draw(lambda x, g: g(x), [_module_helper], [range(3)]) is True
    assert cannot_draw(lambda x, g: g(x), [_drawing_helper], [range(3)]) is False
