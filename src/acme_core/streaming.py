"""What ``ParallelMap.as_completed()`` hands over for one finished call."""

from __future__ import annotations

from typing import Any

from .records import CallOutcome
from .storage.base import Storage


def call_result(storage: Storage, outcome: CallOutcome) -> Any:
    """The value of a finished call (in-memory storages), or where it is stored: the path
    the storage's writer returned (one file per call), else the storage's container (or
    its output directory). A storage may define ``location(outcome)`` to say it itself.

    Examples
    --------
    >>> from acme_core.records import CallOutcome
    >>> from acme_core.storage.base import StorageSettings
    >>> from acme_core.storage.memory import MemoryStorage
    >>> call_result(MemoryStorage(StorageSettings("f", 2)), CallOutcome(1, 42))
    42
    """
    location = getattr(storage, "location", None)
    if callable(location):
        return location(outcome)
    if storage.settings.output_dir is None:
        return outcome.value
    if isinstance(outcome.value, str):
        return outcome.value
    return storage.results_container or storage.settings.output_dir
