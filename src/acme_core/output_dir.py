"""The run's output directory: naming, creation, the run marker, the run lock, housekeeping.

``output_dir=None`` makes ``ACME_YYYYMMDD-hhmmss-ffffff`` in the current working directory
(ACME's documented intent) when ``compute()`` starts. Beside ACME's entries the directory
holds our run marker ``.acme_run.json``; housekeeping only ever touches directories that
carry it. While a ``compute()`` runs, ``.acme_run.lock`` names its process (host and pid):
a second run on the same directory is refused, and housekeeping leaves it alone. Folders
of the previous layout (the same names without the dot, :mod:`acme_core.previous_names`)
are read as they are, and renamed when a run takes them up (:func:`take_up`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterable
from typing import Any

from . import previous_names
from .errors import ManifestError, RunLockedError
from .manifest import NAME as MANIFEST

log = logging.getLogger("acme_core")

MARKER = ".acme_run.json"
LOCK = ".acme_run.lock"
#: The lock an earlier acme-core's run takes (previous_names): a run of such a version never
#: looks for ours, so ours refuses to start while that one is held.
OLD_LOCK = previous_names.previous(LOCK)
_STAMP = "%Y%m%d-%H%M%S-%f"
#: Longest function name used in file names (file systems allow 255 bytes per name).
MAX_NAME = 64


def safe_name(func_name: str) -> str:
    """The function's name as it may appear in file names: no path separators or other
    characters file systems or shells trip over, at most ``MAX_NAME`` characters.

    Examples
    --------
    >>> from acme_core.output_dir import safe_name
    >>> safe_name("<lambda>"), safe_name("spectrum"), safe_name("../etc/passwd")
    ('lambda_', 'spectrum', 'etc_passwd')
    """
    bracketed = re.fullmatch(r"<(.*)>", func_name)  # <lambda>, <genexpr>
    core = bracketed.group(1) if bracketed else func_name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", core).strip("._-") or "func"
    if bracketed:
        name += "_"
    if len(name) > MAX_NAME:
        digest = hashlib.blake2b(func_name.encode(), digest_size=4).hexdigest()
        name = f"{name[:MAX_NAME - 9]}_{digest}"
    return name


def check_available(path: str) -> None:
    """Raise when ``path`` exists, is not empty and is not one of our runs."""
    if not (os.path.isdir(path) and os.listdir(path)):
        return
    if all(n.startswith("ACME_") and n.endswith(".log") for n in os.listdir(path)):
        return  # only the log of a run flushed before its compute() (logs.ACME_LOGGER)
    marker = previous_names.find(path, MARKER)
    if os.path.exists(marker) and not os.path.exists(previous_names.find(path, MANIFEST)):
        read_marker(path)
        bookkeeping = {MARKER, LOCK, previous_names.previous(MARKER), OLD_LOCK}
        if all(n in bookkeeping or n.endswith(".log") for n in os.listdir(path)):
            return  # a run that stopped before its first result: nothing to lose
        raise ManifestError(
            f"`output_dir` {path!r} holds an acme-core run without its manifest "
            f"({os.path.join(path, MANIFEST)} is missing), so which of its results are "
            f"complete cannot be told. Pass a new output_dir, or delete {path!r} to start over.")
    raise FileExistsError(
        f"`output_dir` {path!r} exists and is not empty; acme-core never writes into "
        f"other data. Pass a new or empty directory.")


def read_marker(path: str) -> dict[str, Any]:
    """The run marker of the run in ``path``.

    Raises
    ------
    ManifestError
        When the marker is empty or not a run description (naming the file and the fix).
    """
    marker = previous_names.find(path, MARKER)
    try:
        with open(marker, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ManifestError(
            f"The run marker {marker} is damaged ({exc}). If {path} is an acme-core run, "
            f"write {{\"acme_core_run\": 1}} into it to use it again; else pass a new "
            f"output_dir.") from None
    if not isinstance(data, dict):
        raise ManifestError(f"The run marker {marker} does not describe a run; write "
                            f"{{\"acme_core_run\": 1}} into it, or pass a new output_dir.")
    return data


def default_path(base: str | None = None) -> str:
    """A fresh ``ACME_YYYYMMDD-hhmmss-ffffff`` path in ``base`` (default: the CWD)."""
    base = os.getcwd() if base is None else base
    while True:
        path = os.path.join(base, "ACME_" + dt.datetime.now().strftime(_STAMP))
        if not os.path.exists(path):
            return path
        time.sleep(1e-6)


def create(path: str, marker: dict) -> None:
    """Create ``path`` (empty or new) with the run marker in it.

    A new directory appears with its marker already inside (made under a temporary name
    and renamed), so a reader or a crash never sees our run directory without it.
    """
    if os.path.isdir(path):
        _write_marker(path, marker)
        return
    parent = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(parent, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.makedirs(parent, exist_ok=True)
        os.mkdir(tmp)
        _write_marker(tmp, marker)
        os.rename(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.isdir(path):  # made meanwhile by a run that started at the same instant
            _write_marker(path, marker)
            return
        raise OSError(f"automatic creation of output folder {path!r} failed: {exc}") from exc


def _write_marker(path: str, marker: dict) -> None:
    final = os.path.join(path, MARKER)
    tmp = f"{final}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(marker, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)


# ---------------------------------------------------------------------------- the run lock
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def lock_owner(path: str, name: str = LOCK) -> dict[str, Any] | None:
    """Who holds the lock ``name`` of the run in ``path`` (None: nobody, or a stale lock)."""
    try:
        with open(os.path.join(path, name), encoding="utf-8") as fh:
            owner = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"host": "?", "pid": -1, "started": "?"}  # being written: count it as held
    if owner.get("host") == socket.gethostname() and not _alive(int(owner.get("pid", -1))):
        return None
    return owner


def refuse_if_locked(path: str) -> None:
    """Raise :class:`RunLockedError` when a live run (of this version or of the previous
    layout's) holds the lock of ``path``."""
    for name in (LOCK, OLD_LOCK):
        owner = lock_owner(path, name) if os.path.isdir(path) else None
        if owner is not None:
            raise RunLockedError(_locked_message(os.path.join(path, name), owner))


class RunLock:
    """``.acme_run.lock`` (or the lock ``name``) in a run directory for the time of one
    ``compute()``."""

    def __init__(self, path: str, name: str = LOCK) -> None:
        self.file = os.path.join(path, name)
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(),
                      "started": dt.datetime.now().isoformat(timespec="seconds"),
                      "token": uuid.uuid4().hex}

    def acquire(self) -> None:
        """Take the lock, replacing a stale one; raise :class:`RunLockedError` if held."""
        for _ in range(3):
            try:
                fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = lock_owner(*os.path.split(self.file))
                if owner is not None:
                    raise RunLockedError(_locked_message(self.file, owner)) from None
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.file)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.owner, fh)
            return
        raise RunLockedError(f"Could not take the run lock {self.file}; another run keeps "
                             f"starting in the same directory.")

    def release(self) -> None:
        """Remove the lock if it is still ours."""
        try:
            with open(self.file, encoding="utf-8") as fh:
                ours = json.load(fh).get("token") == self.owner["token"]
        except (OSError, ValueError):
            return
        if ours:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.file)


def take_up(path: str, names: Iterable[str]) -> list[str]:
    """Rename the entries of a folder of the previous layout to the current ``names``; the
    caller holds the folder's lock. Returns the names it gave.

    It holds the previous layout's lock meanwhile, so a run of an earlier acme-core can
    neither be writing into the folder nor start in it half-way (afterwards it finds a folder
    that is not its run, and refuses it).

    Examples
    --------
    >>> from acme_core.output_dir import MARKER, take_up
    >>> _ = (tmp_path / "acme_run.json").write_text("{}")
    >>> take_up(str(tmp_path), [MARKER])
    ['.acme_run.json']
    """
    names = list(names)
    if not any(os.path.lexists(os.path.join(path, previous_names.previous(n))) for n in names):
        return []
    old = RunLock(path, OLD_LOCK)
    old.acquire()
    try:
        renamed = previous_names.rename(path, names)
    finally:
        old.release()
    if renamed:
        log.info(f"Renamed the bookkeeping of {path} to its current names: "
                 f"{', '.join(renamed)}")
    return renamed


def _locked_message(file: str, owner: dict[str, Any]) -> str:
    folder = os.path.dirname(file)
    return (f"`output_dir` {folder!r} is in use by another run (process {owner.get('pid')} on "
            f"{owner.get('host')}, started {owner.get('started')}); two runs never write into "
            f"one directory at once. Wait for it to finish, or pass another output_dir. If that "
            f"process is gone (e.g. on another host), delete {file}.")


# ---------------------------------------------------------------------------- housekeeping
def last_modified(path: str) -> float:
    """The newest modification time of ``path`` and its entries (a resumed run is young)."""
    newest = os.stat(path).st_mtime
    with os.scandir(path) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def cleanup_old_runs(base: str, threshold_days: int, now: dt.datetime | None = None) -> list[str]:
    """Delete our ``ACME_*`` run directories in ``base`` not modified for ``threshold_days``.

    A run's age is the time since its last modification (ACME's rule: a run resumed
    yesterday is one day old). Only directories named as ``output_dir=None`` names them
    and carrying our marker file are candidates (ACME deleted any ``ACME_*`` folder, which
    can be someone else's data); one whose run lock is held is never touched.

    Examples
    --------
    >>> from acme_core.output_dir import cleanup_old_runs
    >>> cleanup_old_runs(str(tmp_path), 7)
    []
    """
    now = dt.datetime.now() if now is None else now
    removed = []
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        if (not name.startswith("ACME_") or os.path.islink(path)
                or not os.path.isfile(previous_names.find(path, MARKER))):
            continue  # not ours: never touched (a symlink may point at anyone's data)
        try:
            dt.datetime.strptime(name[5:], _STAMP)
        except ValueError:
            continue  # a name we never make: the user chose it
        if lock_owner(path) is not None or lock_owner(path, OLD_LOCK) is not None:
            continue  # a run is going on in it
        age = now - dt.datetime.fromtimestamp(last_modified(path))
        if age.days > threshold_days or threshold_days == 0:
            try:
                shutil.rmtree(path)
            except OSError as exc:
                log.warning(f"Could not remove old run directory {path}: {exc}")
                continue
            log.info(f"Removed old run directory {path}")
            removed.append(path)
    return removed
