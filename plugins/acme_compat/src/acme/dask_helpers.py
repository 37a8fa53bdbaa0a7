"""ACME's ``acme.dask_helpers``: the cluster helpers of acme-dask and acme-slurm-esi.

Examples
--------
>>> from acme.dask_helpers import cluster_cleanup, local_cluster_setup
>>> import acme_dask
>>> local_cluster_setup is acme_dask.local_cluster_setup
True
"""

from acme_dask import cluster_cleanup, local_cluster_setup, slurm_cluster_setup
from acme_slurm_esi import esi_cluster_setup

__all__ = ["cluster_cleanup", "esi_cluster_setup", "local_cluster_setup", "slurm_cluster_setup"]
