"""The parent's watch over its dask workers: a call over ``timeout=`` and a worker that
stopped beating (SIGSTOP, a hung node).

Every worker's heartbeat carries the calls it runs (:class:`acme_dask.worker.CallClock`,
metric ``acme-calls``) to the scheduler, which notes when it last heard from the worker.
The parent reads both from the scheduler in one request (the scheduler of a cluster
acme-dask starts lives in the parent; nothing is asked of a worker, which a stopped worker
could not answer). A worker to stop is killed by its nanny, which starts a new one (a
stopped process cannot run anything itself, but SIGKILL ends it); a worker without a nanny
is asked to exit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from acme_core.calls import LOST_WORKER, TIMEOUT

log = logging.getLogger("acme_dask")

#: Seconds between two looks at the workers while a call has a time limit (else
#: ``IDLE_SECONDS``: only stopped workers are looked for).
WATCH_SECONDS, IDLE_SECONDS = 1.0, 5.0
#: Default of ``backend_options["heartbeat_timeout"]`` (as the joblib backend's).
HEARTBEAT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Stop:
    """A worker to stop: ``index`` is the call over its time limit (None: the worker stopped
    beating), ``kind`` the failure kind of that call."""

    address: str
    nanny: str | None
    index: int | None
    kind: str
    reason: str


def worker_reports(dask_scheduler: Any = None) -> dict[str, tuple[float, Any, list[Any]]]:
    """Run on the scheduler: per worker, the seconds since its last heartbeat, its nanny and
    the calls it ran then (plain types)."""
    from distributed.metrics import time as scheduler_time

    from .worker import CALLS_METRIC  # imports distributed: not when the plugin registers

    now = scheduler_time()
    return {address: (now - ws.last_seen, ws.nanny, list(ws.metrics.get(CALLS_METRIC) or ()))
            for address, ws in dask_scheduler.workers.items()}


class CallWatch:
    """Finds the calls of run ``run_id`` over ``timeout`` seconds and the workers silent for
    ``heartbeat_timeout`` seconds, and stops their workers.

    Examples
    --------
    >>> from acme_dask.watch import CallWatch
    >>> watch = CallWatch(client, run_id, timeout=30, heartbeat_timeout=120)  # doctest: +SKIP
    >>> stops = watch.check(lambda index: True)                            # doctest: +SKIP
    """

    def __init__(self, client: Any, run_id: str, timeout: float | None,
                 heartbeat_timeout: float) -> None:
        self.client, self.run_id = client, run_id
        self.timeout, self.heartbeat_timeout = timeout, heartbeat_timeout
        self._every = WATCH_SECONDS if timeout is not None else IDLE_SECONDS
        self._last = time.monotonic()
        self._stopped: set[str] = set()      # workers asked to stop (their address)

    def due(self) -> bool:
        """True once per ``WATCH_SECONDS`` (``IDLE_SECONDS`` without a time limit)."""
        now = time.monotonic()
        if now - self._last < self._every:
            return False
        self._last = now
        return True

    def check(self, in_flight: Any) -> list[Stop]:
        """The workers to stop now; ``in_flight(index)`` tells whether the run still waits
        for call ``index`` (a call already given up on is not stopped twice)."""
        try:
            reports = self.client.run_on_scheduler(worker_reports)
        except Exception as exc:  # noqa: BLE001 - the health check reports a lost scheduler
            log.debug(f"could not read the workers' heartbeats: {exc!r}")
            return []
        stops = []
        for address, (silent, nanny, calls) in reports.items():
            if address in self._stopped:
                continue
            stop = self._over_limit(address, nanny, silent, calls, in_flight)
            if stop is not None:
                self._stopped.add(address)
                stops.append(stop)
        return stops

    def _over_limit(self, address: str, nanny: Any, silent: float, calls: list[Any],
                    in_flight: Any) -> Stop | None:
        limit = self.timeout
        for run_id, index, seconds in calls:
            if (limit is not None and run_id == self.run_id and seconds + silent > limit
                    and in_flight(index)):
                return Stop(address, nanny, index, TIMEOUT,
                            f"the call ran longer than timeout={limit:g} s and its worker "
                            f"{address} was killed")
        if silent > self.heartbeat_timeout:
            mine = [index for run_id, index, _ in calls if run_id == self.run_id]
            return Stop(address, nanny, mine[0] if mine else None, LOST_WORKER,
                        f"worker {address} sent no heartbeat for {silent:.0f} s "
                        f"(stopped or hung) and was killed")
        return None

    def kill(self, stop: Stop) -> None:
        """Kill the worker of ``stop`` through its nanny (or ask it to exit)."""
        from .worker import exit_now, kill_worker_process

        try:
            if stop.nanny:
                self.client.run(kill_worker_process, workers=[stop.address], nanny=True,
                                wait=False)
            else:
                self.client.run(exit_now, workers=[stop.address], wait=False)
        except Exception as exc:  # noqa: BLE001 - the worker may be gone already
            log.debug(f"stopping worker {stop.address} failed: {exc!r}")

    def forget(self, address: str) -> None:
        """``address`` left the cluster: a new worker there is watched again."""
        self._stopped.discard(address)
