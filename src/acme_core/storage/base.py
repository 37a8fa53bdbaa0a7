"""The storage protocol: a picklable worker-side writer and a parent-side collector.

A storage's life in one run::

    storage = spec.get_factory()(settings)   # validates (e.g. result_shape), creates nothing
    storage.prepare()                  # parent: files and containers in settings.output_dir
    writer = storage.writer()          # shipped to workers inside the call program
    receipt = writer.write(i, value)   # worker: store call i's return value
    storage.collect(outcome)           # parent: once per finished call, as results stream in
    storage.collect_batch(batch)       # parent, optional: instead, a whole batch without
                                       # failures (no object per call); collecting a call
                                       # twice must be the same as once
    storage.flush()                    # parent, optional: make what was collected durable
    storage.finish()                   # parent: compute()'s return value
    storage.damaged(done)              # parent, on resume: which recorded results are gone
    type(storage).load(settings)       # any process, any time later: read every result back

``acme_core.load(output_dir)`` finds the storage a run used by the name in the run's
marker, through the plugin registry, and calls its class's :meth:`Storage.load`: a
storage plugin owns both its write and its read half.

A result travels once: a storage that writes where the call ran returns a small receipt
(a path); one that needs the value in the parent returns the value itself.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

from ..calls import ResultWriter
from ..records import (  # noqa: F401 - StorageSettings, StoredResults re-exported
    CallOutcome,
    StorageSettings,
    StoredResults,
)


class Storage(abc.ABC):
    """Base class of every result storage.

    Examples
    --------
    A storage that keeps only the number of finished calls::

        class Count(Storage):
            def writer(self):
                return Discard()          # any picklable object with write(index, value)
            def collect(self, outcome):
                self.n = getattr(self, "n", 0) + 1
            def finish(self):
                return self.n
    """

    #: Path users open to read every result, or None (``pmap.results_container``).
    results_container: str | None = None

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings

    def prepare(self) -> None:  # noqa: B027 - optional
        """Create what must exist before the first call (parent process)."""

    @abc.abstractmethod
    def writer(self) -> ResultWriter:
        """The picklable object that stores one return value on a worker."""

    @abc.abstractmethod
    def collect(self, outcome: CallOutcome) -> None:
        """Take the receipt or value of one successful call (parent process)."""

    def flush(self) -> None:  # noqa: B027 - optional
        """Make every result collected so far durable on disk (parent process).

        Optional (the default does nothing). Storages that buffer writes in the parent
        (``hdf5-single``) flush here; a run loop may call it before it records calls as
        done, so a crash never leaves a call recorded but unreadable. Storages flush on their
        own as well (after every batch of writes), and always in :meth:`finish`.
        """

    @abc.abstractmethod
    def finish(self) -> Any:
        """Complete the storage after the last call; return what ``compute()`` returns."""

    @classmethod
    def load(cls, settings: StorageSettings) -> StoredResults:
        """Read back every result of the run in ``settings.output_dir``, in call order,
        also after a crash or an interruption (any process, no running storage needed).

        ``settings`` holds what the run's marker records: ``func_name``, ``n_calls`` and
        ``output_dir``. ``acme_core.load`` warns about the missing calls. The default (a
        storage that keeps nothing on disk) raises ``ValueError``.

        Examples
        --------
        >>> from acme_core.storage.base import StorageSettings
        >>> from acme_core.storage.memory import MemoryStorage
        >>> MemoryStorage.load(StorageSettings("f", 2, "/runs/r"))
        Traceback (most recent call last):
        ...
        ValueError: /runs/r is an in-memory run (MemoryStorage): it holds no results.
        """
        raise ValueError(f"{settings.output_dir} is an in-memory run ({cls.__name__}): it "
                         f"holds no results.")

    def damaged(self, indices: Iterable[int]) -> set[int]:
        """Of ``indices`` (calls the manifest records as done: a set of Python ints, as a
        :class:`~acme_core.call_runs.CallSet`, whose ``array`` holds them sorted), those
        whose stored result is missing or unreadable, found by a cheap check (a file exists
        and opens, a pickle is whole), not by reading every result. A resumed run re-runs
        them.

        The default (storages that keep nothing on disk) returns an empty set.

        Examples
        --------
        >>> from acme_core.storage.base import StorageSettings
        >>> from acme_core.storage.memory import MemoryStorage
        >>> MemoryStorage(StorageSettings(func_name="f", n_calls=4)).damaged([0, 1])
        set()
        """
        return set()


class Discard:
    """A writer that keeps nothing (functions that save their own output via ``taskID``)."""

    def write(self, index: int, value: Any) -> None:
        return None


class KeepValue:
    """A writer that sends the value back to the parent."""

    #: ``write`` returns its value unchanged, so workers need not call it per call.
    keeps_values = True

    def write(self, index: int, value: Any) -> Any:
        return value
