"""ACME's semi-public ParallelMap attributes: ``argv``, ``kwargv``, ``daemon``, ``config``.

Real ACME clients read and rewrite them between the constructor and ``compute()``
(SyNCoPy turns split keywords into broadcast ones with ``pmap.kwargv[key] = [value]``,
then reads ``pmap.daemon.client``), so they keep ACME's meaning:

- ``argv`` is a list with one entry per positional argument, ``kwargv`` a dict with one
  entry per keyword argument. An entry with ``n_inputs`` elements is split over the calls
  (call ``i`` gets element ``i``); a 1-element list is given whole to every call.
- Both stay mutable until ``compute()``, which rebuilds the call plan from them when an
  entry was replaced or resized (validated again then, before any work).
- ``kwargv["outFile"]`` (results in files: storages ``"hdf5"``, ``"pickle"``,
  ``"hdf5-single"``) lists where each call's result file goes, as ACME's does; a
  rewritten entry sends that call's file there instead (a path that cannot be written
  fails that call alone). It is never passed to the function.
- ``daemon.client`` is the dask client a dask-based backend runs on; ``config`` (and
  ``daemon.config``) is a read-only view of the run's settings.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .arguments import CallPlan, measure_arguments, rebuild_call_plan
from .output_dir import safe_name
from .parameters import backend_values
from .result_paths import OutFiles, out_file_paths

if TYPE_CHECKING:  # pragma: no cover
    from .executor import Executor
    from .parameters import Settings
    from .payloads import Payloads
    from .records import RunContext


def acme_lists(plan: CallPlan) -> tuple[list[Any], dict[str, list[Any]]]:
    """ACME's ``argv`` and ``kwargv`` of ``plan``: split arguments as given, broadcast
    ones wrapped in a 1-element list.

    Examples
    --------
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.acme_attributes import acme_lists
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> acme_lists(build_call_plan(f, ([2, 4, 6], 4), {"z": 2}, "auto", 1024))
    ([[2, 4, 6], [4]], {'z': [2]})
    """
    argv: list[Any] = []
    kwargv: dict[str, list[Any]] = {}
    for arg in plan.arguments:
        entry = arg.value if arg.split else [arg.value]
        # ACME: parameters with a default, given by name, are keywords; required ones given
        # by name count as positional
        if arg.kind == "kw" or (arg.by_name and arg.default is not inspect.Parameter.empty):
            kwargv[arg.name] = entry
        else:
            argv.append(entry)
    return argv, kwargv


def _fingerprint(entry: Any) -> tuple[int, int, int]:
    """What replacing or resizing an entry changes: its identity, length and first item."""
    try:
        length = len(entry)
    except TypeError:
        return id(entry), -1, 0
    # a 1-element list's item: `pmap.kwargv[k][0] = v` replaces a broadcast value in place
    first = id(entry[0]) if length == 1 and isinstance(entry, (list, tuple)) else 0
    return id(entry), length, first


#: ACME's keyword in ``kwargv`` for the calls' result files (never the function's).
OUT_FILE = "outFile"


def acme_out_files(storage: str, output_dir: str | None, func_name: str,
                   n_calls: int) -> list[str] | OutFiles | None:
    """ACME's ``kwargv["outFile"]`` of a run: each call's result file (``"hdf5"``,
    ``"pickle"``; beyond :data:`~acme_core.result_paths.LIST_LIMIT` calls an
    :class:`~acme_core.result_paths.OutFiles`, which holds no string per call), the one
    container (``"hdf5-single"``), or None (results elsewhere).

    Examples
    --------
    >>> from acme_core.acme_attributes import acme_out_files
    >>> acme_out_files("hdf5", "/data/run", "f", 2)
    ['/data/run/f_payload/f_0.h5', '/data/run/f_payload/f_1.h5']
    >>> acme_out_files("pickle", "/data/run", "f", 1), acme_out_files("memory", None, "f", 1)
    (['/data/run/f_0.pickle'], None)
    """
    if output_dir is None:
        return None
    if storage == "hdf5":
        return out_file_paths(os.path.join(output_dir, f"{func_name}_payload"), func_name,
                              n_calls, ".h5")
    if storage == "pickle":
        return out_file_paths(output_dir, func_name, n_calls, ".pickle")
    if storage == "hdf5-single":
        return [os.path.join(output_dir, f"{func_name}.h5")]
    return None


@dataclass
class RedirectedWriter:
    """A storage's writer that moves the files of some calls where ``pmap.kwargv["outFile"]``
    was rewritten to (ACME writes each call's result to its ``outFile``).

    Examples
    --------
    >>> from acme_core.storage.pickle_files import PickleWriter
    >>> from acme_core.acme_attributes import RedirectedWriter
    >>> writer = RedirectedWriter(PickleWriter(str(tmp_path), "f"), {1: str(tmp_path / "x.p")})
    >>> [p.rsplit("/", 1)[1] for p in (writer.write(0, 5), writer.write(1, 6))]
    ['f_0.pickle', 'x.p']
    """

    inner: Any
    targets: dict[int, str]

    def write(self, index: int, value: Any) -> Any:
        """Write call ``index`` as the storage does, then move it to its ``outFile``."""
        written = self.inner.write(index, value)
        target = self.targets.get(index)
        if target is None or not isinstance(written, str):
            return written
        try:
            return shutil.move(written, target)
        except OSError:
            os.unlink(written)  # the call failed: no result file is left where it was
            raise


class ArgumentLists:
    """``argv``/``kwargv`` of one ParallelMap and whether they changed since the plan.

    Examples
    --------
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.acme_attributes import ArgumentLists
    >>> plan = build_call_plan(pow, ([1, 2, 3], [2, 2, 2]), {}, "auto", 1024)
    >>> lists = ArgumentLists(plan)
    >>> lists.argv[1] = [2]                  # broadcast the exponent instead
    >>> lists.changed()
    True
    >>> new = lists.rebuild(plan)
    >>> [a.split for a in new.arguments], lists.changed()
    ([True, False], False)
    """

    def __init__(self, plan: CallPlan, out_files: list[str] | OutFiles | None = None,
                 movable: bool = True) -> None:
        self.argv, self.kwargv = acme_lists(plan)
        if OUT_FILE in self.kwargv:
            out_files = None   # the function's own keyword of that name wins
        self._out_files = out_files
        self._movable = movable  # False: outFile is the one container (single_file)
        if out_files is not None:  # the user's copy, to rewrite
            self.kwargv[OUT_FILE] = (out_files.copy() if isinstance(out_files, OutFiles)
                                     else list(out_files))
        self._seen = self._state()

    def _state(self) -> tuple[Any, ...]:
        return (tuple(map(_fingerprint, self.argv)),
                tuple((k, _fingerprint(v)) for k, v in self._function_kwargv().items()))

    def _function_kwargv(self) -> dict[str, Any]:
        """``kwargv`` without ACME's own ``outFile`` (unless the function takes one)."""
        if self._out_files is None:
            return self.kwargv
        return {k: v for k, v in self.kwargv.items() if k != OUT_FILE}

    def redirected(self) -> dict[int, str]:
        """Calls whose ``kwargv["outFile"]`` entry was rewritten: index -> new path.

        Examples
        --------
        >>> from acme_core.arguments import build_call_plan
        >>> from acme_core.acme_attributes import ArgumentLists
        >>> plan = build_call_plan(abs, ([-1, -2],), {}, "auto", 1024)
        >>> lists = ArgumentLists(plan, ["/o/abs_0.pickle", "/o/abs_1.pickle"])
        >>> lists.kwargv["outFile"][1] = "/elsewhere/b.pickle"
        >>> lists.redirected(), lists.changed()
        ({1: '/elsewhere/b.pickle'}, False)
        """
        if self._out_files is None:
            return {}
        current = self.kwargv.get(OUT_FILE)
        if isinstance(current, OutFiles) and current.same_pattern(self._out_files):
            moved = current.rewritten()  # only the rewritten entries, no walk over every call
        else:
            moved = self._moved(current)
        if moved and not self._movable:
            raise ValueError(
                "<ParallelMap> pmap.kwargv['outFile'] of a single_file=True run is the results "
                "container, which cannot be moved; pass output_dir to ParallelMap(...) instead.")
        return moved

    def _moved(self, current: Any) -> dict[int, str]:
        """The entries of the list ``current`` that differ from the result files."""
        assert self._out_files is not None
        if (not isinstance(current, (list, tuple, OutFiles))
                or len(current) != len(self._out_files)
                or not all(isinstance(p, (str, os.PathLike)) for p in current)):
            raise ValueError(
                f"<ParallelMap> pmap.kwargv['outFile'] has to stay a list of "
                f"{len(self._out_files)} file path(s) (where each call's result goes), not "
                f"{current!r}.")
        return {i: os.fspath(p) for i, (p, old) in enumerate(zip(current, self._out_files, strict=True))
                if os.fspath(p) != old}

    def writer(self, inner: Any) -> Any:
        """``inner`` (the storage's writer), moving the files of rewritten ``outFile`` s."""
        targets = self.redirected()
        return RedirectedWriter(inner, targets) if targets else inner

    def changed(self) -> bool:
        """True when an entry was added, removed, replaced or resized since the plan."""
        return self._state() != self._seen

    def rebuild(self, plan: CallPlan) -> CallPlan:
        """The call plan of the current lists (ACME's rules), validated as at construction."""
        argv = [_entry(f"pmap.argv[{i}]", v, plan.n_inputs) for i, v in enumerate(self.argv)]
        kwargv = {k: _entry(f"pmap.kwargv[{k!r}]", v, plan.n_inputs)
                  for k, v in self._function_kwargv().items()}
        new = rebuild_call_plan(plan.func, argv, kwargv, plan.n_inputs)
        self._seen = self._state()
        return new


def _entry(label: str, entry: Any, n: int) -> tuple[Any, bool]:
    """(value, split) of one argv/kwargv entry, or an error naming it and the fix."""
    if isinstance(entry, np.ndarray):
        squeezed = entry.squeeze()
        length = squeezed.size if squeezed.ndim <= 1 else -1
    elif isinstance(entry, (list, tuple, range)):
        length = len(entry)
    else:
        length = -1
    if length == 1:
        return entry[0], False
    if length == n:
        return (list(entry) if isinstance(entry, range) else entry), True
    got = f"{length} elements" if length >= 0 else f"a {type(entry).__name__}"
    raise ValueError(
        f"<ParallelMap> {label} holds {got}, but the run has n_inputs={n} calls: give a list "
        f"of {n} values (one per call) or a 1-element list [value] (the same value for every "
        f"call).")


@runtime_checkable
class _Run(Protocol):
    """What a daemon needs of its ParallelMap."""

    config: Any

    def compute(self, debug: bool = False) -> Any: ...  # pragma: no cover

    def cleanup(self) -> None: ...  # pragma: no cover


class Daemon:
    """ACME's ``pmap.daemon``: the run's backend client and configuration.

    ``client`` is the dask client of a dask-based backend: the running client when there
    is one, else the backend's own cluster, started the first time ``client`` is read and
    then used (and stopped, as ``stop_client`` says) by ``compute()``. Other backends have
    no client (None).

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> pmap = ParallelMap(abs, [-1, -2], write_worker_results=False, verbose=False,
    ...                    backend="threads")
    >>> pmap.daemon.client is None, pmap.daemon.config.n_inputs
    (True, 2)
    >>> pmap.daemon.compute()
    [1, 2]
    """

    def __init__(self, pmap: Any, client: Callable[[], Any] | None = None) -> None:
        if not isinstance(pmap, _Run):
            raise TypeError(f"<ACMEdaemon> `pmap` has to be a `ParallelMap` instance, not "
                            f"{type(pmap)}")
        self._pmap = pmap
        self._client = client

    @property
    def client(self) -> Any:
        """The backend's dask client (None for backends without one)."""
        return self._client() if self._client is not None else None

    @property
    def config(self) -> Any:
        """Alias of ``pmap.config``."""
        return self._pmap.config

    @property
    def results_container(self) -> str | None:
        """Alias of ``pmap.results_container``."""
        return self._pmap.results_container

    def compute(self, debug: bool = False) -> Any:
        """Alias of ``pmap.compute()``."""
        return self._pmap.compute(debug=debug)

    def cleanup(self) -> None:
        """Alias of ``pmap.cleanup()``."""
        self._pmap.cleanup()


class ConfigView(Mapping[str, Any]):
    """A read-only view of a ParallelMap's settings, by attribute or by key (ACME's
    ``pmap.config``). Settings are given to ``ParallelMap(...)``; this view never
    changes a run.

    Examples
    --------
    >>> from acme_core.acme_attributes import ConfigView
    >>> config = ConfigView({"n_inputs": 4, "output_dir": None})
    >>> config.n_inputs, config["output_dir"], sorted(config)
    (4, None, ['n_inputs', 'output_dir'])
    >>> config.n_inputs = 5
    Traceback (most recent call last):
    ...
    AttributeError: pmap.config is read-only: pass n_inputs to ParallelMap(...) instead.
    """

    def __init__(self, values: Mapping[str, Callable[[], Any] | Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        return value() if callable(value) and getattr(value, "_lazy", False) else value

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"pmap.config has no {name!r}; it holds {', '.join(self._values)}.") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"pmap.config is read-only: pass {name} to ParallelMap(...) "
                             f"instead.")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ConfigView({', '.join(f'{k}={self[k]!r}' for k in self)})"


def lazy(func: Callable[[], Any]) -> Callable[[], Any]:
    """Mark ``func`` as computed when its :class:`ConfigView` entry is read.

    Examples
    --------
    >>> from acme_core.acme_attributes import ConfigView, lazy
    >>> ConfigView({"answer": lazy(lambda: 42)}).answer
    42
    """
    func._lazy = True  # type: ignore[attr-defined]
    return func


class AcmeAttributes:
    """ACME's semi-public attributes of :class:`~acme_core.ParallelMap` (a mixin).

    ``argv``/``kwargv`` are rewritable until ``compute()``; ``daemon`` and ``config``
    describe the run. The class using it sets ``_acme``, ``_daemon``, ``_settings``,
    ``_plan`` and ``_executor`` and implements ``_run_context()``.

    Examples
    --------
    >>> from acme_core import ParallelMap
    >>> def f(x, y, z=3):
    ...     return (x + y) * z
    >>> pmap = ParallelMap(f, [2, 4, 6, 8], 4, z=[1, 2, 3, 4], write_worker_results=False,
    ...                    verbose=False)
    >>> pmap.argv, pmap.kwargv
    ([[2, 4, 6, 8], [4]], {'z': [1, 2, 3, 4]})
    >>> pmap.config.n_inputs, pmap.config.write_worker_results
    (4, False)
    >>> pmap.kwargv["z"] = [2]              # the same z for every call instead
    >>> pmap.compute()
    [12, 16, 20, 24]
    """

    _acme_lists: ArgumentLists | None
    _payloads: Payloads
    _daemon: Daemon | None
    _settings: Settings
    _plan: CallPlan
    _executor: Executor
    backend: str
    storage: str
    output_dir: str | None
    results_container: str | None
    logfile: str | None

    def _run_context(self) -> RunContext:  # pragma: no cover - implemented by ParallelMap
        raise NotImplementedError

    def _make_payloads(self) -> Payloads:  # pragma: no cover - implemented by ParallelMap
        raise NotImplementedError

    @property
    def _acme(self) -> ArgumentLists:
        """The ACME lists of the constructor's plan (made once the storage is chosen: its
        result files are ``kwargv["outFile"]``)."""
        if self._acme_lists is None:
            self._acme_lists = ArgumentLists(self._plan, acme_out_files(
                self.storage, self.output_dir, safe_name(self._plan.func_name),
                self._plan.n_inputs), movable=self.storage != "hdf5-single")
        return self._acme_lists

    def _take_rewrites(self) -> None:
        """Before a run: rebuild the call plan (and program) from ``argv``/``kwargv`` when
        they were rewritten, and the program when an ``outFile`` was (checked first)."""
        if self._acme.changed():
            self._plan = self._acme.rebuild(self._plan)
            self._payloads = self._make_payloads()
        elif self._acme.redirected():
            # the program is made now: its pickling and seeding read the values of now,
            # which the user may have changed in place since the constructor measured them
            measure_arguments(self._plan)
            self._payloads = self._make_payloads()

    @property
    def argv(self) -> list[Any]:
        """ACME's per-positional-argument lists: an entry of ``n_inputs`` elements is split
        over the calls, a 1-element list goes whole to every call. Rewritable until
        ``compute()``."""
        return self._acme.argv

    @property
    def kwargv(self) -> dict[str, list[Any]]:
        """ACME's per-keyword lists (as :attr:`argv`): ``pmap.kwargv[k] = [value]`` gives
        ``value`` whole to every call. Rewritable until ``compute()``."""
        return self._acme.kwargv

    @property
    def daemon(self) -> Daemon:
        """ACME's ``daemon``: ``daemon.client`` (the dask client of a dask-based backend),
        ``daemon.config``, ``daemon.compute()``."""
        if self._daemon is None:
            self._daemon = Daemon(self, lambda: self._executor.client(self._run_context()))
        return self._daemon

    @property
    def config(self) -> ConfigView:
        """A read-only view of the run's settings (ACME's ``pmap.config``)."""
        s = self._settings
        return ConfigView({
            "func": self._plan.func, "argv": self.argv, "kwargv": self.kwargv,
            "n_inputs": self._plan.n_inputs, "n_calls": self._plan.n_inputs,
            "output_dir": self.output_dir, "results_container": self.results_container,
            "write_worker_results": s.write_worker_results,
            "collect_results": not s.write_worker_results, "result_shape": s.result_shape,
            "result_dtype": s.result_dtype, "single_file": s.single_file,
            "write_pickle": s.write_pickle, "backend": self.backend, "storage": self.storage,
            **backend_values(s), "verbose": s.verbose, "dryrun": s.dryrun,
            "logfile": self.logfile, "retries": s.retries,
            "client": lazy(lambda: self.daemon.client)})
