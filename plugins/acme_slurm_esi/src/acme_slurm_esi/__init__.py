"""acme-slurm-esi: backend ``"slurm-esi"`` and ACME's ``esi_cluster_setup`` for the ESI HPC
cluster, built on acme-dask's SLURM support.

Examples
--------
>>> from acme_slurm_esi import ESI, esi_cluster_setup
>>> ESI.backend, callable(esi_cluster_setup)
('slurm-esi', True)
"""

from .esi import ESI, esi_cluster_setup
from .site import Site

__all__ = ["ESI", "Site", "esi_cluster_setup"]
