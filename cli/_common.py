"""Pieces every ``ohgw-optuna`` command shares: where study files live, the one-line error exit,
the ``--budget KEY=VALUE`` parser and a study file with the command line's overrides (here, so
that ``main`` and ``cluster`` need not import each other)."""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from optuna_ohgw.storage import StorageError
from optuna_ohgw.studyfile import STUDY_DIRS as STUDY_DIRS
from optuna_ohgw.studyfile import (
    StudyConfig,
    StudyFileError,
    apply_overrides,
    find_study_file,
    load_study_file,
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input; 1: the run
    failed)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def storage_patience_option(command: Any) -> Any:
    """``--storage-patience SECONDS`` (``$OHGW_STORAGE_PATIENCE``): how long workers wait out
    an unreachable storage proxy before they give up."""
    return click.option(
        "--storage-patience",
        type=float,
        default=None,
        metavar="SECONDS",
        help="How long a worker waits for an unreachable storage proxy to come back before it "
        "gives up (default: $OHGW_STORAGE_PATIENCE, else 300).",
    )(command)


def set_storage_patience(seconds: float | None) -> None:
    """Pass ``--storage-patience`` on to this process's storages and its worker processes."""
    from optuna_ohgw.patient_storage import PATIENCE_ENV

    if seconds is None:
        return
    if not seconds >= 0:
        raise StudyFileError(f"--storage-patience: must be >= 0 seconds, got {seconds}")
    os.environ[PATIENCE_ENV] = str(seconds)


def parse_budget(items: tuple[str, ...]) -> dict[str, Any]:
    """``("n_trials=40", ...)`` -> ``{"n_trials": "40"}``; values are checked by
    :func:`optuna_ohgw.studyfile.apply_overrides`."""
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise StudyFileError(f"--budget {item}: write KEY=VALUE, e.g. n_trials=40")
        pairs[key.strip()] = value.strip()
    return pairs


def bench_url(task: str) -> str:
    """The bench grid's default storage: ``journal:runs/bench/TASK.journal``."""
    return f"journal:{pathlib.Path('runs') / 'bench' / f'{task}.journal'}"


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing errors into one line on stderr and exit code 2."""
    from optuna_ohgw.artifact_store import ArtifactStoreError
    from optuna_ohgw.tasks import DatasetMissingError

    try:
        yield
    except (StudyFileError, StorageError, DatasetMissingError, ArtifactStoreError) as err:
        fail(str(err))


def study_config(
    study: str, seed: int | None, no_ohgw: bool, budget: tuple[str, ...]
) -> StudyConfig:
    """The study file named ``study`` with ``--seed``, ``--no-ohgw`` and ``--budget`` applied."""
    config = load_study_file(find_study_file(study, STUDY_DIRS))
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["seed"] = seed
    if no_ohgw:
        overrides["no_ohgw"] = True
    if budget:
        overrides["budget"] = parse_budget(budget)
    return apply_overrides(config, overrides)
