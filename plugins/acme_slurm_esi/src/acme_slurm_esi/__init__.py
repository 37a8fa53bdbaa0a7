"""acme-slurm-esi: backend ``"slurm-esi"`` and ACME's ``esi_cluster_setup`` for the ESI HPC
cluster, built on acme-dask's SLURM support.

Examples
--------
>>> from acme_slurm_esi import ESI, esi_cluster_setup
>>> ESI.backend, callable(esi_cluster_setup)
('slurm-esi', True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acme_core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .esi import ESI, esi_cluster_setup
    from .site import Site

# name -> module, imported on first use: acme-core imports this package for every
# ParallelMap (its plugin module lives here), and these names are needed only when used
_LAZY = {
    "ESI": "esi",
    "Site": "site",
    "esi_cluster_setup": "esi",
}

__all__ = ["ESI", "Site", "esi_cluster_setup"]

__getattr__ = lazy_exports(__name__, _LAZY)
