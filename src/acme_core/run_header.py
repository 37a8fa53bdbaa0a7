"""The run's description on disk: the manifest's first line and the run marker.

Both are written from one :class:`RunHeader`, and a run directory is taken up again only
when the run it holds has the same function, number of calls and storage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from . import manifest, previous_names
from . import output_dir as outdir


@dataclass(frozen=True)
class RunHeader:
    """What identifies one run on disk.

    Examples
    --------
    >>> from acme_core.run_header import RunHeader
    >>> header = RunHeader("r1", "f", 4, "hdf5", "joblib", created="2026-01-01T00:00:00")
    >>> header.manifest_line()["n_inputs"], header.marker()["backend"]
    (4, 'joblib')
    """

    run_id: str
    func: str
    n_inputs: int
    storage: str
    backend: str
    created: str = field(default_factory=manifest.now)

    #: The fields an existing run must share with this one to be continued, and their
    #: names in messages.
    SAME_RUN = (("func", "function name"), ("n_inputs", "number of calls"),
                ("storage", "storage"))

    def stamped(self) -> RunHeader:
        """The same header, created now."""
        return replace(self, created=manifest.now())

    def manifest_line(self) -> dict[str, Any]:
        """The manifest's first line."""
        return {"acme_core_manifest": manifest.FORMAT, "func": self.func,
                "n_inputs": self.n_inputs, "storage": self.storage, "run_id": self.run_id,
                "created": self.created}

    def marker(self) -> dict[str, Any]:
        """The run marker ``.acme_run.json`` of a new run directory."""
        return {"acme_core_run": 1, "run_id": self.run_id, "func": self.func,
                "n_inputs": self.n_inputs, "storage": self.storage, "backend": self.backend,
                "created": self.created}

    def check_same_run(self, output_dir: str) -> None:
        """Refuse to continue a run of another function, number of calls or storage: its
        results cannot be matched call by call (changed arguments or code are handled per
        call, see :mod:`acme_core.rerun`)."""
        old = manifest.read_header(output_dir)
        if os.path.exists(previous_names.find(output_dir, outdir.MARKER)):
            outdir.read_marker(output_dir)  # a damaged marker: a clear error now, not in load()
        new = self.manifest_line()
        for key, what in self.SAME_RUN:
            if old.get(key) != new[key]:
                raise ValueError(
                    f"`output_dir` {output_dir!r} holds a run with a different {what} "
                    f"({old.get(key)!r}, now {new[key]!r}); results of two different runs "
                    f"are never mixed. Pass a new output_dir.")
