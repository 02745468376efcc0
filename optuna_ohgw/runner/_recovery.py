"""Crash recovery: trials whose worker process died are failed and retried with the same
parameters (``RetryHeartbeatStaleTrialCallback``), on any storage."""

from __future__ import annotations

import os
import socket
import warnings

import optuna
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import _optuna_compat as compat

WORKER_ATTR = "ohgw:worker"
"""Trial system attr: ``{"host", "pid", "worker", "device", "CUDA_VISIBLE_DEVICES"}`` of the
process that runs the trial."""


def fail_and_retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Fail a trial whose worker died and enqueue a retry with the same parameters."""
    storage, tid = compat.storage_of(study), compat.trial_id(study, trial)
    storage.set_trial_state_values(tid, TrialState.FAIL)
    failed = storage.get_trial(tid)
    _retry(study, failed)


def _retry(study: optuna.Study, failed: FrozenTrial) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)(study, failed)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_orphans(study: optuna.Study, dead_pids: set[int] | None = None) -> list[int]:
    """Fail and retry RUNNING trials of this host whose worker process is gone.

    ``dead_pids`` names the workers known to have exited; without it every RUNNING trial of
    this host whose process no longer exists is recovered (a run that crashed as a whole).
    """
    host = socket.gethostname()
    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.system_attrs.get(WORKER_ATTR)
        if not owner or owner.get("host") != host:
            continue
        pid = int(owner["pid"])
        if pid not in dead_pids if dead_pids is not None else _pid_alive(pid):
            continue
        fail_and_retry(study, t)
        recovered.append(t.number)
    return recovered


def retry_interrupted(study: optuna.Study, pids: set[int]) -> None:
    """Enqueue again the trials that interrupted workers marked FAIL, so a rerun resumes them."""
    retried = {
        RetryFailedTrialCallback.retried_trial_number(t) for t in study.get_trials(deepcopy=False)
    }
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        owner = t.system_attrs.get(WORKER_ATTR) or {}
        if owner.get("pid") in pids and t.number not in retried:
            _retry(study, t)
