"""How a run's arguments travel to the workers: decided here, once per run.

Three ways, chosen from the backend's ``needs_pickle`` and the size of the split arguments:

- the backend runs calls in this process (``needs_pickle=False``): the program holds every
  split argument, nothing is pickled;
- small split arguments (up to ``INLINE_SPLIT_BYTES`` in all): they travel inside the
  pickled program, once per worker, and batches carry only call indices;
- large split arguments: each call's values are pickled once, and a batch carries the bytes
  of its own calls only; plain scalars (ints, floats, strings, 1-D numeric arrays) are not
  pickled per call ahead: a batch carries its calls' values, the replay file holds the
  arguments themselves.

The bytes made here (proven picklable before anything starts) are the bytes that are sent,
and the bytes the run keeps for replaying a call.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from . import replays, reuse
from .arguments import CallPlan
from .calls import CallProgram, ResultWriter
from .drawing import cannot_draw
from .pickling import pickle_calls, pickle_program, plain_calls
from .records import CallBatch, SplitColumns
from .seeding import CallStreams

log = logging.getLogger("acme_core")

#: Split arguments up to this size travel once per worker inside the run's program;
#: larger ones travel with the batches that need them.
INLINE_SPLIT_BYTES = 16 * 1024**2


class Payloads:
    """The run's call program and what each batch carries.

    Parameters
    ----------
    plan : CallPlan
        The calls and their arguments.
    run_id : str
        The run the program belongs to.
    writer : ResultWriter
        The storage's worker-side writer.
    around : object, optional
        Runs each call (random streams, result store); see :class:`CallProgram`.
    needs_pickle : bool
        The backend ships the program to other processes.
    backend : str
        The backend's name, for the error naming what cannot be pickled.

    Examples
    --------
    >>> from acme_core.arguments import build_call_plan
    >>> from acme_core.payloads import Payloads
    >>> plan = build_call_plan(pow, ([1, 2, 3], 2), {}, "auto", 1024)
    >>> payloads = Payloads(plan, "r1", writer=None, needs_pickle=True, backend="joblib")
    >>> payloads.batch([0, 2], attempt=1).split is None   # small: inside the program
    True
    >>> len(payloads.program_bytes) > 0
    True
    """

    def __init__(self, plan: CallPlan, run_id: str, writer: ResultWriter, around: Any = None,
                 needs_pickle: bool = False, backend: str = "") -> None:
        self.plan = plan
        inline = not needs_pickle or _small(plan)
        slots, constants = plan.layout()
        self.program = CallProgram(
            run_id, plan.func, slots, constants, writer, plan.pass_task_id,
            tuple(a.value for a in plan.split_arguments) if inline else None, around=around)
        #: The program's cloudpickle bytes (None when the backend runs calls here).
        self.program_bytes: bytes | None = None
        #: Each call's pickled split values (None when they travel inside the program).
        self.call_blobs: list[bytes] | None = None
        #: Large split arguments of plain scalars: batches carry their values, which the
        #: backend pickles with the batch (they cannot fail to pickle), so the parent keeps
        #: no bytes per call.
        self._plain = needs_pickle and not inline and plain_calls(plan)
        if needs_pickle:
            self.program_bytes = pickle_program(self.program, plan, backend)
            if not inline and not self._plain:
                self.call_blobs = pickle_calls(plan, backend)

    @property
    def n_calls(self) -> int:
        """The number of calls of the run."""
        return self.plan.n_inputs

    def batch(self, indices: Sequence[int], attempt: int) -> CallBatch:
        """The batch of calls ``indices``, carrying what the program lacks of them."""
        run_id, chosen = self.program.run_id, tuple(indices)
        if self.program.split is not None:
            return CallBatch(run_id, chosen, None, False, attempt)
        if self.call_blobs is not None:
            blobs = itemgetter(*chosen)(self.call_blobs) if len(chosen) > 1 else \
                (self.call_blobs[chosen[0]],)  # itemgetter: one C-level pass per batch
            return CallBatch(run_id, chosen, blobs, True, attempt)
        if self._plain and len(chosen) > 1 and self.plan.split_arguments:
            pick = itemgetter(*chosen)  # one C-level pass per argument, no tuple per call
            columns = tuple(pick(a.value) for a in self.plan.split_arguments)
            return CallBatch(run_id, chosen, SplitColumns(columns), False, attempt)
        return CallBatch(run_id, chosen, tuple(self.plan.split_values(i) for i in chosen),
                         False, attempt)

    def split_values(self, index: int) -> tuple[Any, ...]:
        """Call ``index``'s own argument values."""
        return self.plan.split_values(index)

    def describe(self, index: int) -> str:
        """A short repr of call ``index``'s arguments (failure rows)."""
        return self.plan.describe_call(index)

    def save_for_replay(self, output_dir: str, entropy: int | bool) -> None:
        """Keep what replaying a call needs in ``output_dir`` (the bytes sent, if any)."""
        columns = [a.value for a in self.plan.split_arguments] if self._plain else None
        replays.save(output_dir, self.program, self.program_bytes, self.call_blobs, entropy,
                     self.n_calls, sys.path, columns)


def _small(plan: CallPlan) -> bool:
    return sum(arg.size for arg in plan.split_arguments) <= INLINE_SPLIT_BYTES


def call_runner(plan: CallPlan, entropy: int | bool, store: str | os.PathLike[str] | None,
                output_dir: str | None) -> Any:
    """What runs each call: its own random streams (unless ``seed=False`` or no call can
    draw), through the result store of ``reuse=`` (when given); None: a plain call."""
    split = plan.split_arguments
    streams = None if entropy is False or cannot_draw(
        plan.func, [a.value for a in plan.broadcast_arguments], [a.value for a in split],
        [a.element_types for a in split]) else CallStreams(entropy)
    if store is None:
        return streams
    runner, found = reuse.runner(store, plan.func, plan, streams, entropy, output_dir)
    log.info(f"Result store {store}: {found} of {plan.n_inputs} calls are stored and are "
             f"taken, not computed.")
    return runner
