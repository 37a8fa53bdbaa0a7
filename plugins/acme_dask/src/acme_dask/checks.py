"""ACME's checks of the cluster helpers' arguments, with ACME's messages (shared with site
plugins such as acme-slurm-esi, which validate the same kind of settings)."""

from __future__ import annotations

import os
from typing import Any


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` has to be `True` or `False`, not {value!r} "
                        f"({type(value).__name__}).")
    return value


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; ACME's messages name the parameter ``name``.

    Shared with site plugins (acme-slurm-esi) that validate the same kind of settings.

    Examples
    --------
    >>> from acme_dask.checks import check_int
    >>> check_int("n_workers", 2.0, 1)
    2
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` has to be an integer >= {minimum}, not {value!r} "
                        f"({type(value).__name__}).")
    if value != int(value) or value < minimum:
        raise ValueError(f"`{name}` has to be an integer between {minimum} and inf, not {value!r}.")
    return int(value)

def check_job_extra(job_extra: Any) -> list[str]:
    """ACME's ``job_extra`` check: a list of sbatch options, each starting with ``-``.

    Examples
    --------
    >>> from acme_dask.checks import check_job_extra
    >>> check_job_extra(["--exclusive"])
    ['--exclusive']
    """
    if not isinstance(job_extra, list):
        raise TypeError(f"`job_extra` has to be a list, not {type(job_extra).__name__}.")
    for item in job_extra:
        if not isinstance(item, str):
            raise TypeError(f"`job_extra` has to be a list of strings, found {item!r}.")
        if not item.startswith("-"):
            raise ValueError(f"`job_extra` entries have to be sbatch options starting with "
                             f"'-', not {item!r}.")
    return list(job_extra)

def output_directory(job_extra: list[str]) -> str | None:
    for item in job_extra:
        if item.startswith(("--output", "-o")):
            path = item.split("=", 1)[1] if "=" in item else ""
            folder = os.path.dirname(path)
            if not item.startswith("--output=") or not folder or not os.path.isdir(folder):
                raise ValueError(f"`job_extra` option {item!r} has to be of the form "
                                 f"'--output=/existing/folder/file'.")
            return folder
    return None
