"""acme-core hook implementations of acme-joblib (the entry point ``joblib``)."""

from __future__ import annotations

from acme_core import AutoClaim, ExecutorSpec, hookimpl

#: ``backend_options`` of ``"joblib"``. Here, not in the executor's module: loading the
#: plugin imports neither joblib nor the executor.
OPTIONS = {
    "idle_timeout": "seconds an idle worker stays alive for the next run (default 300)",
    "heartbeat_timeout": "seconds of silence before a hung worker is killed (default 120)",
}


@hookimpl
def acme_core_executors() -> list[ExecutorSpec]:
    """Backend ``"joblib"``."""
    return [ExecutorSpec(
        name="joblib",
        factory="acme_joblib.executor:JoblibExecutor",
        description="local worker processes (joblib's loky pool, reused across runs)",
        needs_pickle=True,
        parameters=("n_workers", "stop_client"),
        options=OPTIONS,
        capabilities=frozenset({"processes", "kill-worker", "cancel", "timeout"}),
    )]


@hookimpl
def acme_core_claim_auto() -> AutoClaim:
    """The fallback of ``backend="auto"``: every other claim outranks it."""
    return AutoClaim(backend="joblib", priority=0, reason="the default local backend")
