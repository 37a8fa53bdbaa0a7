"""acme-compat's one plugin hook: code that imports ``acme`` runs on dask, as under ACME.

ACME has a single backend: every ``ParallelMap`` without a running client starts a dask
``LocalCluster`` (or SLURM workers on an HPC site), and code written for it relies on that
(``pmap.daemon.client``, ``dask.distributed.get_client()`` after ``stop_client=False``,
the cluster's shut-down message on Ctrl-C). acme-core's own default local backend is
joblib. So while ``acme`` is imported in a process, this hook claims ``backend="auto"`` for
acme-core's ``"dask"`` backend, above the local default and below a site's cluster node
and a running dask client (which keep winning, as under ACME). A ``backend=`` given by
name is never overridden, and code that never imports ``acme`` is never affected.

This module is the distribution's entry point (group ``acme_core``); it lives outside the
package ``acme`` so that loading the plugin does not import ``acme`` and claim for every
process.
"""

from __future__ import annotations

import sys

from acme_core import hookimpl
from acme_core.hookspecs import AutoClaim

#: Above the local default (0), below a site's cluster node (100) and a running client (200).
PRIORITY = 50


@hookimpl
def acme_core_claim_auto() -> AutoClaim | None:
    """Claim ``backend="auto"`` for ``"dask"`` while the module ``acme`` is imported.

    Examples
    --------
    >>> import acme
    >>> from acme_compat import acme_core_claim_auto
    >>> acme_core_claim_auto().backend
    'dask'
    """
    if "acme" not in sys.modules:
        return None
    return AutoClaim(backend="dask", priority=PRIORITY,
                     reason="code imports `acme`: ACME's default, a dask LocalCluster")
