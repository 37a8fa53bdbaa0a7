"""What acme-dask asks on a terminal: the yes/no and keep-waiting questions of the cluster
helpers, and the start-up bar of SLURM workers."""

from __future__ import annotations

import logging
import select
import sys
import time

log = logging.getLogger("acme_dask")

#: Seconds the "[k]eep waiting" answer of the start-up prompt waits (ACME: 60).
KEEP_WAITING = 60.0


def user_input(message: str, valid: str, default: str, timeout: float) -> str:
    """Ask ``message`` on the terminal; return one of ``valid`` (one letter each).

    Without a terminal on stdin, or when nothing valid is typed within ``timeout`` seconds,
    the answer is ``default``.

    Examples
    --------
    >>> from acme_dask.prompts import user_input
    >>> user_input("Go on? [y/N]", "yn", "n", timeout=1)   # no terminal under pytest
    'n'
    """
    stdin = sys.stdin
    if stdin is None or not hasattr(stdin, "isatty") or not stdin.isatty():
        log.info(f"{message} No terminal to ask: answering {default!r}.")
        return default
    deadline = time.monotonic() + timeout
    print(f"{message} (default '{default}' in {timeout:.0f}s) ", end="", flush=True)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print(default)
            return default
        ready, _, _ = select.select([stdin], [], [], left)
        if not ready:
            continue
        answer = stdin.readline().strip().lower()[:1] or default
        if answer in valid:
            return answer
        print(f"Please answer one of {', '.join(valid)}: ", end="", flush=True)


class SetupBar:
    """The start-up bar on a terminal: workers online and the seconds left until the
    time-out (a countdown, not a clock time that reads like a past moment)."""

    def __init__(self, total: int) -> None:
        self._bar = None
        if sys.stderr is not None and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, file=sys.stderr,
                             desc="<slurm_cluster_setup> SLURM workers ready",
                             bar_format="{desc}: {n}/{total} [elapsed {elapsed}, {postfix}]")

    def show(self, online: int, left: float) -> None:
        if self._bar is None:
            return
        if online != self._bar.n:
            self._bar.update(online - self._bar.n)
        self._bar.set_postfix_str(f"time-out in {max(0.0, left):.0f} s", refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
