"""ACME's cluster helpers under the names ACME code imports them by.

``local_cluster_setup``, ``slurm_cluster_setup``, ``cluster_cleanup`` and their helpers
live in modules by job (:mod:`acme_dask.clients`, :mod:`acme_dask.slurm_cluster`,
:mod:`acme_dask.credentials`, :mod:`acme_dask.prompts`, :mod:`acme_dask.checks`); this
module keeps ``from acme_dask.setup import ...`` working. Parameters, defaults and messages
follow ACME (esi-acme 2026.6); where acme-dask differs it says so in a docstring and in the
plugin README ("Differences from ACME").

Examples
--------
>>> from acme_dask.setup import cluster_cleanup, local_cluster_setup, slurm_cluster_setup
>>> callable(local_cluster_setup) and callable(slurm_cluster_setup)
True
"""

from __future__ import annotations

from .checks import check_int, check_job_extra
from .clients import (
    check_main_guard,
    cluster_cleanup,
    cluster_config,
    count_online_workers,
    keep_client,
    local_cluster_setup,
    local_worker_options,
    running_client,
    stop_cluster,
    usable_cores,
)
from .credentials import OWNER_FILE, private_directory, remove_credentials_with
from .prompts import KEEP_WAITING, user_input
from .slurm_cluster import (
    WORKER_DEATH_TIMEOUT,
    current_user,
    default_log_directory,
    import_jobqueue,
    slurm_cluster_setup,
    wait_for_workers,
)

__all__ = ["KEEP_WAITING", "OWNER_FILE", "WORKER_DEATH_TIMEOUT", "check_int", "check_job_extra",
           "check_main_guard", "cluster_cleanup", "cluster_config", "count_online_workers",
           "current_user", "default_log_directory", "import_jobqueue", "keep_client",
           "local_cluster_setup", "local_worker_options", "private_directory",
           "remove_credentials_with", "running_client", "slurm_cluster_setup", "stop_cluster",
           "usable_cores", "user_input", "wait_for_workers"]
