"""Lineage of paused and resumed trials: which trial continues which configuration, from when.

Optuna cannot pause a trial, so a configuration trained in several goes is a chain of trials
("segments"). Each segment records the attrs below; a paused segment leaves a WAITING trial
(same parameters, ``fixed_params``) that a worker claims atomically to resume it. The dashboard
shows the attrs; the schedulers and the evidence code read them through this module.
"""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import attrs

CONFIG = f"{attrs.PREFIX}.config"
"""Number of the configuration's first trial (the configuration's id)."""
SEGMENT = f"{attrs.PREFIX}.segment"
PARENT = f"{attrs.PREFIX}.parent"
"""Number of the segment this one continues."""
START_EPOCH = f"{attrs.PREFIX}.start_epoch"
PAUSED = f"{attrs.PREFIX}.paused"
"""True on a segment that ended by pausing at a rung."""
NOT_PROMOTED = f"{attrs.PREFIX}.not_promoted"
"""True on a continuation closed (PRUNED) at the end of the study without being resumed."""
LOST = f"{attrs.PREFIX}.lost"
"""Why a configuration was given up (its checkpoint could not be read by any worker)."""
CHECKPOINT_ERROR = f"{attrs.PREFIX}.checkpoint_error"
"""On a segment that could not read its checkpoint: the error (the resume is retried)."""
OVER_BUDGET = f"{attrs.PREFIX}.over_budget"
"""On a new configuration's trial that lost the race for the last budget slot: why it ended
(PRUNED) before training anything; it is no configuration."""
NEW = "ohgw:new"
"""System attr of a trial created to start a new configuration (its number is the
configuration's id and its budget slot's place in line)."""
RESUME = "ohgw:resume"
"""System attr of a WAITING continuation: ``{"config", "parent", "epoch", "segment",
"artifact", "previous"}`` (the checkpoint to resume from and the one it supersedes), plus
``"attempts"``, ``"tried_by"``, ``"error"`` and ``"retry_of"`` (the failed segment) once a worker
failed to read the checkpoint."""


def worker_id() -> str:
    """``host:pid`` of this process, as recorded in ``tried_by``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def tried_here(trial: FrozenTrial) -> bool:
    """True for a WAITING continuation whose checkpoint this process already failed to read."""
    info = resume_info(trial) or {}
    return trial.state == TrialState.WAITING and worker_id() in info.get("tried_by", ())


def resume_info(trial: FrozenTrial) -> dict[str, Any] | None:
    return trial.system_attrs.get(RESUME)


def config_of(trial: FrozenTrial) -> int:
    info = resume_info(trial)
    if info is not None:
        return int(info["config"])
    return int(trial.user_attrs.get(CONFIG, trial.number))


def is_continuation(trial: FrozenTrial) -> bool:
    return resume_info(trial) is not None


def learning_curves(trials: Iterable[FrozenTrial]) -> dict[int, dict[int, float]]:
    """``config -> {epoch: value}``, merging the intermediate values of all its segments."""
    curves: dict[int, dict[int, float]] = defaultdict(dict)
    for t in trials:
        if t.state == TrialState.WAITING:
            continue
        curves[config_of(t)].update({int(k): float(v) for k, v in t.intermediate_values.items()})
    return dict(curves)


_HOLDING = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING)


def configurations(trials: Iterable[FrozenTrial]) -> set[int]:
    """Configurations that hold a budget slot: started, or waiting for a retry or a resume
    (counted once, however often a segment was retried; a failed one that nobody retries, or a
    trial that lost the last slot, holds none)."""
    return {
        config_of(t) for t in trials if t.state in _HOLDING and OVER_BUDGET not in t.user_attrs
    }
