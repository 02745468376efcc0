"""Claiming a paused configuration: one atomic WAITING -> RUNNING move per trial.

Its own module because both the worker loop (:mod:`optuna_ohgw.schedulers._loop`) and the
recovery of dead workers (:mod:`optuna_ohgw.schedulers._recovery`) claim trials, and the loop
imports the recovery.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from typing import Any

import optuna
import sqlalchemy
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import ownership


def claim(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Atomically move a WAITING trial to RUNNING; exactly one racing worker gets True.

    This is Optuna's own enqueue pop (``SELECT ... FOR UPDATE`` on PostgreSQL/MySQL, first log
    wins on the journal), so two workers never resume the same paused configuration. SQLite has
    no ``SELECT ... FOR UPDATE`` and pysqlite runs the read outside the write transaction, so
    there Optuna's pop lets two racing processes both win (our race test caught it); on SQLite
    the claim is one conditional ``UPDATE ... WHERE state = WAITING`` instead.
    """
    storage = compat.storage_of(study)
    tid = compat.trial_id(study, trial)
    claimant = ownership.claimant_key()
    try:
        # Recorded before the claim, so that a process killed between the claim and the owner
        # record is still a process recovery can test (see ownership).
        storage.set_trial_system_attr(tid, claimant, time.time())
        sqlite = compat.sqlite_trial_table(storage)
        won = (
            _claim_sqlite(*sqlite, tid)
            if sqlite is not None
            else storage.set_trial_state_values(tid, state=TrialState.RUNNING)
        )
    except UpdateFinishedTrialError:
        won = False
    if not won:
        with contextlib.suppress(UpdateFinishedTrialError):
            storage.set_trial_system_attr(tid, claimant, None)
    return won


def _claim_sqlite(storage: Any, table: Any, trial_id: int) -> bool:
    # Unfinished trials are never served from _CachedStorage's cache, so this direct update is
    # seen by every later read, as Optuna's own set_trial_state_values would be.
    statement = (
        sqlalchemy.update(table)
        .where(table.trial_id == trial_id, table.state == TrialState.WAITING)
        .values(state=TrialState.RUNNING, datetime_start=datetime.datetime.now())
    )
    with storage.engine.begin() as connection:
        return connection.execute(statement).rowcount == 1
