"""The worker loop of promotion-type schedulers (Optuna's ``optimize`` cannot pause trials)."""

from __future__ import annotations

import datetime
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import optuna
import sqlalchemy
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import lineage
from optuna_ohgw.checkpoint import CheckpointStore
from optuna_ohgw.schedulers._base import BasePromotionScheduler
from optuna_ohgw.schedulers._proposal import PROPOSAL

_logger = logging.getLogger("optuna_ohgw")

NewAllowed = Callable[[Sequence[FrozenTrial]], bool]


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
    sqlite = compat.sqlite_trial_table(storage)
    if sqlite is not None:
        return _claim_sqlite(*sqlite, tid)
    try:
        return storage.set_trial_state_values(tid, state=TrialState.RUNNING)
    except UpdateFinishedTrialError:
        return False


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


def run_promotion_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    scheduler: BasePromotionScheduler,
    new_allowed: NewAllowed,
    *,
    budget_spent: NewAllowed = lambda trials: False,
    deadline: float | None = None,
    poll_seconds: float = 0.5,
    max_consecutive_failures: int = 5,
    idle: Callable[[], None] | None = None,
) -> int:
    """Run segments until no configuration can start or be promoted; return segments run.

    Order of work for a free worker: a retried trial (plain WAITING), else the scheduler's
    promotion, else a new configuration while ``new_allowed``; with nothing to do but other
    workers still running (their results may make a promotion possible), it polls: it sleeps
    ``poll_seconds``, or calls ``idle`` (a virtual worker waits for the next event there).
    """
    storage = compat.storage_of(study)
    done = failures = 0
    while deadline is None or time.time() < deadline:
        if compat.heartbeat_enabled(storage):
            optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        if budget_spent(trials):
            break
        trial_id = None
        for t in trials:
            if (
                t.state == TrialState.WAITING
                and not lineage.is_continuation(t)
                and claim(study, t)
            ):
                trial_id = compat.trial_id(study, t)
                break
        decided = False
        if trial_id is None:
            allow_new = new_allowed(trials)
            # A resume this worker could not read is left to the others.
            mine = [t for t in trials if not lineage.tried_here(t)]
            candidate = scheduler.choose(study, mine, allow_new)
            decided = True
            if candidate is not None:
                if not claim(study, candidate):
                    continue  # another worker took it: decide again
                trial_id = compat.trial_id(study, candidate)
            elif allow_new:
                trial_id = storage.create_new_trial(compat.study_id(study))
                proposal = scheduler.new_configuration()
                if proposal:
                    storage.set_trial_system_attr(trial_id, PROPOSAL, proposal)
            elif any(t.state == TrialState.RUNNING for t in trials):
                if idle is None:
                    time.sleep(poll_seconds)
                else:
                    idle()
                continue
            else:
                break
        if decided:
            for key, value in scheduler.decision_attrs().items():
                storage.set_trial_user_attr(trial_id, key, value)
        state = _run_segment(study, objective, optuna.Trial(study, trial_id))
        done += 1
        failures = failures + 1 if state == TrialState.FAIL else 0
        if failures >= max_consecutive_failures:
            _logger.warning(
                f"{failures} segments failed in a row; this worker stops (see the warnings above)."
            )
            break
    return done


def _run_segment(
    study: optuna.Study, objective: Callable[[optuna.Trial], float], trial: optuna.Trial
) -> TrialState:
    try:
        # As in study.optimize: on RDB storages with heartbeats, keep this segment alive so a
        # worker on another machine can fail and retry it if this process dies.
        with compat.heartbeat_thread(trial.storage, compat.trial_id(study, trial)):
            value = objective(trial)
    except optuna.TrialPruned:
        return study.tell(trial, state=TrialState.PRUNED).state
    except Exception as err:  # noqa: BLE001 - one failed segment must not stop the worker
        _logger.warning(f"Trial {trial.number} failed: {type(err).__name__}: {err}")
        return study.tell(trial, state=TrialState.FAIL).state
    if value is None or not math.isfinite(value):
        return study.tell(trial, state=TrialState.FAIL).state
    return study.tell(trial, value).state


def close_paused(study: optuna.Study, store: CheckpointStore | None = None) -> int:
    """End the study's leftover paused configurations (never promoted): their WAITING
    continuations become PRUNED and their checkpoints are deleted. Returns how many.

    A continuation whose checkpoint some worker failed to read and nobody else took is a lost
    configuration: its reason is recorded on the trial (``ohgw.lost``).
    """
    closed = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if lineage.is_continuation(t) and claim(study, t):
            info = lineage.resume_info(t) or {}
            storage, tid = compat.storage_of(study), compat.trial_id(study, t)
            storage.set_trial_user_attr(tid, lineage.NOT_PROMOTED, True)
            if info.get("tried_by"):
                storage.set_trial_user_attr(
                    tid,
                    lineage.LOST,
                    f"checkpoint unreadable on {', '.join(info['tried_by'])} and no other worker "
                    f"took it: {info.get('error')}",
                )
            study.tell(t.number, state=TrialState.PRUNED)
            if store is not None and info.get("artifact"):
                store.delete(info["artifact"])
            closed += 1
    return closed


def finish_study(study: optuna.Study, store: CheckpointStore) -> int:
    """At the end of a study: close its paused configurations and remove every checkpoint
    that no WAITING or RUNNING segment still resumes from (finished, abandoned, orphaned by a
    killed worker). Safe to call from every worker; returns the checkpoints removed."""
    close_paused(study, store)
    keep = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
        info = lineage.resume_info(t) or {}
        keep.update(a for a in (info.get("artifact"), info.get("previous")) if a)
    return store.sweep(study, keep)
