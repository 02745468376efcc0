"""Crash recovery in a run: the RUNNING trials of dead workers are settled as the segment
protocol says (rolled forward, failed, or failed and retried with the same parameters; see
:mod:`optuna_ohgw.schedulers._recovery` and ``docs/segment-protocol.md``), on any storage."""

from __future__ import annotations

from collections.abc import Collection

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import lineage, ownership
from optuna_ohgw.checkpoint import CheckpointStore
from optuna_ohgw.schedulers._recovery import (
    DUPLICATE,
    RECOVERED,
    recover_dead,
    recover_segment,
    retry,
)

WORKER_ATTR = ownership.OWNER
"""Trial system attr: ``{"host", "pid", "worker", "device", "CUDA_VISIBLE_DEVICES"}`` of the
process that runs the trial."""


def fail_and_retry(
    study: optuna.Study, trial: FrozenTrial, store: CheckpointStore | None = None
) -> None:
    """Settle a trial whose worker died (see :func:`recover_segment`)."""
    recover_segment(study, trial, store)


def recover_orphans(
    study: optuna.Study,
    dead_pids: Collection[int] | None = None,
    store: CheckpointStore | None = None,
    *,
    interrupted: bool = False,
) -> list[int]:
    """Settle RUNNING trials whose worker process is gone; return their numbers.

    ``dead_pids`` names the workers of this host known to have exited; without it every
    RUNNING trial of this host whose process no longer exists is recovered (a run that crashed
    as a whole), and so is any trial whose lease expired (a worker on any machine).
    ``interrupted``: the workers were stopped (SIGTERM), which no retry limit counts.
    """
    return recover_dead(
        study, store, dead_pids=dead_pids, leases=dead_pids is None, interrupted=interrupted
    )


def retry_interrupted(study: optuna.Study, pids: set[int]) -> None:
    """Enqueue again the trial each interrupted worker was running when Optuna's ``optimize``
    marked it FAIL, so a rerun resumes it; :func:`retry` adds none where the worker's own
    hand-back (or anyone else) already did, and recovery's verdicts stand."""
    last: dict[int, FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False):
        pid = (t.system_attrs.get(WORKER_ATTR) or {}).get("pid")
        if pid in pids:
            last[pid] = t
    settled = (RECOVERED, lineage.LOST, lineage.OVER_BUDGET, DUPLICATE)
    for t in last.values():
        if t.state == TrialState.FAIL and not any(k in t.user_attrs for k in settled):
            retry(study, t, counts=False)
