"""Epoch-loop hooks that pause a trial at a rung (checkpoint + continuation) and resume it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState, create_trial

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import failpoints, lineage
from optuna_ohgw.checkpoint import CheckpointError, CheckpointStore
from optuna_ohgw.objective import EpochHooks
from optuna_ohgw.schedulers._base import BasePromotionScheduler

MAX_ATTEMPTS = 3
"""Reads of one checkpoint (by different workers) before its configuration is given up."""


class Checkpointable(Protocol):
    """What a training state must offer to be paused: the torch ``state_dict`` convention."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class PauseResumeHooks(EpochHooks[Checkpointable]):
    """Lets :class:`~optuna_ohgw.EpochObjective` pause and resume without changing user code.

    At the start of a segment it restores the configuration's checkpoint (a missing or corrupt
    one fails the segment, no silent restart from scratch, and the resume is enqueued again for
    another worker, up to ``max_attempts`` reads in all); after each epoch it asks the
    scheduler whether to pause, and if so saves the checkpoint, adds the WAITING continuation
    trial (same parameters, lineage attrs) and ends this segment. ``on_resume(trial, state)``,
    when given, runs after a checkpoint is loaded (for example
    :class:`~optuna_ohgw.schedulers.ResumeProbe`, the re-probe at every promotion). The
    checkpoint a segment resumed from is deleted by the loop once the segment is told, never
    here (a segment killed before its tell is retried from it; ``docs/segment-protocol.md``).
    """

    def __init__(
        self,
        scheduler: BasePromotionScheduler,
        store: CheckpointStore,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        on_resume: Callable[[optuna.Trial, Any], Any] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.store = store
        self.max_attempts = max_attempts
        self.on_resume = on_resume

    def start(self, trial: optuna.Trial, state: Checkpointable) -> int:
        info = _resume_info(trial)
        if info is None:
            # A crash retry of a first segment keeps its configuration's id.
            config = trial.user_attrs.get(lineage.CONFIG, trial.number)
            compat.set_user_attrs(
                trial.storage,
                compat.trial_id(trial.study, trial),
                {lineage.CONFIG: config, lineage.SEGMENT: 0, lineage.START_EPOCH: 0},
            )
            return 0
        config, epoch = int(info["config"]), int(info["epoch"])
        try:
            checkpoint = self.store.load(str(info.get("artifact")), config)
            if int(checkpoint.get("epoch", -1)) != epoch:
                raise CheckpointError(
                    f"checkpoint of configuration {config} holds epoch {checkpoint.get('epoch')}"
                    f", but trial {trial.number} resumes it at epoch {epoch}"
                )
        except CheckpointError as err:
            self._retry_or_give_up(trial, info, err)
            raise
        state.load_state_dict(checkpoint["state"])
        failpoints.hit("resume.loaded")
        if info.get("previous"):
            self.store.delete(info["previous"])  # superseded by the one just read
        if self.on_resume is not None:
            self.on_resume(trial, state)
        return epoch

    def after_epoch(
        self, trial: optuna.Trial, state: Checkpointable, epochs_done: int, value: float
    ) -> bool:
        study = trial.study
        self.scheduler.after_report(study, study.get_trials(deepcopy=False), epochs_done)
        info = _resume_info(trial) or {}
        config = int(info.get("config", trial.user_attrs.get(lineage.CONFIG, trial.number)))
        if epochs_done == int(info.get("epoch", 0)) + 1:
            failpoints.hit("epoch.reported")
        if epochs_done >= self.scheduler.max_resource:
            # The checkpoint this segment resumed from is deleted after its tell (the loop).
            failpoints.hit("finish.reported")
            return False
        if not self.scheduler.should_pause(epochs_done):
            return False
        artifact = self.store.save(trial, config, epochs_done, state.state_dict())
        failpoints.hit("pause.saved")
        segment = int(info.get("segment", 0)) + 1
        resume = {
            "config": config,
            "parent": trial.number,
            "epoch": epochs_done,
            "segment": segment,
            "artifact": artifact,
            "previous": info.get("artifact"),
        }
        study.add_trial(
            create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={
                    lineage.CONFIG: config,
                    lineage.SEGMENT: segment,
                    lineage.PARENT: trial.number,
                    lineage.START_EPOCH: epochs_done,
                },
                system_attrs={"fixed_params": trial.params, lineage.RESUME: resume},
            )
        )
        failpoints.hit("pause.continued")
        trial.set_user_attr(lineage.PAUSED, True)
        return True

    def _retry_or_give_up(
        self, trial: optuna.Trial, info: dict[str, Any], err: CheckpointError
    ) -> None:
        """Enqueue the resume again for another worker, or record why the configuration is lost.

        A checkpoint one worker cannot read (a share not mounted there, a network error) may be
        readable by another; this worker never takes the retry itself (``tried_by``).
        """
        attempts = int(info.get("attempts", 0)) + 1
        trial.set_user_attr(lineage.CHECKPOINT_ERROR, str(err))
        if attempts >= self.max_attempts:
            trial.set_user_attr(
                lineage.LOST, f"checkpoint unreadable in {attempts} attempt(s): {err}"
            )
            return
        retry = {
            **info,
            "retry_of": trial.number,
            "attempts": attempts,
            "tried_by": [*info.get("tried_by", ()), lineage.worker_id()],
            "error": str(err),
        }
        user_attrs = trial.user_attrs
        keys = (lineage.CONFIG, lineage.SEGMENT, lineage.PARENT, lineage.START_EPOCH)
        trial.study.add_trial(
            create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={key: user_attrs[key] for key in keys if key in user_attrs},
                system_attrs={"fixed_params": trial.params, lineage.RESUME: retry},
            )
        )


def _resume_info(trial: optuna.Trial) -> dict[str, Any] | None:
    # ``Trial.system_attrs`` is gone in Optuna 5: read the storage.
    tid = compat.trial_id(trial.study, trial)
    return trial.storage.get_trial_system_attrs(tid).get(lineage.RESUME)
