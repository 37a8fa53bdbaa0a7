"""The import name ``acme``, served by acme-core, for code written against ACME (esi-acme).

``import acme`` code (SyNCoPy's, scripts, notebooks) keeps working with ACME's public names
and module paths: ``acme.ParallelMap``, ``acme.esi_cluster_setup``,
``acme.slurm_cluster_setup``, ``acme.local_cluster_setup``, ``acme.cluster_cleanup``,
``acme.dask_helpers.*``, ``acme.ACMEdaemon``, ``acme.__version__``. Re-exports only: the
behaviour lives in acme-core and its plugins.

This distribution (acme-compat) owns the top-level name ``acme``, as esi-acme and certbot's
``acme`` do: install it only into an environment that has neither.

Examples
--------
>>> import acme, acme_core
>>> acme.ParallelMap is acme_core.ParallelMap
True
>>> acme.__version__.startswith("2026.6.2+acmecore.")
True
"""

from __future__ import annotations

import contextlib
import warnings
from importlib.metadata import PackageNotFoundError, version

from acme_core import ParallelMap
from acme_core import __version__ as _core_version
from acme_core.acme_attributes import Daemon as ACMEdaemon

from . import dask_helpers
from .dask_helpers import (
    cluster_cleanup,
    esi_cluster_setup,
    local_cluster_setup,
    slurm_cluster_setup,
)

#: The ACME release whose public API this package serves.
ACME_API = "2026.6.2"
#: A str, as ACME's (SyNCoPy formats it with ``{:s}``): ACME's API release with
#: acme-core's version as PEP 440 local label, so ``Version(acme.__version__)`` compares
#: as the ACME release it stands in for.
__version__ = f"{ACME_API}+acmecore.{_core_version}"

__all__ = ["ACMEdaemon", "ParallelMap", "cluster_cleanup", "dask_helpers", "esi_cluster_setup",
           "local_cluster_setup", "slurm_cluster_setup"]


def _other_owners() -> list[str]:
    """Installed distributions that also provide the top-level name ``acme``."""
    found = []
    for dist in ("esi-acme", "acme"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{dist} {version(dist)}")
    return found


if _other_owners():
    warnings.warn(
        f"`acme` is provided by acme-compat here, but {', '.join(_other_owners())} is installed "
        f"too and owns the same import name: which files `import acme` finds depends on the "
        f"install order. Uninstall one of them (pip uninstall acme-compat, or the other).",
        stacklevel=2)
