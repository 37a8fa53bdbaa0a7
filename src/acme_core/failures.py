"""The failures table: one row per call that has no result, and why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from .calls import Failure
from .replays import replay_lines


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
    >>> from acme_core.calls import Failure
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

    def __init__(self, rows: list[tuple[Failure, str]] | None = None) -> None:
        self.rows = sorted(
            (FailureRow(f.index, args, f.kind, f.exc_type, f.message, f.traceback, f.attempts,
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
