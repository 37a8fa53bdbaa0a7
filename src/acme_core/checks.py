"""Checks of ParallelMap's own parameter values, one function per parameter.

Every check runs before anything exists on disk or in a process. Messages name the
parameter, what was given, and what would be accepted; they keep ACME's fragments so
that scripts matching on them keep working. Which check belongs to which parameter is
said once, in :data:`acme_core.parameters.PARAMETERS`.
"""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(MB|GB)\s*$", re.IGNORECASE)


def _given(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_flag(name: str, value: Any) -> bool:
    """``value`` must be ``True`` or ``False`` (ACME: "`name` has to be `True` or `False`").

    Examples
    --------
    >>> from acme_core.checks import check_flag
    >>> check_flag("dryrun", False)
    False
    >>> check_flag("dryrun", "no")
    Traceback (most recent call last):
    ...
    TypeError: `dryrun` has to be `True` or `False`, not 'no' (str).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` has to be `True` or `False`, not {_given(value)}.")
    return bool(value)


def check_n_inputs(value: Any) -> int | str:
    """``"auto"`` or an integer >= 1 (``2.0`` is accepted as 2).

    Examples
    --------
    >>> from acme_core.checks import check_n_inputs
    >>> check_n_inputs(2.0)
    2
    """
    if isinstance(value, str):
        if value == "auto":
            return value
        raise ValueError(f"`n_inputs` has to be 'auto' or an integer >= 1, not {value!r}.")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`n_inputs` has to be a scalar ('auto' or an integer >= 1), not {_given(value)}.")
    if not np.isfinite(value) or value != int(value) or value < 1:
        raise ValueError(f"`n_inputs` has to be an integer between 1 and inf, not {value!r}.")
    return int(value)


def check_n_workers(value: Any) -> int | str:
    """``"auto"`` or an integer >= 1.

    Examples
    --------
    >>> from acme_core.checks import check_n_workers
    >>> check_n_workers("auto"), check_n_workers(4)
    ('auto', 4)
    """
    if isinstance(value, str):
        if value == "auto":
            return value
        raise ValueError(f"`n_workers` has to be 'auto' or an integer >= 1, not {value!r}.")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`n_workers` has to be 'auto' or an integer >= 1, not {_given(value)}.")
    if not np.isfinite(value) or value != int(value) or value < 1:
        raise ValueError(
            f"`n_workers` has to be 'auto' or an integer >= 1 (between 1 and inf), not {value!r}.")
    return int(value)


def check_mem_per_worker(value: Any) -> str:
    """``"auto"`` or a memory size such as ``"8GB"`` or ``"12000MB"``.

    Examples
    --------
    >>> from acme_core.checks import check_mem_per_worker
    >>> check_mem_per_worker("8GB")
    '8GB'
    """
    if not isinstance(value, str):
        raise TypeError(
            f"Memory specification `mem_per_worker` has to be a string such as '8GB' or "
            f"'12000MB' (or 'auto'), not {_given(value)}."
        )
    if value != "auto":
        match = _MEMORY.match(value)
        if match is None or float(match.group(1)) <= 0:
            raise ValueError(
                f"`mem_per_worker` has to be 'auto' or a valid memory specifier (e.g., '8GB', "
                f"'12000MB'), not {value!r}."
            )
    return value


def check_setup_timeout(value: Any) -> float:
    """Seconds to wait for workers: a number >= 1.

    Examples
    --------
    >>> from acme_core.checks import check_setup_timeout
    >>> check_setup_timeout(60)
    60.0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`setup_timeout` has to be a scalar (seconds >= 1), not {_given(value)}.")
    if not value >= 1:
        raise ValueError(f"`setup_timeout` has to be a number of seconds between 1 and inf, not {value!r}.")
    return float(value)


def check_stop_client(value: Any) -> bool | str:
    """``"auto"``, ``True`` or ``False``.

    Examples
    --------
    >>> from acme_core.checks import check_stop_client
    >>> check_stop_client("auto"), check_stop_client(True)
    ('auto', True)
    """
    if isinstance(value, str):
        if value == "auto":
            return value
        raise ValueError(f"`stop_client` has to be 'auto' or Boolean, not {value!r}.")
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`stop_client` has to be 'auto' or Boolean, not {_given(value)}.")
    return bool(value)


def check_verbose(value: Any) -> bool | None:
    """``None`` (INFO), ``True`` (DEBUG) or ``False`` (WARNING).

    Examples
    --------
    >>> from acme_core.checks import check_verbose
    >>> check_verbose(None) is None
    True
    """
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`verbose` has to be `None`, `True` or `False`, not {_given(value)}.")
    return None if value is None else bool(value)


def check_output_dir(value: Any) -> str | None:
    """``None`` or a path that is not an existing file and whose parent can be written.

    Messages keep ACME's "automatic creation of output folder ... failed".

    Examples
    --------
    >>> import os
    >>> from acme_core.checks import check_output_dir
    >>> check_output_dir("results") == os.path.join(os.getcwd(), "results")
    True
    """
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"`output_dir` has to be either `None` or str, not {_given(value)}.")
    if not os.fspath(value):
        raise ValueError("`output_dir` has to be either `None` or a directory path, not ''.")
    path = os.path.abspath(os.path.expanduser(os.fspath(value)))
    failed = f"`output_dir`: automatic creation of output folder {path!r} failed"
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(
            f"{failed}: it is an existing file, not a directory. Pass a directory path "
            f"(new, or an empty directory)."
        )
    ancestor = path
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise NotADirectoryError(
            f"{failed}: {ancestor!r} is a file, not a directory. Pass a path inside a directory."
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{failed}: {ancestor!r} is not writable. Pass an output_dir you can write to."
        )
    return path


def check_logfile(value: Any) -> bool | str | None:
    """``None``, ``True``, ``False`` or a file name that is not a directory.

    Examples
    --------
    >>> import os
    >>> from acme_core.checks import check_logfile
    >>> check_logfile("run.log") == os.path.join(os.getcwd(), "run.log")
    True
    """
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"`logfile` has to be `None`, `True`, `False` or a valid file-name, not {_given(value)}."
        )
    path = os.path.abspath(os.path.expanduser(os.fspath(value)))
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"`logfile` has to be `None`, `True`, `False` or a valid file-name, not a directory: "
            f"{path!r}. Pass a file name inside it, e.g. {os.path.join(path, 'run.log')!r}."
        )
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"`logfile` has to be `None`, `True`, `False` or a valid file-name: {path!r} cannot "
            f"be created because its folder {folder!r} does not exist or is not a directory."
        )
    return path


def check_result_shape(value: Any, on_disk: bool = True) -> tuple[Any, ...] | None:
    """ACME's ``result_shape``: one ``None`` (the stacking axis), non-negative integers, at
    most one ``np.inf`` (unlimited, on-disk storages only).

    Examples
    --------
    >>> from acme_core.checks import check_result_shape
    >>> check_result_shape([None, 3.0], on_disk=False)
    (None, 3)
    """
    if value is None:
        return None
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"`result_shape` has to be either `None` or tuple, not {_given(value)}.")
    if sum(v is None for v in value) != 1:
        raise ValueError(
            f"`result_shape` must contain exactly one `None` entry (the axis along which calls "
            f"are stacked), not {tuple(value)!r}; e.g. (None, 3)."
        )
    rest = [v for v in value if v is not None]
    if not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in rest):
        raise ValueError(f"`result_shape` must only contain numerical values (and one None), not {tuple(value)!r}.")
    infinite = [v for v in rest if np.isinf(v)]
    if any(np.isnan(v) or v < 0 or (np.isfinite(v) and v != int(v)) for v in rest):
        raise ValueError(f"`result_shape` must only contain non-negative integers (and one None), not {tuple(value)!r}.")
    if len(infinite) > 1:
        raise ValueError(f"cannot use more than one `np.inf` in `result_shape` {tuple(value)!r}: "
                         f"at most one axis can be unlimited.")
    if infinite and not on_disk:
        raise ValueError(
            "`np.inf` in `result_shape` is only valid if `write_worker_results` is `True` "
            "(results on disk); in memory give the exact size."
        )
    return tuple(v if v is None or np.isinf(v) else int(v) for v in value)


def check_result_dtype(value: Any) -> str:
    """A string NumPy understands as a dtype (``"float"`` = float64).

    Examples
    --------
    >>> from acme_core.checks import check_result_dtype
    >>> check_result_dtype("float16")
    'float16'
    """
    if not isinstance(value, str):
        raise TypeError(f"`result_dtype` has to be a string such as 'float32', not {_given(value)}.")
    try:
        np.dtype(value)
    except (TypeError, ValueError, SyntaxError):
        raise TypeError(
            f"`result_dtype` has to be a valid NumPy datatype specification such as 'float', "
            f"'int64' or 'complex128', not {value!r}."
        ) from None
    return value


def check_cleanup_threshold_days(value: Any) -> int | None:
    """``None`` or a whole number of days >= 0.

    Examples
    --------
    >>> from acme_core.checks import check_cleanup_threshold_days
    >>> check_cleanup_threshold_days(7)
    7
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`cleanup_threshold_days` has to be `None` or an integer >= 0, not {_given(value)}.")
    if value < 0:
        raise ValueError(f"`cleanup_threshold_days` has to be `None` or an integer >= 0, not {value!r}.")
    return int(value)


def check_name(parameter: str, value: Any) -> str:
    """A plugin name (``backend`` or ``storage``); whether it is installed is checked later.

    Examples
    --------
    >>> from acme_core.checks import check_name
    >>> check_name("backend", "joblib")
    'joblib'
    """
    if not isinstance(value, str) or not value:
        raise TypeError(f"`{parameter}` has to be a name such as 'auto', not {_given(value)}.")
    return value


def check_backend_options(value: Any) -> dict[str, Any]:
    """``None`` or a mapping with string keys (the backend checks the keys).

    Examples
    --------
    >>> from acme_core.checks import check_backend_options
    >>> check_backend_options(None)
    {}
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(
            f"`backend_options` has to be a dict of option names to values, not {_given(value)}."
        )
    return dict(value)


def check_retries(value: Any) -> int:
    """Attempts after the first for calls whose function raised: an integer >= 0.

    Examples
    --------
    >>> from acme_core.checks import check_retries
    >>> check_retries(2)
    2
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`retries` has to be an integer >= 0, not {_given(value)}.")
    if value < 0:
        raise ValueError(f"`retries` has to be an integer >= 0, not {value!r}.")
    return int(value)


def check_timeout(value: Any) -> float | None:
    """Seconds one call may run: None (no limit) or a number > 0.

    Examples
    --------
    >>> from acme_core.checks import check_timeout
    >>> check_timeout(30)
    30.0
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`timeout` has to be None or a number of seconds > 0, not "
                        f"{_given(value)}.")
    if not value > 0:
        raise ValueError(f"`timeout` has to be None or a number of seconds > 0, not {value!r}.")
    return float(value)


#: ``rerun=`` values: which calls that have a result from the same arguments run again.
RERUN_VALUES = ("missing", "changed", "all")


def check_rerun(value: Any) -> str:
    """Which calls with a result run again: "missing" (none: only calls without a result or
    with changed arguments run), "changed" (also results of an earlier code version), "all".

    Examples
    --------
    >>> from acme_core.checks import check_rerun
    >>> check_rerun("changed")
    'changed'
    >>> check_rerun("failed")
    Traceback (most recent call last):
    ...
    ValueError: `rerun` has to be one of 'missing', 'changed', 'all', not 'failed'. ...
    """
    if not isinstance(value, str):
        raise TypeError(f"`rerun` has to be one of {', '.join(map(repr, RERUN_VALUES))}, not "
                        f"{_given(value)}.")
    if value not in RERUN_VALUES:
        raise ValueError(
            f"`rerun` has to be one of {', '.join(map(repr, RERUN_VALUES))}, not {value!r}. "
            f"Failed and missing calls always run; \"changed\" also re-runs results of an "
            f"earlier code version, \"all\" every call.")
    return value


def check_partition(value: Any) -> str:
    """A SLURM partition name, or ``"auto"`` (the backend checks it against the cluster).

    Examples
    --------
    >>> from acme_core.checks import check_partition
    >>> check_partition("8GBXS")
    '8GBXS'
    """
    if not isinstance(value, str):
        raise TypeError(f"`partition` has to be 'auto' or a valid SLURM partition name, not "
                        f"{_given(value)}.")
    return value


def check_progress(value: Any) -> bool | None:
    """``None`` (a bar where a person watches), ``True`` or ``False``.

    Examples
    --------
    >>> from acme_core.checks import check_progress
    >>> check_progress(None) is None, check_progress(True)
    (True, True)
    """
    return None if value is None else check_flag("progress", value)
