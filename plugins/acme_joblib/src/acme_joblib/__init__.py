"""acme-joblib: the default local backend of acme-core (``backend="joblib"``)."""

from .executor import JoblibExecutor

__all__ = ["JoblibExecutor"]
