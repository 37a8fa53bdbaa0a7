"""ParallelMap's own parameters, declared once: :data:`PARAMETERS`.

Each row gives a parameter's name, default, numpydoc type, check, the first line of its
documentation, and what kind of parameter it is. Everything else is derived from the
table: the :class:`Settings` record, :func:`validate`, the names handed to executors
(:data:`BACKEND_PARAMETERS`), the names reserved against the user's function
(:data:`RESERVED`), the names forwarded to it (:data:`FORWARDED`), and the reference
table of the documentation (:func:`reference_table`). ``ParallelMap``'s signature and
docstring stay written out, for IDEs and ACME's users; a test holds them to the table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .checks import (  # noqa: F401 - check_n_inputs is imported from here by callers
    check_backend_options,
    check_cleanup_threshold_days,
    check_flag,
    check_logfile,
    check_mem_per_worker,
    check_n_inputs,
    check_n_workers,
    check_name,
    check_output_dir,
    check_partition,
    check_progress,
    check_rerun,
    check_result_dtype,
    check_result_shape,
    check_retries,
    check_setup_timeout,
    check_stop_client,
    check_timeout,
    check_verbose,
)
from .records import ExecutorSettings
from .reuse import check_reuse
from .seeding import check_seed

#: ACME had the parameter (its meaning and default are ACME's).
ACME = "acme"
#: A newer keyword of ParallelMap's own; a function parameter of the same name cannot be
#: given through ParallelMap (``acme_core.reserved`` says how to bind it).
RESERVED_KIND = "reserved"
#: A newer keyword that goes to the function when the function has a parameter of that
#: name, as ACME passed every keyword it did not know on.
FORWARDED_KIND = "forwarded"
_NOTHING = object()


@dataclass(frozen=True)
class Parameter:
    """One parameter of ``ParallelMap``.

    Examples
    --------
    >>> from acme_core.parameters import BY_NAME
    >>> BY_NAME["n_workers"].default, BY_NAME["n_workers"].backend
    ('auto', True)
    """

    name: str
    default: Any
    #: The numpydoc type of the docstring entry, before ", default ...".
    type: str
    check: Callable[[Any], Any]
    #: The first sentence of the docstring entry, and the reference table's text.
    summary: str
    kind: str = ACME
    #: Handed to executors (``ExecutorSettings``); a backend whose ``ExecutorSpec.parameters``
    #: lacks it warns when it is not the default.
    backend: bool = False
    #: A value that only turns something off, so a backend without the parameter takes it
    #: without a warning (SyNCoPy passes ``setup_interactive=False`` everywhere).
    harmless: Any = _NOTHING

    @property
    def default_text(self) -> str:
        """The default as the docstring writes it: ``"auto"``, ``None``, ``60``."""
        return f'"{self.default}"' if isinstance(self.default, str) else repr(self.default)


def _flag(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return check_flag(name, value)
    return check


def _name_of(parameter: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        return check_name(parameter, value)
    return check


P = Parameter
#: Every parameter of ``ParallelMap`` after ``func, *args``, in signature order.
PARAMETERS: tuple[Parameter, ...] = (
    P("n_inputs", "auto", '"auto" or int', check_n_inputs,
      'Number of calls; "auto" infers it from the sequence arguments.'),
    P("write_worker_results", True, "bool", _flag("write_worker_results"),
      "True: results go to disk and ``compute()`` returns file paths."),
    P("output_dir", None, "str", check_output_dir, "Where results go; None: a new "
      "``ACME_YYYYMMDD-hhmmss-ffffff`` in the current working directory."),
    P("result_shape", None, "tuple", check_result_shape,
      "Stack each call's first return value into one array of this shape; its single "
      "``None`` is the axis of calls."),
    P("result_dtype", "float", "str", check_result_dtype,
      "NumPy dtype of the stacked array (float64)."),
    P("single_file", False, "bool", _flag("single_file"),
      'ACME\'s flag for one HDF5 file for all results (storage ``"hdf5-single"``).'),
    P("write_pickle", False, "bool", _flag("write_pickle"),
      'ACME\'s flag for one pickle file per call (storage ``"pickle"``).'),
    P("partition", "auto", "str", check_partition, 'SLURM partition; "auto": the backend '
      "chooses (``slurm``: the cluster's default partition, ``slurm-esi``: from the measured "
      "memory of sampled calls).", backend=True),
    P("n_workers", "auto", 'int or "auto"', check_n_workers,
      'Worker processes or SLURM jobs; "auto": the backend chooses (the local CPUs, or as '
      "many jobs as there are calls up to a limit).", backend=True),
    P("mem_per_worker", "auto", "str", check_mem_per_worker,
      'Memory per worker such as ``"4GB"``; "auto": the backend\'s default (on SLURM the '
      "partition's memory per CPU).", backend=True),
    P("setup_timeout", 60, "float", check_setup_timeout,
      "Seconds to wait for SLURM workers to start.", backend=True),
    P("setup_interactive", True, "bool", _flag("setup_interactive"),
      "On a terminal, ask whether to keep waiting when not every worker started within "
      "``setup_timeout`` (without a terminal: go on with the workers that came).",
      backend=True, harmless=False),
    P("stop_client", "auto", 'bool or "auto"', check_stop_client,
      'Stop the workers at the end of the run: "auto" stops those the run started and '
      "leaves a client you started; True stops either; False keeps them for the next run.",
      backend=True),
    P("verbose", None, "bool", check_verbose,
      "None: INFO messages, True: DEBUG, False: warnings only (and no progress bar)."),
    P("dryrun", False, "bool", _flag("dryrun"),
      "Run one sampled call in this process first and report its time and memory."),
    P("logfile", None, "bool or str", check_logfile,
      "None: a log file beside on-disk results; True/False force it on/off; str: this file."),
    P("cleanup_threshold_days", None, "int", check_cleanup_threshold_days,
      "Before a run with ``output_dir=None``, delete our ``ACME_*`` runs in the current "
      "directory not modified for this many days (never one that is running)."),
    P("backend", "auto", "str", _name_of("backend"),
      "Executor name (``python -m acme_core plugins`` lists them); \"auto\" lets installed "
      "plugins claim the run (a running dask client, an HPC site) and falls back to the "
      "local default.", RESERVED_KIND),
    P("storage", "auto", "str", _name_of("storage"),
      'Storage name; "auto" follows ACME\'s flags.', RESERVED_KIND),
    P("backend_options", None, "dict", check_backend_options,
      "Backend-specific settings (``python -m acme_core options BACKEND`` lists them); "
      "unknown keys are an error that lists the accepted ones.", RESERVED_KIND),
    P("retries", 0, "int", check_retries,
      "Re-runs of a call whose function raised (calls lost with a dead worker are always "
      "re-submitted, up to 3 times).", RESERVED_KIND),
    P("rerun", "missing", '{"missing", "changed", "all"}', check_rerun,
      "On an ``output_dir`` that holds results (or at a second ``compute()``): which calls "
      "with a result run again.", RESERVED_KIND),
    P("progress", None, "bool", check_progress,
      "Show a progress bar (done, failed, retried, running calls): None shows it where a "
      "person watches (a terminal, or Jupyter's widget) unless ``verbose=False``; "
      "True/False force it on or off.", RESERVED_KIND),
    P("seed", None, "int or False", check_seed,
      "The run's entropy: call ``i`` draws from its own stream, made of this entropy and "
      "``i`` only (``acme_core.rng()``; Python's ``random`` and ``numpy.random`` are seeded "
      "from it before each call).", FORWARDED_KIND),
    P("reuse", None, "str", check_reuse,
      "A result-store directory: calls already computed there (same code version, "
      "arguments and random stream) are taken, not computed, and new results are added.",
      FORWARDED_KIND),
    P("timeout", None, "float or None", check_timeout,
      "Seconds a single call may run; a call running longer has its worker killed and fails "
      'with kind ``"timeout"``, the other calls go on.', RESERVED_KIND),
)
del P

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
#: Every parameter's default.
DEFAULTS: dict[str, Any] = {p.name: p.default for p in PARAMETERS}
#: ACME's ParallelMap parameters an executor may use; others are ignored with a warning.
BACKEND_PARAMETERS: tuple[str, ...] = tuple(p.name for p in PARAMETERS if p.backend)
#: ParallelMap's newer keywords a function's parameter of the same name cannot get.
RESERVED: tuple[str, ...] = tuple(p.name for p in PARAMETERS if p.kind == RESERVED_KIND)
#: ParallelMap's newer keywords that go to a function having a parameter of that name.
FORWARDED: tuple[str, ...] = tuple(p.name for p in PARAMETERS if p.kind == FORWARDED_KIND)

#: ParallelMap's validated parameters: one field per row of :data:`PARAMETERS`.
Settings = dataclasses.make_dataclass(
    "Settings", [(p.name, Any, dataclasses.field(default=p.default)) for p in PARAMETERS])
Settings.__module__ = __name__
Settings.__doc__ = "ParallelMap's validated parameters (one field per row of PARAMETERS)."


def given_parameters(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ParallelMap's parameters in ``scope`` (its ``__init__``'s ``locals()``).

    Examples
    --------
    >>> from acme_core.parameters import given_parameters
    >>> given_parameters({"n_workers": 4, "func": print})
    {'n_workers': 4}
    """
    return {name: scope[name] for name in BY_NAME if name in scope}


def validate(**given: Any) -> Settings:
    """Check every ParallelMap parameter (defaults for those not given); returns a
    :class:`Settings`.

    Examples
    --------
    >>> from acme_core.parameters import validate
    >>> validate(n_workers=4).n_workers
    4
    >>> validate(n_workers=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `n_workers` has to be 'auto' or an integer >= 1...
    """
    unknown = sorted(set(given) - set(BY_NAME))
    if unknown:
        raise TypeError(f"not a parameter of ParallelMap: {', '.join(unknown)}")
    values = {p.name: p.check(given.get(p.name, p.default)) for p in PARAMETERS}
    if values["write_pickle"] and values["single_file"]:
        raise ValueError(
            "Pickling of results does not support single output file creation. Pass either "
            "write_pickle=True or single_file=True, not both."
        )
    # np.inf in result_shape needs a storage on disk
    check_result_shape(values["result_shape"], on_disk=values["write_worker_results"])
    return Settings(**values)


def backend_values(settings: Any) -> dict[str, Any]:
    """The backend parameters (:data:`BACKEND_PARAMETERS`) with their validated values.

    Examples
    --------
    >>> from acme_core.parameters import backend_values, validate
    >>> backend_values(validate(n_workers=2))["n_workers"]
    2
    """
    return {name: getattr(settings, name) for name in BACKEND_PARAMETERS}


def executor_settings(settings: Any) -> ExecutorSettings:
    """What an executor's factory gets: the backend parameters, ``backend_options`` and
    ``timeout``.

    Examples
    --------
    >>> from acme_core.parameters import executor_settings, validate
    >>> executor_settings(validate(timeout=5)).timeout
    5.0
    """
    return ExecutorSettings(**backend_values(settings), options=settings.backend_options,
                            timeout=settings.timeout)


def ignored_by(uses: tuple[str, ...], settings: Any) -> list[str]:
    """The backend parameters set to a non-default value that a backend using only
    ``uses`` ignores (a value listed as harmless does not count).

    Examples
    --------
    >>> from acme_core.parameters import ignored_by, validate
    >>> ignored_by(("n_workers",), validate(partition="8GBXS", setup_interactive=False))
    ['partition']
    """
    ignored = []
    for name in BACKEND_PARAMETERS:
        value, row = getattr(settings, name), BY_NAME[name]
        if name not in uses and value != row.default and value != row.harmless:
            ignored.append(name)
    return ignored


def reference_table(backends: Mapping[str, Any]) -> str:
    """The documentation's table of ParallelMap's parameters (Markdown), with the
    ``backends`` (name to ``ExecutorSpec``) that use each backend parameter.

    Examples
    --------
    >>> from acme_core.parameters import reference_table
    >>> print(reference_table({}).splitlines()[2])  # doctest: +ELLIPSIS
    | `n_inputs` | `"auto"` | all | Number of calls; "auto" infers it from the sequence arguments. |
    """
    rows = ["| parameter | default | used by | meaning |", "|---|---|---|---|"]
    for p in PARAMETERS:
        users = "all" if not p.backend else ", ".join(
            f"`{name}`" for name, spec in sorted(backends.items())
            if p.name in spec.parameters) or "none installed"
        summary = p.summary.replace("|", "\\|")
        rows.append(f"| `{p.name}` | `{p.default_text}` | {users} | {summary} |")
    return "\n".join(rows)
