"""ACME's semi-public ParallelMap attributes: ``argv``, ``kwargv``, ``daemon``, ``config``.

Real ACME clients read and rewrite them between the constructor and ``compute()``
(SyNCoPy turns split keywords into broadcast ones with ``pmap.kwargv[key] = [value]``,
then reads ``pmap.daemon.client``), so they keep ACME's meaning:

- ``argv`` is a list with one entry per positional argument, ``kwargv`` a dict with one
  entry per keyword argument. An entry with ``n_inputs`` elements is split over the calls
  (call ``i`` gets element ``i``); a 1-element list is given whole to every call.
- Both stay mutable until ``compute()``, which rebuilds the call plan from them when an
  entry was replaced or resized (validated again then, before any work).
- ``daemon.client`` is the dask client a dask-based backend runs on; ``config`` (and
  ``daemon.config``) is a read-only view of the run's settings.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .arguments import CallPlan, rebuild_call_plan
from .parameters import backend_values

if TYPE_CHECKING:  # pragma: no cover
    from .executor import Executor
    from .parameters import Settings
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

    def __init__(self, plan: CallPlan) -> None:
        self.argv, self.kwargv = acme_lists(plan)
        self._seen = self._state()

    def _state(self) -> tuple[Any, ...]:
        return (tuple(map(_fingerprint, self.argv)),
                tuple((k, _fingerprint(v)) for k, v in self.kwargv.items()))

    def changed(self) -> bool:
        """True when an entry was added, removed, replaced or resized since the plan."""
        return self._state() != self._seen

    def rebuild(self, plan: CallPlan) -> CallPlan:
        """The call plan of the current lists (ACME's rules), validated as at construction."""
        argv = [_entry(f"pmap.argv[{i}]", v, plan.n_inputs) for i, v in enumerate(self.argv)]
        kwargv = {k: _entry(f"pmap.kwargv[{k!r}]", v, plan.n_inputs)
                  for k, v in self.kwargv.items()}
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

    _acme: ArgumentLists
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
