"""Folders a process makes for itself in a shared place (TLS credentials under
``~/.acme_dask``, the state of an in-memory SLURM run under ``~/.acme_slurm``), and their
removal by the next start on the same host once that process is gone (SIGKILL, a lost
session): each holds an ``owner`` file with the host and pid of the process that made it.
Folders of other hosts (a home folder shared by a cluster's nodes) and of live processes
are kept.

Program files of killed runs that acme-core wrote straight into the temp folder before
programs moved into per-process folders (``acme_core_<run id>_<random>.pickle``, without
their owner's pid) are removed by :func:`remove_legacy_program_files` once no run can still
be loading them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import time

log = logging.getLogger("acme_core")

#: Written into every folder :func:`owned_directory` makes: the host and process owning it.
OWNER_FILE = "owner"
#: Program files of the old layout (no owner pid in the name).
LEGACY_PROGRAM = re.compile(r"^acme_core_[0-9a-f]{32}_[0-9a-z_]{8}\.pickle$")
#: Seconds after its last change a legacy program file is certainly no longer read: a run
#: of the old layout loaded it into every worker when its calls started.
LEGACY_AGE = 3600.0


def owned_directory(base: str, prefix: str) -> str:
    """A new folder ``base/<prefix><random>`` only its owner can enter (0700), with an
    ``owner`` file; stale folders of ``prefix`` in ``base`` are removed first.

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> from acme_core.stale import owned_directory
    >>> base = tempfile.mkdtemp()
    >>> folder = owned_directory(base, "run_")
    >>> oct(os.stat(folder).st_mode & 0o777), os.listdir(folder)
    ('0o700', ['owner'])
    >>> shutil.rmtree(base)
    """
    os.makedirs(base, mode=0o700, exist_ok=True)
    remove_stale(base, prefix)
    folder = tempfile.mkdtemp(prefix=prefix, dir=base)
    with open(os.path.join(folder, OWNER_FILE), "w") as fh:
        fh.write(f"{socket.gethostname()} {os.getpid()}\n")
    return folder


def remove_stale(base: str, prefix: str = "") -> list[str]:
    """Remove the folders of ``base`` (named ``prefix...``) whose owner process on this
    host is gone; returns their paths.

    Examples
    --------
    >>> import tempfile
    >>> from acme_core.stale import owned_directory, remove_stale
    >>> base = tempfile.mkdtemp()
    >>> mine = owned_directory(base, "run_")
    >>> remove_stale(base, "run_")          # its owner (this process) lives
    []
    """
    here, removed = socket.gethostname(), []
    for name in os.listdir(base):
        folder = os.path.join(base, name)
        if not name.startswith(prefix):
            continue
        try:
            with open(os.path.join(folder, OWNER_FILE)) as fh:
                host, pid = fh.read().split()
            if host != here:
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            log.debug(f"removed {folder}, left by dead process {pid}")
        except (OSError, ValueError):
            continue     # no owner file (not ours), a live owner, another user's process
    return removed


def remove_legacy_program_files(base: str | None = None,
                                age: float = LEGACY_AGE) -> list[str]:
    """Remove this user's program files of the old layout from ``base`` (default: the temp
    folder) unchanged for ``age`` seconds; returns their paths.

    Examples
    --------
    >>> import os, tempfile
    >>> from acme_core.stale import remove_legacy_program_files
    >>> base = tempfile.mkdtemp()
    >>> old = os.path.join(base, "acme_core_" + "0" * 32 + "_abcd1234.pickle")
    >>> open(old, "wb").close()
    >>> remove_legacy_program_files(base)       # just written: kept
    []
    >>> os.utime(old, (0, 0))
    >>> [os.path.basename(p) for p in remove_legacy_program_files(base)]
    ['acme_core_00000000000000000000000000000000_abcd1234.pickle']
    """
    base = base or tempfile.gettempdir()
    now, removed = time.time(), []
    for name in os.listdir(base):
        if not LEGACY_PROGRAM.match(name):
            continue
        path = os.path.join(base, name)
        try:
            info = os.stat(path)
            if info.st_uid != os.getuid() or now - info.st_mtime < age:
                continue
            os.remove(path)
        except OSError:
            continue
        removed.append(path)
    if removed:
        log.debug(f"removed {len(removed)} program files of killed runs from {base}")
    return removed
