"""What a ``ParallelMap`` is made of, chosen from its settings before any work starts: the
backend and the storage by name, what their factories get, the output directory and the
log file. Every contradiction between settings is an error here, naming the fix."""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass

from . import manifest, plugins
from . import output_dir as outdir
from .arguments import CallPlan
from .mainguard import IMPORTS_MAIN, check_main_guard
from .parameters import Settings, executor_settings, ignored_by
from .records import ExecutorSettings, ExecutorSpec, StorageSettings, StorageSpec

log = logging.getLogger("acme_core")


@dataclass(frozen=True)
class Choice:
    """The backend and storage of a run, and what the executor's factory gets."""

    backend: str
    executor_spec: ExecutorSpec
    storage: str
    storage_spec: StorageSpec
    executor_settings: ExecutorSettings


def choose(s: Settings) -> Choice:
    """The backend and storage ``s`` names, checked against the other settings.

    Examples
    --------
    >>> from acme_core.choices import choose
    >>> from acme_core.parameters import validate
    >>> choice = choose(validate(write_worker_results=False, backend="threads"))
    >>> choice.backend, choice.storage
    ('threads', 'memory')
    """
    backend, executor_spec = _choose_backend(s)
    if IMPORTS_MAIN in executor_spec.capabilities:
        check_main_guard(backend)
    storage, storage_spec = _choose_storage(s)
    _check_backend_settings(backend, executor_spec, s)
    settings = executor_settings(s)
    if executor_spec.check is not None:
        executor_spec.check(settings)  # e.g. partition= against the cluster's
    return Choice(backend, executor_spec, storage, storage_spec, settings)


def storage_settings(s: Settings, plan: CallPlan, output_dir: str | None) -> StorageSettings:
    """What the storage's factory gets."""
    return StorageSettings(
        func_name=outdir.safe_name(plan.func_name), n_calls=plan.n_inputs,
        output_dir=output_dir,
        result_shape=s.result_shape if not (s.write_pickle and s.storage == "auto") else None,
        result_dtype=s.result_dtype, pass_task_id=plan.pass_task_id)


def output_path(s: Settings, spec: StorageSpec) -> str | None:
    """The run's directory (None for in-memory results); an existing one must be empty or
    hold a run of ours."""
    if not spec.on_disk:
        if s.output_dir is not None:
            log.warning("Output directory specification has no effect if "
                        "`write_worker_results` is `False`.")
        return None
    if s.output_dir is None:
        return outdir.default_path()
    if not manifest.exists(s.output_dir):
        outdir.check_available(s.output_dir)
    return s.output_dir


def log_path(logfile: bool | str | None, output_dir: str | None, func_name: str) -> str | None:
    """The log file ``logfile=`` asks for: beside on-disk results by default."""
    if logfile is False or (logfile is None and output_dir is None):
        return None
    if isinstance(logfile, str):
        if os.path.exists(logfile):
            log.warning(f"Log file {logfile} exists; appending to it.")
        return logfile
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(output_dir or os.getcwd(), f"ACME_{func_name}_{stamp}.log")


def _choose_backend(s: Settings) -> tuple[str, ExecutorSpec]:
    name = s.backend
    if name == "auto":
        claim = plugins.resolve_auto_backend()
        log.debug(f"backend='auto' resolved to {claim.backend!r}: {claim.reason}")
        name = claim.backend
    return name, plugins.get_executor_spec(name)


def _implied_storage(s: Settings) -> str:
    if not s.write_worker_results:
        if s.single_file:
            log.warning("Generating a single output file only possible if "
                        "`write_worker_results` is `True`; single_file is ignored.")
        if s.write_pickle:
            log.warning("Pickling of results only possible if `write_worker_results` is `True`; "
                        "write_pickle is ignored.")
        return "memory"
    if s.write_pickle:
        if s.result_shape is not None:
            log.warning("Pickling of results does not support output array shape "
                        "specification; result_shape is ignored.")
        return "pickle"
    return "hdf5-single" if s.single_file else "hdf5"


def _choose_storage(s: Settings) -> tuple[str, StorageSpec]:
    if s.storage == "auto":
        name = _implied_storage(s)
        return name, plugins.get_storage_spec(name)
    spec = plugins.get_storage_spec(s.storage)
    if spec.on_disk and not s.write_worker_results:
        raise ValueError(
            f"`storage={s.storage!r}` writes results to disk, but `write_worker_results=False` "
            f"asks for results in memory. Drop one of the two.")
    if not spec.on_disk and (s.single_file or s.write_pickle):
        raise ValueError(
            f"`storage={s.storage!r}` keeps results in memory, but single_file/write_pickle ask "
            f"for files. Drop one of the two.")
    for flag, implied in (("single_file", "hdf5-single"), ("write_pickle", "pickle")):
        if getattr(s, flag) and s.storage != implied:
            raise ValueError(f"`{flag}=True` means storage {implied!r}, but `storage="
                             f"{s.storage!r}` was given. Drop one of the two.")
    return s.storage, spec


def _check_backend_settings(name: str, spec: ExecutorSpec, s: Settings) -> None:
    unknown = sorted(set(s.backend_options) - set(spec.options))
    if unknown:
        accepted = ", ".join(repr(k) for k in spec.options) or "none"
        raise ValueError(
            f"backend {name!r} does not accept `backend_options` key(s) "
            f"{', '.join(repr(k) for k in unknown)}; accepted: {accepted}.")
    if s.timeout is not None and "timeout" not in spec.capabilities:
        log.warning(f"`timeout={s.timeout!r}` has no effect on backend {name!r} (it cannot "
                    f"stop a single call) and is ignored.")
    for param in ignored_by(spec.parameters, s):
        log.warning(f"`{param}={getattr(s, param)!r}` has no effect on backend {name!r} and is "
                    f"ignored.")
