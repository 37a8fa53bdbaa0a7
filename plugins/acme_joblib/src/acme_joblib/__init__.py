"""acme-joblib: the default local backend of acme-core (``backend="joblib"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from acme_core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .executor import JoblibExecutor

__all__ = ["JoblibExecutor"]
# imported on first use: acme-core imports this package for every ParallelMap
__getattr__ = lazy_exports(__name__, {"JoblibExecutor": "executor"})
