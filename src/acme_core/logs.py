"""Logging: one logger per package, ACME's ``verbose`` levels, a log file beside results.

``verbose=None`` -> INFO, ``True`` -> DEBUG, ``False`` -> WARNING. Nothing global is
patched: no custom levels, no replaced ``sys.excepthook``.

Code written for ACME finds the log file of the latest ParallelMap the way ACME's users do:
the logger ``"ACME"`` holds one :class:`logging.handlers.MemoryHandler` whose ``target`` is
that run's log file handler (``target.baseFilename`` its path), and ``flush()`` writes what
the constructor logged into the file before ``compute()`` starts.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

_FORMAT = "%(name)s %(levelname)s: %(message)s"
_FILE_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
_HANDLER_FLAG = "_acme_core_stderr"
#: The logger through which ACME's users reach the log file (see the module docstring).
ACME_LOGGER = "ACME"
#: ``extra={FILE_ONLY: True}``: a record for the log file only (the console sees the same
#: text in the exception that follows).
FILE_ONLY = "acme_core_file_only"
#: The run whose ``compute()`` is going on in this thread (or task).
_current_run: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "acme_core_run", default=None)


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
    """Set the level of each package logger and give it a stderr handler (once).

    The stderr handler shows ``verbose``'s level; the logger itself lets INFO through at
    least, so a run's log file always has the run's course and closing figures.
    """
    level = level_of(verbose)
    loggers = []
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(min(level, logging.INFO))
        handler = next((h for h in logger.handlers if getattr(h, _HANDLER_FLAG, False)), None)
        if handler is None:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(_FORMAT))
            handler.addFilter(_not_file_only)
            setattr(handler, _HANDLER_FLAG, True)
            logger.addHandler(handler)
        handler.setLevel(level)
        loggers.append(logger)
    return loggers


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, FILE_ONLY, False)


@contextlib.contextmanager
def running(run_id: str) -> Iterator[None]:
    """Mark log records emitted in this context as the run ``run_id``'s."""
    token = _current_run.set(run_id)
    try:
        yield
    finally:
        _current_run.reset(token)


class _RunFilter(logging.Filter):
    """Lets through records of one run (or of no run): no cross-talk between the log files
    of two ParallelMaps alive at once."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        current = _current_run.get()
        return current is None or current == self.run_id


class LogFile:
    """A run's log file, attached to the package loggers only while ``compute()`` runs
    (so it holds that run's lines and nothing else) and created on the first write.

    Written unbuffered while attached (ACME buffered it in memory until the end of
    ``compute()``). Its :attr:`acme_handle`, on the logger ``"ACME"``, is ACME's way to it.

    Examples
    --------
    >>> import logging
    >>> from acme_core.logs import LogFile
    >>> logger = logging.getLogger("acme_core.demo")
    >>> logfile = LogFile(str(tmp_path / "run.log"), [logger], run_id="r1")
    >>> with logfile.attached():
    ...     logger.warning("only in r1's file")
    >>> "only in r1's file" in open(logfile.path).read()
    True
    >>> logging.getLogger("ACME").handlers[-1].target.baseFilename == logfile.path
    True
    """

    def __init__(self, path: str, loggers: list[logging.Logger], run_id: str) -> None:
        self.path = path
        self._loggers = loggers
        self._run_id = run_id
        self._file = _RunFileHandler(self.path, mode="a", encoding="utf-8", delay=True)
        self._file.setFormatter(logging.Formatter(_FILE_FORMAT))
        self._file.addFilter(_RunFilter(run_id))
        self._attached = False
        self.acme_handle = _install_acme_handle(self._file)

    def keep(self, records: Iterable[logging.LogRecord]) -> None:
        """Write ``records`` (logged before the file existed: the construction's warnings)
        at the top of the file when it is first attached, or when :attr:`acme_handle` is
        flushed before."""
        self.acme_handle.buffer.extend(records)

    @contextlib.contextmanager
    def attached(self) -> Iterator[None]:
        """Write the package loggers' records of this run into the file."""
        self.acme_handle.flush()   # what the constructor logged goes first
        for logger in self._loggers:
            logger.addHandler(self._file)
        self._attached = True
        try:
            with running(self._run_id):
                yield
        finally:
            self.close()

    def close(self) -> None:
        """Detach and close the file (a later write, through :attr:`acme_handle`, reopens
        it to append)."""
        if self._attached:
            self._attached = False
            for logger in self._loggers:
                logger.removeHandler(self._file)
        self._file.close()


def _install_acme_handle(target: logging.Handler) -> logging.handlers.MemoryHandler:
    """The ``MemoryHandler`` on the logger ``"ACME"`` that reaches ``target``, in place of
    the previous run's (ACME's one handler, retargeted by every ParallelMap)."""
    acme = logging.getLogger(ACME_LOGGER)
    for old in [h for h in acme.handlers if getattr(h, _HANDLE_FLAG, False)]:
        acme.removeHandler(old)
    handle = logging.handlers.MemoryHandler(1000, flushLevel=logging.ERROR, target=target,
                                            flushOnClose=False)
    setattr(handle, _HANDLE_FLAG, True)
    acme.addHandler(handle)
    return handle


_HANDLE_FLAG = "_acme_core_log_file"


class _RunFileHandler(logging.FileHandler):
    """A run's log file on a disk that filled up: the lines it cannot write are dropped
    (the console still shows them), so the run's own report, which tells the user to free
    space, is not buried under logging tracebacks."""

    def _open(self) -> Any:
        # flushed through ACME's handle before compute() made the output directory
        os.makedirs(os.path.dirname(self.baseFilename), exist_ok=True)
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            super().flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            super().close()
