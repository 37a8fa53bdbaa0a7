"""Log records of a ParallelMap's construction, kept until its log file opens.

Warnings about the arguments and parameters (an ignored ``single_file``, an argument over
the recommended size) are given while ``ParallelMap(...)`` validates, before the run's log
file exists; ACME writes them into that file too. The buffer holds them (on the package
loggers, nothing global) until :meth:`EarlyRecords.take` hands them to the log file, or
drops them when there is no log file to write.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from typing import Any


class EarlyRecords(logging.Handler):
    """Collects the records of ``loggers`` until :meth:`take` or :meth:`close`.

    Detached at the latest when ``owner`` is garbage-collected, so a ParallelMap that never
    runs leaves no handler behind.

    Examples
    --------
    >>> import logging
    >>> from acme_core.early_log import EarlyRecords
    >>> logger = logging.getLogger("acme_core.example")
    >>> early = EarlyRecords([logger])
    >>> logger.warning("before the log file")
    >>> [r.getMessage() for r in early.take()]
    ['before the log file']
    >>> early in logger.handlers
    False
    """

    #: Never more than this many records (a construction logs a handful).
    LIMIT = 1000

    def __init__(self, loggers: list[logging.Logger], owner: Any = None) -> None:
        super().__init__(logging.NOTSET)
        self._loggers = loggers
        self._records: list[logging.LogRecord] = []
        for logger in loggers:
            logger.addHandler(self)
        if owner is not None:
            weakref.finalize(owner, self.close)

    def emit(self, record: logging.LogRecord) -> None:
        if len(self._records) < self.LIMIT:
            self._records.append(record)

    def take(self) -> list[logging.LogRecord]:
        """Detach and return the records collected so far."""
        records, self._records = self._records, []
        self.close()
        return records

    def close(self) -> None:
        """Detach from the loggers and drop what was collected."""
        for logger in self._loggers:
            logger.removeHandler(self)
        self._records = []
        super().close()


def collected(names: Callable[[], list[str]]) -> Callable[[Any], Any]:
    """Decorate ``__init__``: ``self._early_log`` collects the records of the loggers
    ``names()`` while it runs, and is dropped if it raises.

    Examples
    --------
    >>> import logging
    >>> from acme_core.early_log import collected
    >>> class Run:
    ...     @collected(lambda: ["acme_core.example"])
    ...     def __init__(self):
    ...         logging.getLogger("acme_core.example").warning("validating")
    >>> run = Run()
    >>> [r.getMessage() for r in run._early_log.take()]
    ['validating']
    """
    def decorate(init: Any) -> Any:
        @functools.wraps(init)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
            self._early_log = EarlyRecords([logging.getLogger(n) for n in names()], self)
            try:
                init(self, *args, **kwargs)
            except BaseException:
                self._early_log.close()
                raise
        return wrapper
    return decorate
