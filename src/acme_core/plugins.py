"""The plugin manager: built-ins, entry points of group ``acme_core``, lookup by name.

Built-in storages register through the same hooks as outside plugins. Outside plugins
are entry points of group ``acme_core``; ``ACME_CORE_PLUGINS`` (comma-separated entry-point
names) restricts which of them load: unset loads all, empty loads none. Built-ins always
load. ``ACME_CORE_TRACE_PLUGINS=1`` prints every hook call to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from dataclasses import dataclass

import pluggy

from . import hookspecs
from .entry_points import EntryPoint, entry_points, version
from .errors import PluginError
from .records import AutoClaim, ExecutorSpec, StorageSpec

ENTRY_POINT_GROUP = "acme_core"
BUILTIN_PLUGINS = ("acme_core.storage.builtin",)
CORE_DISTRIBUTION = "acme-core"

_manager: pluggy.PluginManager | None = None
# plugin name -> where it came from: an entry point, or the core's own distribution. Its
# (distribution, version) is read only when asked for: reading a distribution's metadata
# costs about a millisecond each, and a run asks for none.
_sources: dict[str, EntryPoint | str] = {}
_origins: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version), read


def origin_of(plugin_name: str) -> tuple[str, str] | None:
    """``(distribution, version)`` of a registered plugin, None for one registered at run
    time (not through an entry point).

    Examples
    --------
    >>> from acme_core.plugins import get_plugin_manager, origin_of
    >>> _ = get_plugin_manager()
    >>> origin_of("acme_core.storage.builtin")[0]
    'acme-core'
    """
    if plugin_name not in _origins:
        source = _sources.get(plugin_name)
        if source is None:
            return None
        if isinstance(source, str):
            _origins[plugin_name] = (source, _version_of(source))
        else:
            dist = source.dist
            _origins[plugin_name] = (("unknown", "?") if dist is None
                                     else (dist.name, dist.version))
    return _origins[plugin_name]


@dataclass(frozen=True)
class Registered:
    """A spec together with the plugin that contributed it; ``distribution`` and
    ``version`` name that plugin's distribution."""

    spec: ExecutorSpec | StorageSpec
    plugin_name: str

    @property
    def distribution(self) -> str:
        """The distribution that contributed the spec."""
        return (origin_of(self.plugin_name) or (self.plugin_name, "?"))[0]

    @property
    def version(self) -> str:
        """That distribution's version."""
        return (origin_of(self.plugin_name) or (self.plugin_name, "?"))[1]


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading plugins on first use.

    Returns
    -------
    pluggy.PluginManager
        With acme-core's hook specifications, the built-ins and the selected entry points.

    Examples
    --------
    >>> from acme_core.plugins import get_plugin_manager
    >>> "acme_core.storage.builtin" in get_plugin_manager().list_name_plugin()[0][0]
    True
    """
    global _manager
    if _manager is None:
        _manager = _build_manager()
    return _manager


def reset_plugin_manager() -> None:
    """Forget the loaded plugins; the next lookup loads them again (tests, notebooks)."""
    global _manager
    _manager = None
    _sources.clear()
    _origins.clear()


def _build_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
        _sources[module_name] = CORE_DISTRIBUTION
    for ep in _selected_entry_points():
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not break the others
            warnings.warn(
                f"acme_core: plugin entry point {ep.name!r} ({ep.value}) failed to load "
                f"and is skipped: {type(exc).__name__}: {exc}",
                stacklevel=3,
            )
            continue
        if pm.is_registered(plugin):
            continue
        pm.register(plugin, name=ep.name)
        _sources[ep.name] = ep
    if os.environ.get("ACME_CORE_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(lambda text: sys.stderr.write(text))
        pm.enable_tracing()
    return pm


def _selected_entry_points() -> list[EntryPoint]:
    eps = entry_points(ENTRY_POINT_GROUP)
    wanted = os.environ.get("ACME_CORE_PLUGINS")
    if wanted is None:
        return eps
    names = {n.strip() for n in wanted.split(",") if n.strip()}
    return [ep for ep in eps if ep.name in names]


def _version_of(distribution: str) -> str:
    try:
        return version(distribution)
    except LookupError:
        return "?"


def _collect(hook_name: str, kind: str) -> dict[str, Registered]:
    pm = get_plugin_manager()
    found: dict[str, Registered] = {}
    trace = pm.trace.root.get("hook")
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        records = list(impl.function() or ())
        trace(f"{hook_name} [{impl.plugin_name}] -> {[r.name for r in records]}")
        for spec in records:
            if spec.name in found:
                other = found[spec.name].distribution
                dist = Registered(spec, impl.plugin_name).distribution
                raise PluginError(
                    f"{kind} {spec.name!r} is provided by two plugins: {other!r} and {dist!r}. "
                    f"Uninstall one of them, or restrict loading with ACME_CORE_PLUGINS."
                )
            found[spec.name] = Registered(spec, impl.plugin_name)
    return dict(sorted(found.items()))


def executors() -> dict[str, Registered]:
    """All installed backends by name.

    Returns
    -------
    dict
        Name to :class:`Registered` (spec, distribution, version), sorted by name.

    Examples
    --------
    >>> from acme_core.plugins import executors
    >>> isinstance(executors(), dict)
    True
    """
    return _collect("acme_core_executors", "backend")


def storages() -> dict[str, Registered]:
    """All installed result storages by name.

    Returns
    -------
    dict
        Name to :class:`Registered` (spec, distribution, version), sorted by name.

    Examples
    --------
    >>> from acme_core.plugins import storages
    >>> "memory" in storages()
    True
    """
    return _collect("acme_core_storages", "storage")


def get_executor_spec(name: str) -> ExecutorSpec:
    """Return the backend called ``name``; a ``ValueError`` lists the known ones.

    Examples
    --------
    >>> from acme_core.plugins import get_executor_spec
    >>> get_executor_spec("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown backend 'nope'...
    """
    known = executors()
    if not known:
        raise PluginError(
            "no backend is installed. Install the default local one with "
            "`pip install acme-joblib` (or `pip install -e plugins/acme_joblib` from a checkout)."
        )
    if name not in known:
        raise ValueError(
            f"unknown backend {name!r} given as `backend`; installed backends are "
            f"{', '.join(repr(n) for n in known)} (see `python -m acme_core plugins`)."
        )
    return known[name].spec  # type: ignore[return-value]


def get_storage_spec(name: str) -> StorageSpec:
    """Return the storage called ``name``; a ``ValueError`` lists the known ones.

    Examples
    --------
    >>> from acme_core.plugins import get_storage_spec
    >>> get_storage_spec("memory").on_disk
    False
    """
    known = storages()
    if name not in known:
        raise ValueError(
            f"unknown storage {name!r} given as `storage`; installed storages are "
            f"{', '.join(repr(n) for n in known)} (see `python -m acme_core plugins`)."
        )
    return known[name].spec  # type: ignore[return-value]


def resolve_auto_backend() -> AutoClaim:
    """Ask every plugin to claim ``backend="auto"``; the highest priority wins.

    Examples
    --------
    >>> from acme_core.plugins import resolve_auto_backend
    >>> resolve_auto_backend().backend in __import__("acme_core.plugins").plugins.executors()
    True
    """
    claims = [c for c in get_plugin_manager().hook.acme_core_claim_auto() if c is not None]
    if not claims:
        known = ", ".join(repr(n) for n in executors())
        if not known:
            get_executor_spec("auto")  # raises the "no backend is installed" error
        raise PluginError(
            f"no installed plugin claims `backend='auto'`; pass one of {known} as `backend`."
        )
    return max(claims, key=lambda c: c.priority)


def has_listeners(hook_name: str) -> bool:
    """True when some plugin implements the lifecycle hook ``hook_name``."""
    return bool(getattr(get_plugin_manager().hook, hook_name).get_hookimpls())
