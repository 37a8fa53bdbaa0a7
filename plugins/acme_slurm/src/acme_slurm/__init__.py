"""acme-slurm: backend ``"slurm-array"`` of acme-core, calls in SLURM job arrays.

Examples
--------
>>> from acme_slurm import EscalationPolicy
>>> EscalationPolicy(max_attempts=3).memory_factor
2.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acme_core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .escalation import EscalationPolicy, Limits, Request, TaskEnd, classify
    from .executor import ArrayExecutor

# name -> module, imported on first use: acme-core imports this package for every
# ParallelMap (its plugin module lives here), and these names are needed only when used
_LAZY = {
    "ArrayExecutor": "executor",
    "EscalationPolicy": "escalation",
    "Limits": "escalation",
    "Request": "escalation",
    "TaskEnd": "escalation",
    "classify": "escalation",
}

__all__ = ["ArrayExecutor", "EscalationPolicy", "Limits", "Request", "TaskEnd", "classify"]

__getattr__ = lazy_exports(__name__, _LAZY)
