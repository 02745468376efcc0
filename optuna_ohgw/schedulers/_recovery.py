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
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState, create_trial

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import attrs, lineage, ownership
from optuna_ohgw.checkpoint import CheckpointStore

MAX_RETRY = 3
"""Crash retries of one segment (as ``RetryHeartbeatStaleTrialCallback(max_retry=3)``)."""
RECOVERED = f"{attrs.PREFIX}.recovered"
"""User attr of a segment whose worker died: what recovery made of it."""


def _owned_key(key: str) -> bool:
    return key == ownership.OWNER or key.startswith(ownership.CLAIMANT_PREFIX)


def retry(study: optuna.Study, failed: FrozenTrial, max_retry: int = MAX_RETRY) -> bool:
    """Enqueue ``failed`` again: same parameters, lineage and checkpoint, Optuna's retry attrs
    (``failed_trial``, ``retry_history``), no owner. False after ``max_retry`` retries."""
    system = {
        "failed_trial": failed.number,
        "retry_history": [],
        **{k: v for k, v in failed.system_attrs.items() if not _owned_key(k)},
    }
    system["retry_history"] = [*system["retry_history"], failed.number]
    if len(system["retry_history"]) > max_retry:
        return False
    system.pop(lineage.NEW, None)  # the retry holds the configuration's slot, not a new one
    user = {k: v for k, v in failed.user_attrs.items() if k not in (ownership.LEASE, RECOVERED)}
    user.setdefault(lineage.CONFIG, lineage.config_of(failed))
    study.add_trial(
        create_trial(
            state=TrialState.WAITING,
            params=failed.params,
            distributions=failed.distributions,
            user_attrs=user,
            system_attrs=system,
        )
    )
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


def recover_segment(
    study: optuna.Study,
    trial: FrozenTrial,
    store: CheckpointStore | None = None,
    trials: Sequence[FrozenTrial] | None = None,
) -> str | None:
    """Settle the RUNNING ``trial`` of a dead worker (see the module docstring); return what
    was done (``"rolled forward"``, ``"failed"``, ``"retried"``), or None when another process
    settled it first."""
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
        what = "retried" if again else "failed"
        storage.set_trial_user_attr(tid, RECOVERED, f"{what}: its worker died")
        storage.set_trial_state_values(tid, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return None
    if again and not retry(study, storage.get_trial(tid)):
        return "failed"
    return what


def recover_dead(
    study: optuna.Study,
    store: CheckpointStore | None = None,
    *,
    dead_pids: Collection[int] | None = None,
    leases: bool = True,
    trials: Sequence[FrozenTrial] | None = None,
) -> list[int]:
    """Recover every RUNNING trial whose worker is dead (:func:`ownership.is_dead`); return
    their numbers."""
    trials = trials if trials is not None else study.get_trials(deepcopy=False)
    recovered = []
    for t in trials:
        if t.state == TrialState.RUNNING and ownership.is_dead(
            t, dead_pids=dead_pids, leases=leases
        ):
            if recover_segment(study, t, store, trials) is not None:
                recovered.append(t.number)
    return recovered
