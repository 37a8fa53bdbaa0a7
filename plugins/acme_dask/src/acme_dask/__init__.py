"""acme-dask: acme-core backends ``"dask"`` and ``"slurm"``, and ACME's cluster helpers.

Examples
--------
>>> from acme_dask import cluster_cleanup, local_cluster_setup, slurm_cluster_setup
>>> callable(slurm_cluster_setup)
True
"""

from .clients import cluster_cleanup, count_online_workers, local_cluster_setup
from .slurm_cluster import slurm_cluster_setup

__all__ = ["cluster_cleanup", "count_online_workers", "local_cluster_setup", "slurm_cluster_setup"]
