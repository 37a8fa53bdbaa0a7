"""Logging: one logger per package, ACME's ``verbose`` levels, a log file beside results.

``verbose=None`` -> INFO, ``True`` -> DEBUG, ``False`` -> WARNING. Nothing global is
patched: no custom levels, no replaced ``sys.excepthook``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

_FORMAT = "%(name)s %(levelname)s: %(message)s"
_FILE_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
_HANDLER_FLAG = "_acme_core_stderr"


def level_of(verbose: bool | None) -> int:
    """ACME's mapping of ``verbose`` to a logging level.

    Examples
    --------
    >>> from acme_core.logs import level_of
    >>> level_of(None) == logging.INFO, level_of(True) == logging.DEBUG
    (True, True)
    """
    return {None: logging.INFO, True: logging.DEBUG, False: logging.WARNING}[verbose]


def configure(names: Iterable[str], verbose: bool | None) -> list[logging.Logger]:
    """Set the level of each package logger and give it a stderr handler (once)."""
    loggers = []
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(level_of(verbose))
        if not any(getattr(h, _HANDLER_FLAG, False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(_FORMAT))
            setattr(handler, _HANDLER_FLAG, True)
            logger.addHandler(handler)
        loggers.append(logger)
    return loggers


class LogFile:
    """A log file attached to the package loggers for the lifetime of one ParallelMap.

    Written unbuffered (ACME buffered it in memory until the end of ``compute()``).
    """

    def __init__(self, path: str, loggers: list[logging.Logger],
                 earlier: Iterable[logging.LogRecord] = ()) -> None:
        self.path = path
        self._loggers = loggers
        self._handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter(_FILE_FORMAT))
        for record in earlier:  # what was logged before the file existed (construction)
            self._handler.handle(record)
        for logger in loggers:
            logger.addHandler(self._handler)

    def close(self) -> None:
        """Detach and close the file."""
        for logger in self._loggers:
            logger.removeHandler(self._handler)
        self._handler.close()
