"""acme-slurm: backend ``"slurm-array"`` of acme-core, calls in SLURM job arrays.

Examples
--------
>>> from acme_slurm import EscalationPolicy
>>> EscalationPolicy(max_attempts=3).memory_factor
2.0
"""

from .escalation import EscalationPolicy, Limits, Request, TaskEnd, classify
from .executor import ArrayExecutor

__all__ = ["ArrayExecutor", "EscalationPolicy", "Limits", "Request", "TaskEnd", "classify"]
