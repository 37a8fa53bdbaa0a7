"""acme-dask: acme-core backends ``"dask"`` and ``"slurm"``, and ACME's cluster helpers.

Examples
--------
>>> from acme_dask import cluster_cleanup, local_cluster_setup, slurm_cluster_setup
>>> callable(slurm_cluster_setup)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acme_core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .clients import cluster_cleanup, count_online_workers, local_cluster_setup
    from .slurm_cluster import slurm_cluster_setup

# name -> module, imported on first use: acme-core imports this package for every
# ParallelMap (its plugin module lives here), and these names are needed only when used
_LAZY = {
    "cluster_cleanup": "clients",
    "count_online_workers": "clients",
    "local_cluster_setup": "clients",
    "slurm_cluster_setup": "slurm_cluster",
}

__all__ = ["cluster_cleanup", "count_online_workers", "local_cluster_setup", "slurm_cluster_setup"]

__getattr__ = lazy_exports(__name__, _LAZY)
