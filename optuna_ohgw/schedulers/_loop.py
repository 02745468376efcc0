"""The worker loop of promotion-type schedulers (Optuna's ``optimize`` cannot pause trials)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import failpoints, lineage, ownership
from optuna_ohgw.checkpoint import CheckpointStore
from optuna_ohgw.schedulers._base import BasePromotionScheduler
from optuna_ohgw.schedulers._claim import claim
from optuna_ohgw.schedulers._proposal import PROPOSAL
from optuna_ohgw.schedulers._recovery import recover_dead, release_checkpoint

_logger = logging.getLogger("optuna_ohgw")

NewAllowed = Callable[[Sequence[FrozenTrial]], bool]
Admit = Callable[[Sequence[FrozenTrial], int], bool]


def run_promotion_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    scheduler: BasePromotionScheduler,
    new_allowed: NewAllowed,
    *,
    budget_spent: NewAllowed = lambda trials: False,
    admit: Admit = lambda trials, number: True,
    store: CheckpointStore | None = None,
    owner: Mapping[str, Any] | None = None,
    deadline: float | None = None,
    poll_seconds: float = 0.5,
    max_consecutive_failures: int = 5,
    lease_seconds: float = ownership.LEASE_SECONDS,
    idle: Callable[[], None] | None = None,
) -> int:
    """Run segments until no configuration can start or be promoted; return segments run.

    Order of work for a free worker: recover the segments of dead workers (any host, by
    process or lease), then a retried trial (plain WAITING), else the scheduler's promotion,
    else a new configuration while ``new_allowed``; with nothing to do but other workers still
    running (their results may make a promotion possible), it polls (sleeps ``poll_seconds``,
    or calls ``idle``: a virtual worker waits for the next event there), at most until their
    leases expire. The steps of a segment are in ``docs/segment-protocol.md``.

    Args:
        admit: ``(trials, number) -> bool``: whether the new configuration's trial ``number``,
            created a moment ago, got a budget slot (see
            :func:`~optuna_ohgw.runner.admits`); one that did not is closed untrained.
        store: The checkpoint store, where a segment's old checkpoint is deleted once the
            segment is told (default: the store of the objective's
            :class:`~optuna_ohgw.schedulers.PauseResumeHooks`, if any).
        owner: This process's owner record (default: host and pid).
        lease_seconds: How long this worker's segments are held without a renewal.
        idle: Called instead of sleeping ``poll_seconds`` when there is nothing to do yet
            (:mod:`optuna_ohgw.virtual`).
    """
    storage = compat.storage_of(study)
    owner = dict(owner or ownership.me())
    if store is None:
        store = getattr(getattr(objective, "hooks", None), "store", None)
    done = failures = 0
    while deadline is None or time.time() < deadline:
        trials = study.get_trials(deepcopy=False)
        if recover_dead(study, store, trials=trials):
            continue  # the recovered trials changed the study: read it again
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
        decided = created = False
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
                trial_id = _new_trial(study, scheduler.new_configuration(), owner, lease_seconds)
                failpoints.hit("new.created")
                number = storage.get_trial(trial_id).number
                if not admit(study.get_trials(deepcopy=False), number):
                    _close_over_budget(study, trial_id)
                    continue
                created = True
            elif any(t.state == TrialState.RUNNING for t in trials):
                if idle is None:
                    time.sleep(poll_seconds)
                else:
                    idle()
                continue
            else:
                break
        if not created:
            failpoints.hit("claim.won")
            storage.set_trial_system_attr(trial_id, ownership.OWNER, owner)
            storage.set_trial_user_attr(
                trial_id, ownership.LEASE, ownership.lease_until(lease_seconds)
            )
        failpoints.hit("segment.started")
        if decided:
            for key, value in scheduler.decision_attrs().items():
                storage.set_trial_user_attr(trial_id, key, value)
        trial = optuna.Trial(study, trial_id)
        state = _run_segment(study, objective, trial, store, lease_seconds)
        done += 1
        failures = failures + 1 if state == TrialState.FAIL else 0
        if failures >= max_consecutive_failures:
            _logger.warning(
                f"{failures} segments failed in a row; this worker stops (see the warnings above)."
            )
            break
    return done


def _new_trial(
    study: optuna.Study,
    proposal: Mapping[str, float] | None,
    owner: Mapping[str, Any],
    lease_seconds: float,
) -> int:
    """A RUNNING trial for a new configuration, created with its owner and lease in one
    storage call (never RUNNING without an owner)."""
    system: dict[str, Any] = {ownership.OWNER: dict(owner), lineage.NEW: True}
    if proposal:
        system[PROPOSAL] = dict(proposal)
    template = create_trial(
        state=TrialState.RUNNING,
        user_attrs={ownership.LEASE: ownership.lease_until(lease_seconds)},
        system_attrs=system,
    )
    return compat.storage_of(study).create_new_trial(compat.study_id(study), template)


def _close_over_budget(study: optuna.Study, trial_id: int) -> None:
    storage = compat.storage_of(study)
    storage.set_trial_user_attr(
        trial_id, lineage.OVER_BUDGET, "other workers took the last budget slots first"
    )
    storage.set_trial_state_values(trial_id, TrialState.PRUNED)


def _run_segment(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    trial: optuna.Trial,
    store: CheckpointStore | None,
    lease_seconds: float,
) -> TrialState:
    tid = compat.trial_id(study, trial)
    try:
        # The lease says this process is alive while the segment trains, so that a worker on
        # any machine can fail and retry the segment if it dies (see ownership).
        with ownership.LeaseKeeper(trial.storage, tid, seconds=lease_seconds).held():
            value = objective(trial)
    except optuna.TrialPruned:
        state = TrialState.PRUNED
    except Exception as err:  # noqa: BLE001 - one failed segment must not stop the worker
        _logger.warning(f"Trial {trial.number} failed: {type(err).__name__}: {err}")
        state = TrialState.FAIL
    else:
        state = TrialState.COMPLETE if value is not None and math.isfinite(value) else None
    if state == TrialState.COMPLETE:
        state = study.tell(trial, value).state
    else:
        state = study.tell(trial, state=state or TrialState.FAIL).state
    # Only now is the checkpoint this segment resumed from no longer needed (a segment killed
    # before its tell is retried from it).
    frozen = trial.storage.get_trial(tid)
    artifact = (lineage.resume_info(frozen) or {}).get("artifact")
    if frozen.user_attrs.get(lineage.PAUSED):
        failpoints.hit("pause.told")
    elif artifact:
        failpoints.hit("finish.told")
    release_checkpoint(study, store, artifact)
    return state


def close_paused(study: optuna.Study, store: CheckpointStore | None = None) -> int:
    """End the study's leftover paused configurations (never promoted): their WAITING
    continuations become PRUNED and their checkpoints are deleted. Returns how many.

    A continuation whose checkpoint some worker failed to read and nobody else took is a lost
    configuration: its reason is recorded on the trial (``ohgw.lost``).
    """
    closed = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if lineage.is_continuation(t) and claim(study, t):
            failpoints.hit("close.claimed")
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
