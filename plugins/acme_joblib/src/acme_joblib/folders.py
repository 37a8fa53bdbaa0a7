"""The temporary folder of this process's runs: call programs and the workers' records.

Its name carries the owner's pid (``acme_joblib_<pid>_<random>``), so folders a killed
process left behind are removed at the next start of any run on this machine, never one
of a live process.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
import threading

from acme_core.stale import remove_legacy_program_files

log = logging.getLogger("acme_joblib")

PREFIX = "acme_joblib_"
_lock = threading.Lock()
_mine: dict[str, str] = {}


def run_folder() -> str:
    """This process's folder (made at first use, removed at interpreter exit)."""
    with _lock:
        folder = _mine.get("folder")
        if folder is None or not os.path.isdir(folder):
            remove_stale(tempfile.gettempdir())
            folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}_")
            _mine["folder"] = folder
            atexit.register(_remove, folder)
        return folder


def _remove(folder: str) -> None:
    """At exit; a Ctrl-C pressed again while the interpreter exits leaves the folder to
    the next start (its owner is gone then) instead of printing a traceback."""
    with contextlib.suppress(KeyboardInterrupt):
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(base: str) -> list[str]:
    """Remove the folders in ``base`` whose owner process is gone, and program files of
    the old layout (:func:`acme_core.stale.remove_legacy_program_files`); return their paths.

    Examples
    --------
    >>> import os, tempfile
    >>> from acme_joblib.folders import remove_stale
    >>> base = tempfile.mkdtemp()
    >>> os.mkdir(os.path.join(base, f"acme_joblib_{os.getpid()}_live"))
    >>> remove_stale(base)
    []
    """
    removed = remove_legacy_program_files(base)
    for name in os.listdir(base):
        if not name.startswith(PREFIX):
            continue
        try:
            pid = int(name[len(PREFIX):].split("_", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            path = os.path.join(base, name)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            log.debug(f"removed {path}, left by dead process {pid}")
        except (ValueError, PermissionError, OSError):
            continue
    return removed
