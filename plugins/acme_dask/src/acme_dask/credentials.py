"""The TLS credentials of a SLURM cluster on disk: a private folder the compute nodes can read,
removed with its cluster, and folders of processes that died removed at the next start."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import weakref
from typing import Any

log = logging.getLogger("acme_dask")



def private_directory(base: str | None = None) -> str:
    """A new directory only its owner can enter (0700), for one run's TLS credentials.

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
    base = os.path.expanduser(base or os.path.join("~", ".acme_dask"))
    os.makedirs(base, mode=0o700, exist_ok=True)
    _remove_stale_directories(base)
    folder = tempfile.mkdtemp(prefix="tls-", dir=base)
    with open(os.path.join(folder, OWNER_FILE), "w") as fh:
        fh.write(f"{socket.gethostname()} {os.getpid()}\n")
    return folder

#: Written into every credentials folder: the host and process that own it.
OWNER_FILE = "owner"

def _remove_stale_directories(base: str) -> None:
    """Delete credentials folders left by processes of this host that died without cleaning
    up (SIGKILL, a lost session); folders of other hosts and of live processes are kept."""
    here = socket.gethostname()
    for name in os.listdir(base):
        folder = os.path.join(base, name)
        try:
            with open(os.path.join(folder, OWNER_FILE)) as fh:
                host, pid = fh.read().split()
        except (OSError, ValueError):
            continue
        if host != here:
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            log.debug(f"removed stale TLS credentials {folder} of dead process {pid}")
        except (PermissionError, ValueError):
            continue

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
