"""The run's output directory: naming, creation, the run marker, old-run housekeeping.

``output_dir=None`` makes ``ACME_YYYYMMDD-hhmmss-ffffff`` in the current working directory
(ACME's documented intent). Beside ACME's entries the directory holds our run marker
``acme_run.json``; housekeeping only ever touches directories that carry it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time

log = logging.getLogger("acme_core")

MARKER = "acme_run.json"
_STAMP = "%Y%m%d-%H%M%S-%f"


def check_available(path: str) -> None:
    """Raise when ``path`` exists, is not empty and is not one of our runs."""
    if os.path.isdir(path) and os.listdir(path):
        if os.path.exists(os.path.join(path, MARKER)):
            raise FileExistsError(
                f"`output_dir` {path!r} holds an earlier acme-core run. Resuming runs is not "
                f"supported yet: pass a new output_dir, or delete the old one."
            )
        raise FileExistsError(
            f"`output_dir` {path!r} exists and is not empty; acme-core never writes into "
            f"other data. Pass a new or empty directory."
        )


def default_path(base: str | None = None) -> str:
    """A fresh ``ACME_YYYYMMDD-hhmmss-ffffff`` path in ``base`` (default: the CWD)."""
    base = os.getcwd() if base is None else base
    while True:
        path = os.path.join(base, "ACME_" + dt.datetime.now().strftime(_STAMP))
        if not os.path.exists(path):
            return path
        time.sleep(1e-6)


def create(path: str, marker: dict) -> None:
    """Create ``path`` (empty or new) and write the run marker into it."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OSError(f"automatic creation of output folder {path!r} failed: {exc}") from exc
    with open(os.path.join(path, MARKER), "w") as fh:
        json.dump(marker, fh, indent=1)


def cleanup_old_runs(base: str, threshold_days: int, now: dt.datetime | None = None) -> list[str]:
    """Delete our ``ACME_*`` run directories in ``base`` older than ``threshold_days``.

    A run's age is the time in its directory name; a directory without our marker file is
    never touched (ACME deleted any ``ACME_*`` folder, which can be someone else's data).

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
                or not os.path.isfile(os.path.join(path, MARKER))):
            continue  # not ours: never touched (a symlink may point at anyone's data)
        try:
            born = dt.datetime.strptime(name[5:], _STAMP)
        except ValueError:
            continue
        if (now - born).days > threshold_days or threshold_days == 0:
            try:
                shutil.rmtree(path)
            except OSError as exc:
                log.warning(f"Could not remove old run directory {path}: {exc}")
                continue
            log.info(f"Removed old run directory {path}")
            removed.append(path)
    return removed
