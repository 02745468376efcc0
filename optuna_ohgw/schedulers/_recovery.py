"""Crash recovery of segments: what a dead worker's RUNNING trial becomes.

The segment protocol (``docs/segment-protocol.md``) orders its writes so that the storage alone
says how far a dead segment got; :func:`recover_segment` finishes what can be finished and
retries the rest, once, whichever worker (or ``run``) gets there first:

* its pause is durable (the continuation exists): the segment is told COMPLETE with its last
  reported value, as its worker would have (rolled forward), never trained again;
* its failed resume was already enqueued again (``retry_of``), or it lost the race for the
  last budget slot: failed, no retry;
* otherwise: failed and enqueued again with the same parameters and lineage, so a resumed
  segment resumes from the same checkpoint (deleted only after a segment is told) and a first
  segment keeps its configuration's id and budget slot (one killed before its parameters were
  drawn is retried as a fresh draw in the same slot).
* after the fourth death counted by :func:`retry` (deaths after the draw; never a SIGTERM
  hand-back): failed with ``ohgw.lost`` and a warning.

:func:`retry` keeps at most one live trial per configuration, checked in the storage.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState, create_trial

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import attrs, lineage, ownership
from optuna_ohgw.checkpoint import CheckpointStore
from optuna_ohgw.schedulers._claim import claim

MAX_RETRY = 3
"""Crash retries of one segment (as ``RetryHeartbeatStaleTrialCallback(max_retry=3)``)."""
RECOVERED = f"{attrs.PREFIX}.recovered"
"""User attr of a segment whose worker died: what recovery made of it."""


def _owned_key(key: str) -> bool:
    return key == ownership.OWNER or key.startswith(ownership.CLAIMANT_PREFIX)


CRASHES = "ohgw:crashes"
"""System attr of a retry: the trials of its segment whose worker died after the parameters
were drawn (interruptions by SIGTERM and deaths before a draw do not count)."""
DUPLICATE = f"{attrs.PREFIX}.duplicate_retry"
"""User attr of a retry closed because another live one of its configuration came first."""

_logger = logging.getLogger("optuna_ohgw")


def _live_of(trials: Sequence[FrozenTrial], config: int, but: int) -> list[FrozenTrial]:
    return [
        t
        for t in trials
        if t.number != but
        and t.state in (TrialState.WAITING, TrialState.RUNNING)
        and lineage.config_of(t) == config
    ]


def keep_first_retry(study: optuna.Study, trial_id: int, config: int, failed: int) -> bool:
    """The check after a retry ``trial_id`` of trial ``failed`` was added: when another live
    trial of its configuration ``config`` came before it (two processes retried at once), it
    is claimed and closed (FAIL, ``ohgw.duplicate_retry``). False when it was closed."""
    storage = compat.storage_of(study)
    mine = storage.get_trial(trial_id)
    live = _live_of(study.get_trials(deepcopy=False), config, failed)
    first = min(live, key=lambda t: t.number)
    if first.number < mine.number and claim(study, mine):
        storage.set_trial_user_attr(trial_id, DUPLICATE, f"trial {first.number} retries it")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        return False
    return True


def retry(
    study: optuna.Study,
    failed: FrozenTrial,
    max_retry: int = MAX_RETRY,
    *,
    counts: bool | None = None,
) -> bool:
    """Enqueue ``failed`` again: same parameters, lineage and checkpoint, Optuna's retry attrs
    (``failed_trial``: ``failed`` itself, ``retry_history``), no owner.

    At most one live retry per configuration, checked in the storage: nothing is added when a
    trial already retries ``failed`` or another WAITING or RUNNING trial of its configuration
    exists (the parent's ``retry_interrupted``, the hand-back and a worker's recovery may all
    try), and of two added at once the later one is closed at once. ``counts``: whether the
    death counts toward ``max_retry`` (default: once parameters were drawn); False when
    ``failed`` already died ``max_retry`` times after its draw (its configuration is lost).
    True when a retry exists afterwards."""
    trials = study.get_trials(deepcopy=False)
    config = lineage.config_of(failed)
    if any(t.system_attrs.get("failed_trial") == failed.number for t in trials) or _live_of(
        trials, config, failed.number
    ):
        return True
    counts = bool(failed.params) if counts is None else counts
    crashes = [*failed.system_attrs.get(CRASHES, []), *([failed.number] if counts else [])]
    if len(crashes) > max_retry:
        return False
    system = {k: v for k, v in failed.system_attrs.items() if not _owned_key(k)}
    system["failed_trial"] = failed.number
    system["retry_history"] = [*system.get("retry_history", []), failed.number]
    system[CRASHES] = crashes
    system.pop(lineage.NEW, None)  # the retry holds the configuration's slot, not a new one
    user = {k: v for k, v in failed.user_attrs.items() if k not in (ownership.LEASE, RECOVERED)}
    user.setdefault(lineage.CONFIG, config)
    tid = compat.storage_of(study).create_new_trial(
        compat.study_id(study),
        create_trial(
            state=TrialState.WAITING,
            params=failed.params,
            distributions=failed.distributions,
            user_attrs=user,
            system_attrs=system,
        ),
    )
    keep_first_retry(study, tid, config, failed.number)
    return True


def release_checkpoint(
    study: optuna.Study,
    store: CheckpointStore | None,
    artifact: str | None,
    trials: Sequence[FrozenTrial] | None = None,
) -> bool:
    """Delete ``artifact`` unless a WAITING or RUNNING segment still resumes from it."""
    if store is None or not artifact:
        return False
    trials = trials if trials is not None else study.get_trials(deepcopy=False)
    for t in trials:
        if t.state in (TrialState.WAITING, TrialState.RUNNING):
            if (lineage.resume_info(t) or {}).get("artifact") == artifact:
                return False
    store.delete(artifact)
    return True


def _exhausted(trial: FrozenTrial, counts: bool, max_retry: int = MAX_RETRY) -> bool:
    return len(trial.system_attrs.get(CRASHES, [])) + counts > max_retry


def recover_segment(
    study: optuna.Study,
    trial: FrozenTrial,
    store: CheckpointStore | None = None,
    trials: Sequence[FrozenTrial] | None = None,
    *,
    interrupted: bool = False,
) -> str | None:
    """Settle the RUNNING ``trial`` of a dead worker (see the module docstring); return what
    was done (``"rolled forward"``, ``"failed"``, ``"retried"``, ``"lost"``), or None when
    another process settled it first.

    ``interrupted``: its worker was stopped (SIGTERM) and handed it back, which never counts
    toward the retry limit; nor does a death before the parameters were drawn. A segment
    whose worker died a fourth time after its draw is failed with ``ohgw.lost`` (and a
    warning), not retried."""
    trials = trials if trials is not None else study.get_trials(deepcopy=False)
    storage, tid = compat.storage_of(study), compat.trial_id(study, trial)
    info = lineage.resume_info(trial) or {}
    followers = [lineage.resume_info(t) or {} for t in trials if t.number > trial.number]
    paused = any(f.get("parent") == trial.number for f in followers)
    handed_on = any(f.get("retry_of") == trial.number for f in followers)
    values = trial.intermediate_values
    try:
        if paused and values:
            last = max(values)
            start = int(info.get("epoch", 0))
            compat.set_user_attrs(
                storage,
                tid,
                {
                    lineage.PAUSED: True,
                    attrs.EPOCHS: last - start,
                    RECOVERED: "rolled forward: its worker died after the pause was recorded",
                },
            )
            storage.set_trial_state_values(tid, TrialState.COMPLETE, [values[last]])
            release_checkpoint(study, store, info.get("artifact"))
            return "rolled forward"
        again = not (handed_on or lineage.OVER_BUDGET in trial.user_attrs)
        counts = bool(trial.params) and not interrupted
        how = "was stopped (SIGTERM)" if interrupted else "died"
        what = "retried" if again else "failed"
        why = f"its worker {how}"
        if handed_on:
            why += "; its failed resume was already enqueued again"
        if again and _exhausted(trial, counts):
            what = "lost"
            crashes = len(trial.system_attrs.get(CRASHES, [])) + 1
            why = (
                f"its worker died {crashes} times after its parameters were drawn "
                f"(limit {MAX_RETRY} retries); not retried"
            )
            storage.set_trial_user_attr(tid, lineage.LOST, why)
        storage.set_trial_user_attr(tid, RECOVERED, f"{what}: {why}")
        storage.set_trial_state_values(tid, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return None
    if what == "lost":
        _logger.warning(
            f"Trial {trial.number} (configuration {lineage.config_of(trial)}) is lost: {why}"
        )
    elif again:
        retry(study, storage.get_trial(tid), counts=counts)
    return what


def recover_dead(
    study: optuna.Study,
    store: CheckpointStore | None = None,
    *,
    dead_pids: Collection[int] | None = None,
    leases: bool = True,
    trials: Sequence[FrozenTrial] | None = None,
    interrupted: bool = False,
) -> list[int]:
    """Recover every RUNNING trial whose worker is dead (:func:`ownership.is_dead`); return
    their numbers (``interrupted``: see :func:`recover_segment`)."""
    trials = trials if trials is not None else study.get_trials(deepcopy=False)
    recovered = []
    for t in trials:
        if t.state == TrialState.RUNNING and ownership.is_dead(
            t, dead_pids=dead_pids, leases=leases
        ):
            if recover_segment(study, t, store, trials, interrupted=interrupted) is not None:
                recovered.append(t.number)
    return recovered
