"""Epoch-loop hooks that pause a trial at a rung (checkpoint + continuation) and resume it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState, create_trial

from optuna_ohgw import lineage
from optuna_ohgw.checkpoint import CheckpointError, CheckpointStore
from optuna_ohgw.objective import EpochHooks
from optuna_ohgw.schedulers._base import BasePromotionScheduler


class Checkpointable(Protocol):
    """What a training state must offer to be paused: the torch ``state_dict`` convention."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class PauseResumeHooks(EpochHooks[Checkpointable]):
    """Lets :class:`~optuna_ohgw.EpochObjective` pause and resume without changing user code.

    At the start of a segment it restores the configuration's checkpoint (a missing or corrupt
    one fails the segment: no silent restart from scratch); after each epoch it asks the
    scheduler whether to pause, and if so saves the checkpoint, adds the WAITING continuation
    trial (same parameters, lineage attrs) and ends this segment. ``on_resume(trial, state)``,
    when given, runs after a checkpoint is loaded (for example
    :class:`~optuna_ohgw.schedulers.ResumeProbe`, the re-probe at every promotion).
    """

    def __init__(
        self,
        scheduler: BasePromotionScheduler,
        store: CheckpointStore,
        *,
        on_resume: Callable[[optuna.Trial, Any], Any] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.store = store
        self.on_resume = on_resume

    def start(self, trial: optuna.Trial, state: Checkpointable) -> int:
        info = _resume_info(trial)
        if info is None:
            trial.set_user_attr(lineage.CONFIG, trial.number)
            trial.set_user_attr(lineage.SEGMENT, 0)
            trial.set_user_attr(lineage.START_EPOCH, 0)
            return 0
        config, epoch = int(info["config"]), int(info["epoch"])
        checkpoint = self.store.load(config)
        if int(checkpoint.get("epoch", -1)) != epoch:
            raise CheckpointError(
                f"checkpoint of configuration {config} holds epoch {checkpoint.get('epoch')}, "
                f"but trial {trial.number} resumes it at epoch {epoch}"
            )
        state.load_state_dict(checkpoint["state"])
        if self.on_resume is not None:
            self.on_resume(trial, state)
        return epoch

    def after_epoch(
        self, trial: optuna.Trial, state: Checkpointable, epochs_done: int, value: float
    ) -> bool:
        study = trial.study
        self.scheduler.after_report(study, study.get_trials(deepcopy=False), epochs_done)
        info = _resume_info(trial) or {}
        config = int(info.get("config", trial.number))
        if epochs_done >= self.scheduler.max_resource:
            self.store.delete(config)
            return False
        if not self.scheduler.should_pause(epochs_done):
            return False
        self.store.save(config, {"epoch": epochs_done, "state": state.state_dict()})
        segment = int(info.get("segment", 0)) + 1
        resume = {
            "config": config,
            "parent": trial.number,
            "epoch": epochs_done,
            "segment": segment,
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
        trial.set_user_attr(lineage.PAUSED, True)
        return True


def _resume_info(trial: optuna.Trial) -> dict[str, Any] | None:
    # ``Trial.system_attrs`` is gone in Optuna 5: read the storage.
    return trial.storage.get_trial_system_attrs(trial._trial_id).get(lineage.RESUME)
