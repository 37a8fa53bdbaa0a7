"""acme-core hook implementations of acme-joblib (the entry point ``joblib``)."""

from __future__ import annotations

from acme_core import AutoClaim, ExecutorSpec, hookimpl


@hookimpl
def acme_core_executors() -> list[ExecutorSpec]:
    """Backend ``"joblib"``."""
    from .executor import OPTIONS, JoblibExecutor

    return [ExecutorSpec(
        name="joblib",
        factory=JoblibExecutor,
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
