"""Where a run's array state lives on the shared file system, and how files are written.

::

    <state dir>/                     <output_dir>/.acme_slurm, or a private folder (memory)
      task.sh                        the batch script: exec <python> -m acme_slurm.task "$@"
      programs/<run id>.pickle       the run's program, pickled once per ParallelMap
      logs/<array id>_<task>.out     SLURM's output of each task
      g<k>/meta.pickle               a group of chunks submitted together: program, request,
                                     the arrays (job id, index offset, tasks) it went out as
      g<k>/c<n>.pickle               chunk n: the CallBatch one array task runs
      g<k>/t<n>/start.json           written by the task: job id, node, pid, time, restarts
      g<k>/t<n>/heartbeat.json       every second: time, RSS, peak RSS (MB), calls done
      g<k>/t<n>/part-<seq>.pickle    outcomes (BatchOutcome) of the calls it ran, in order
      g<k>/t<n>/end.json             why it stopped: "done", "walltime" or "sigterm"

Every file is written under a temporary name and renamed, so a reader sees a whole file or
none; a task is the only writer of its own ``t<n>`` folder.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

STATE_DIR_NAME = ".acme_slurm"


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name and a rename.

    Examples
    --------
    >>> import os
    >>> from acme_slurm.layout import atomic_write
    >>> atomic_write(str(tmp_path / "x"), b"1")
    >>> os.listdir(tmp_path)
    ['x']
    """
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_json(path: str, value: Any) -> None:
    """:func:`atomic_write` of ``value`` as JSON."""
    atomic_write(path, json.dumps(value).encode())


def read_json(path: str) -> Any:
    """The JSON in ``path``, or None when it is missing or half written."""
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError):
        return None


def write_pickle(path: str, value: Any) -> None:
    """:func:`atomic_write` of ``value`` pickled."""
    atomic_write(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def read_pickle(path: str) -> Any:
    """The object pickled in ``path``."""
    with open(path, "rb") as fh:
        return pickle.load(fh)


def group_dir(state: str, group: str) -> str:
    """Folder of group ``group``."""
    return os.path.join(state, group)


def chunk_file(state: str, group: str, chunk: int) -> str:
    """The CallBatch file of chunk ``chunk`` of ``group``."""
    return os.path.join(state, group, f"c{chunk}.pickle")


def task_dir(state: str, group: str, chunk: int) -> str:
    """The folder the task running chunk ``chunk`` of ``group`` writes to."""
    return os.path.join(state, group, f"t{chunk}")


def part_files(folder: str) -> list[str]:
    """The outcome parts in a task folder, in the order they were written."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith("part-") and n.endswith(".pickle"))
