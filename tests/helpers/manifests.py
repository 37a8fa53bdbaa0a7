"""What a run's manifest records, read the way acme-core reads it (``manifest.read``: a torn
last line is ignored), also while the run is still writing it."""

from __future__ import annotations

import os

from acme_core import manifest
from acme_core.errors import ManifestError


def done_calls(output_dir: str | os.PathLike) -> set[int]:
    """Calls the manifest in ``output_dir`` records as done (none while it has no first
    line yet)."""
    folder = os.fspath(output_dir)
    if not manifest.exists(folder):
        return set()
    try:
        return manifest.read(folder).done
    except ManifestError:  # the first line is being written
        return set()
