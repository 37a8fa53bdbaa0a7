"""acme-joblib: the default local backend of acme-core (``backend="joblib"``)."""

from typing import Any

__all__ = ["JoblibExecutor"]


def __getattr__(name: str) -> Any:
    # imported on first use: acme-core loads this package's plugin module for every
    # ParallelMap, and the executor's imports (joblib) are needed only by a joblib run
    if name == "JoblibExecutor":
        from .executor import JoblibExecutor

        return JoblibExecutor
    raise AttributeError(f"module 'acme_joblib' has no attribute {name!r}")
