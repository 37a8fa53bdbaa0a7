"""The exception classes users catch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .failures import FailureTable


class PluginError(RuntimeError):
    """A plugin is missing, broken, or two plugins claim the same name.

    Examples
    --------
    >>> from acme_core.errors import PluginError
    >>> issubclass(PluginError, RuntimeError)
    True
    """


class ArgumentMismatchError(TypeError, ValueError):
    """The arguments given do not fit ``func``'s signature (too few, too many, twice).

    A ``TypeError`` as Python raises for a bad call, and a ``ValueError`` as ACME raised
    ("f expects 2 positional arguments ..."), so scripts written for either keep catching it.

    Examples
    --------
    >>> from acme_core.errors import ArgumentMismatchError
    >>> issubclass(ArgumentMismatchError, TypeError), issubclass(ArgumentMismatchError, ValueError)
    (True, True)
    """


class UnknownKeywordError(TypeError, ValueError):
    """A keyword argument ``func`` does not accept.

    A ``TypeError`` as Python raises for a bad call, and a ``ValueError`` as ACME raised for
    surplus keywords, so scripts written for either keep catching it.

    Examples
    --------
    >>> from acme_core.errors import UnknownKeywordError
    >>> issubclass(UnknownKeywordError, TypeError) and issubclass(UnknownKeywordError, ValueError)
    True
    """


class UnpicklableError(TypeError):
    """An argument or the function cannot be sent to the backend's worker processes.

    Examples
    --------
    >>> from acme_core.errors import UnpicklableError
    >>> issubclass(UnpicklableError, TypeError)
    True
    """


class ResultShapeError(ValueError):
    """A call's first return value does not fit ``result_shape``/``result_dtype``.

    Every further call would fail alike, so the first one stops the run: pending calls are
    cancelled, finished results are kept.

    Examples
    --------
    >>> from acme_core.errors import ResultShapeError
    >>> issubclass(ResultShapeError, ValueError)
    True
    """


class ManifestError(ValueError):
    """A run's manifest or marker file is damaged: which results are complete cannot be told.

    Examples
    --------
    >>> from acme_core.errors import ManifestError
    >>> issubclass(ManifestError, ValueError)
    True
    """


class RunLockedError(RuntimeError):
    """Another process is running in the same ``output_dir`` (its lock names it).

    Examples
    --------
    >>> from acme_core.errors import RunLockedError
    >>> issubclass(RunLockedError, RuntimeError)
    True
    """


class ParallelComputationError(RuntimeError):
    """Some calls failed; the others finished and their results are stored.

    Attributes
    ----------
    failures : FailureTable
        One row per failed call: index, arguments, exception type, message, traceback,
        attempts, kind (``"error"`` raised by the function, ``"lost-worker"``, ``"storage"``)
        and where it ran.

    Examples
    --------
    >>> from acme_core.errors import ParallelComputationError
    >>> issubclass(ParallelComputationError, RuntimeError)
    True
    """

    def __init__(self, message: str, failures: FailureTable) -> None:
        super().__init__(message)
        self.failures = failures


class MissingResultsWarning(UserWarning):
    """Some calls of the run have no result; ``missing`` lists their indices.

    Examples
    --------
    >>> from acme_core import MissingResultsWarning
    >>> MissingResultsWarning("2 of 4 calls have no result", [1, 3]).missing
    [1, 3]
    """

    def __init__(self, message: str, missing: Sequence[int]) -> None:
        super().__init__(message)
        self.missing = list(missing)
