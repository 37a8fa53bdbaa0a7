"""Where a run's array state lives on the shared file system, and how files are written.

::

    <state dir>/                     <output_dir>/.acme_slurm, or a private folder (memory)
      task.sh                        the batch script: exec <python> -m acme_slurm.task "$@"
      programs/<run id>.pickle       the run's program, pickled once per ParallelMap
      logs/<array id>_<task>.out     SLURM's output of each task
      g<k>/meta.pickle               a group of chunks submitted together: program, request,
                                     the arrays (job id, index offset, tasks) it went out as
      g<k>/c<n>.pickle               chunk n: the CallBatch one array task runs
      g<k>/p<n>-<seq>.pickle         outcomes (BatchOutcome) of the calls chunk n's task ran,
                                     in order (in the group's folder: the parent lists one
                                     folder per group, not one per task)
      g<k>/t<n>/start.json           written by the task: job id, node, pid, time, restarts
      g<k>/t<n>/heartbeat.json       every second: time, RSS, peak RSS (MB), calls done
      g<k>/t<n>/end.json             why it stopped: "done", "walltime" or "sigterm"

Every file is written under a temporary name and renamed, so a reader sees a whole file or
none; a task is the only writer of its ``p<n>-*`` files and of its ``t<n>`` folder.
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


def part_name(chunk: int, seq: int) -> str:
    """File name of part ``seq`` of chunk ``chunk``'s outcomes."""
    return f"p{chunk}-{seq:06d}.pickle"


def group_parts(folder: str) -> dict[int, list[str]]:
    """Chunk -> its outcome parts in a group's folder, in the order they were written.

    Examples
    --------
    >>> from acme_slurm.layout import atomic_write, group_parts, part_name
    >>> for chunk, seq in ((0, 1), (0, 0), (3, 0)):
    ...     atomic_write(str(tmp_path / part_name(chunk, seq)), b"")
    >>> group_parts(str(tmp_path))
    {0: ['p0-000000.pickle', 'p0-000001.pickle'], 3: ['p3-000000.pickle']}
    """
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return {}
    parts: dict[int, list[str]] = {}
    for name in sorted(names):
        if name.startswith("p") and name.endswith(".pickle") and "-" in name:
            parts.setdefault(int(name[1:name.index("-")]), []).append(name)
    return parts
