"""The TLS credentials of a SLURM cluster on disk: a private folder the compute nodes can read,
removed with its cluster, and folders of processes that died removed at the next start."""

from __future__ import annotations

import contextlib
import os
import shutil
import weakref
from typing import Any

from acme_core.stale import OWNER_FILE, owned_directory

__all__ = ["OWNER_FILE", "private_directory", "remove_credentials_with"]



def private_directory(base: str | None = None) -> str:
    """A new directory only its owner can enter (0700), for one run's TLS credentials;
    folders of processes of this host that died without cleaning up are removed first
    (:func:`acme_core.stale.owned_directory`).

    Default ``base``: ``~/.acme_dask`` (shared with the compute nodes on a SLURM cluster).

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> from acme_dask.credentials import private_directory
    >>> d = private_directory(tempfile.gettempdir())
    >>> oct(os.stat(d).st_mode & 0o777)
    '0o700'
    >>> shutil.rmtree(d)
    """
    return owned_directory(os.path.expanduser(base or os.path.join("~", ".acme_dask")), "tls-")


def _drop_credentials(files: list[Any], folder: str) -> None:
    for handle in files:
        with contextlib.suppress(OSError):
            handle.close()            # a NamedTemporaryFile: closing deletes it
    shutil.rmtree(folder, ignore_errors=True)

def remove_credentials_with(cluster: Any, folder: str) -> None:
    """Delete ``folder`` (the cluster's TLS credentials) once ``cluster`` is gone.

    dask-jobqueue writes the worker credentials as temporary files it deletes when they are
    garbage collected; closing them here first keeps the two from racing.

    Examples
    --------
    >>> from acme_dask.credentials import remove_credentials_with
    >>> remove_credentials_with(cluster, folder)     # doctest: +SKIP
    """
    files = [getattr(cluster, f"_job_{key}") for key in ("ca_file", "cert", "key")
             if hasattr(cluster, f"_job_{key}")]
    weakref.finalize(cluster, _drop_credentials, files, folder)
