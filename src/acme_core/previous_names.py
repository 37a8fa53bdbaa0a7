"""The names a run's bookkeeping had before it was hidden, and moving a folder to the new ones.

A run's folder keeps, beside ACME's entries (container, payload folder, log), what resuming,
``python -m acme_core status`` and ``replay(i)`` need: the manifest, the run marker, the
run lock and the replay folder. They are dot-names (``.acme_manifest.jsonl``,
``.acme_run.json``, ``.acme_run.lock``, ``.acme_replay/``) so that a listing of the folder
(``ls``, ``glob.glob("*")``) shows what ACME's shows; ``ls -a`` (and ``pathlib``'s glob)
show them. Earlier versions of acme-core wrote them without the dot: each previous name is
the current one without its leading dot.

Readers look for either name (:func:`find`); a ``compute()`` that takes up a folder of the
previous layout renames its entries (:func:`rename`) while it holds the folder's lock, so
that from then on only the current names exist.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def previous(name: str) -> str:
    """The name the entry ``name`` had before it was hidden.

    Examples
    --------
    >>> from acme_core.previous_names import previous
    >>> previous(".acme_manifest.jsonl")
    'acme_manifest.jsonl'
    """
    if not name.startswith("."):
        raise ValueError(f"{name!r} is not a hidden name")
    return name[1:]


def find(folder: str, name: str) -> str:
    """The path of ``name`` in ``folder``, or of its previous name when only that exists
    (a folder of the previous layout not yet taken up by a run).

    Examples
    --------
    >>> import os
    >>> from acme_core.previous_names import find
    >>> _ = (tmp_path / "acme_run.json").write_text("{}")
    >>> os.path.basename(find(str(tmp_path), ".acme_run.json"))
    'acme_run.json'
    >>> os.path.basename(find(str(tmp_path), ".acme_manifest.jsonl"))
    '.acme_manifest.jsonl'
    """
    path = os.path.join(folder, name)
    old = os.path.join(folder, previous(name))
    if not os.path.lexists(path) and os.path.lexists(old):
        return old
    return path


def rename(folder: str, names: Iterable[str]) -> list[str]:
    """Give the entries of ``folder`` that carry a previous name their current one; the
    caller holds the folder's run lock. Returns the current names it gave.

    Examples
    --------
    >>> import os
    >>> from acme_core.previous_names import rename
    >>> _ = (tmp_path / "acme_run.json").write_text("{}")
    >>> rename(str(tmp_path), [".acme_run.json", ".acme_manifest.jsonl"])
    ['.acme_run.json']
    >>> sorted(os.listdir(tmp_path))
    ['.acme_run.json']
    """
    renamed = []
    for name in names:
        path, old = os.path.join(folder, name), os.path.join(folder, previous(name))
        if os.path.lexists(old) and not os.path.lexists(path):
            os.rename(old, path)
            renamed.append(name)
    return renamed
