"""The failures table: one row per call that has no result, and why (as text, as HTML in
Jupyter, as a pandas DataFrame), and the short descriptions of arguments its rows show."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from .records import Failure
from .replays import replay_lines
from .sources import restore_sources


@dataclass
class FailureRow:
    """One failed call as users see it."""

    index: int
    arguments: str
    kind: str
    exc_type: str
    message: str
    traceback: str
    attempts: int
    worker: str


class FailureTable:
    """Failed calls of a run, in call order (``pmap.failures``, ``err.failures``).

    Examples
    --------
    >>> from acme_core.records import Failure
    >>> from acme_core.failures import FailureTable
    >>> table = FailureTable([(Failure(3, "error", "ValueError", "boom"), "x=3")])
    >>> table.indices
    [3]
    >>> print(table)  # doctest: +NORMALIZE_WHITESPACE
    call  kind   attempts  worker  error              arguments
    3     error  1                 ValueError: boom   x=3
    """

    #: The run's output directory (None: results in memory), set by whoever made the table
    #: so that it ends with the line replaying each failed call; False: not known.
    replay_dir: str | None | bool = False

    def __init__(self, rows: list[tuple[Failure, str]] | None = None, func: Any = None) -> None:
        def traceback(failure: Failure) -> str:
            return restore_sources(failure.traceback, func) if func is not None else (
                failure.traceback)

        self.rows = sorted(
            (FailureRow(f.index, args, f.kind, f.exc_type, f.message, traceback(f), f.attempts,
                        f.worker) for f, args in rows or ()),
            key=lambda r: r.index,
        )

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[FailureRow]:
        return iter(self.rows)

    def __getitem__(self, i: int) -> FailureRow:
        return self.rows[i]

    @property
    def indices(self) -> list[int]:
        """The indices of the failed calls."""
        return [r.index for r in self.rows]

    def to_records(self) -> list[dict]:
        """The table as a list of dicts (e.g. for ``pandas.DataFrame``)."""
        return [asdict(r) for r in self.rows]

    def to_dataframe(self) -> Any:
        """The table as a ``pandas.DataFrame`` indexed by call (pandas is not a dependency
        of acme-core: this needs it installed).

        Examples
        --------
        >>> from acme_core.records import Failure
        >>> from acme_core.failures import FailureTable
        >>> table = FailureTable([(Failure(3, "error", "ValueError", "boom"), "x=3")])
        >>> table.to_dataframe()[["kind", "exc_type"]]  # doctest: +SKIP
              kind    exc_type
        index
        3     error  ValueError
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("FailureTable.to_dataframe() needs pandas (pip install pandas); "
                              "to_records() gives the same rows as dicts.") from exc
        columns = list(FailureRow.__dataclass_fields__)
        return pd.DataFrame(self.to_records(), columns=columns).set_index("index")

    def _repr_html_(self) -> str:
        """An HTML table for Jupyter, each traceback folded under its row."""
        if not self.rows:
            return "<p>No failed calls.</p>"
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in
                       ("call", "kind", "attempts", "worker", "error", "arguments"))
        body = []
        for r in self.rows:
            error = html.escape(_short(f"{r.exc_type}: {r.message}", 120))
            if r.traceback:
                error = (f"<details><summary>{error}</summary><pre style='font-size:smaller'>"
                         f"{html.escape(r.traceback)}</pre></details>")
            cells = (str(r.index), html.escape(r.kind), str(r.attempts),
                     html.escape(r.worker), error, f"<code>{html.escape(r.arguments)}</code>")
            body.append("<tr>" + "".join(f"<td style='text-align:left'>{c}</td>"
                                         for c in cells) + "</tr>")
        replay = replay_lines(self.replay_dir, self.indices).strip()
        return (f"<table class='acme-failures'><caption style='text-align:left'>"
                f"{len(self.rows)} failed call(s)</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>"
                + (f"<pre>{html.escape(replay)}</pre>" if replay else ""))

    def __str__(self) -> str:
        head = ("call", "kind", "attempts", "worker", "error", "arguments")
        body = [(str(r.index), r.kind, str(r.attempts), r.worker,
                 _short(f"{r.exc_type}: {r.message}", 60), r.arguments) for r in self.rows]
        widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)).rstrip()
                         for line in (head, *body)) + replay_lines(self.replay_dir, self.indices)

    def __repr__(self) -> str:
        return f"<FailureTable: {len(self.rows)} failed call(s) {self.indices[:10]}>"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def summarize(value: Any, width: int = 60) -> str:
    """A one-line description of an argument for failure rows: arrays and frames by type,
    dtype and shape, strings and numbers as they are, other reprs on one line and cut.

    Examples
    --------
    >>> import numpy as np
    >>> from acme_core.failures import summarize
    >>> summarize(np.zeros((16, 2000), dtype="float32"))
    '<ndarray float32 (16, 2000)>'
    >>> summarize("trial_3.npy"), summarize(2.5), summarize(np.int64(7))
    ("'trial_3.npy'", '2.5', '7')
    >>> summarize(list(range(100)))
    '<list of 100>'
    >>> summarize("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."
    """
    kind = type(value)
    name = kind.__name__
    if kind.__module__.split(".")[0] == "numpy" and hasattr(value, "shape"):
        if getattr(value, "ndim", 0) == 0 and hasattr(value, "item"):
            return _short(repr(value.item()), width)
        return f"<{name} {value.dtype} {tuple(value.shape)}>"
    if name == "DataFrame" and hasattr(value, "shape"):
        return f"<DataFrame {value.shape[0]}x{value.shape[1]}>"
    if name in ("Series", "Index") and hasattr(value, "shape"):
        return f"<{name} {getattr(value, 'dtype', '')} ({len(value)},)>"
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # h5py, dask, torch, ...
        return f"<{name} {value.dtype} {tuple(value.shape)}>"
    text = repr(value)
    if isinstance(value, (list, tuple, dict, set)) and (len(text) > width or "\n" in text):
        return f"<{name} of {len(value)}>"
    return _short(text, width)
