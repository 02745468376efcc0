"""The body of one worker process: build the recipe (the user's or a task's), the sampler
chain and the pruner, then train trials on the shared storage until the study's budget is
spent."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import attrs, failpoints, lineage
from optuna_ohgw.artifact_store import DEFAULT_ARTIFACTS
from optuna_ohgw.runner._budget import (
    MAX_CONSECUTIVE_FAILURES,
    BudgetCallback,
    admits,
    budget_spent,
    epoch_budget_spent,
    new_configs_allowed,
    take_slot,
)
from optuna_ohgw.runner._build import (
    build_pruner,
    build_resume_probe,
    build_sampler,
    build_scheduler,
    is_promotion,
)
from optuna_ohgw.runner._note import save_warm_start_note
from optuna_ohgw.runner._recovery import WORKER_ATTR
from optuna_ohgw.runner._trainer import open_trainer
from optuna_ohgw.studyfile import StudyConfig

MAX_ERROR_CHARS = 500


class WorkerGaveUpError(RuntimeError):
    """The worker stopped because its trials kept failing; its run must not pass for success."""


def run_worker(
    config: StudyConfig,
    storage: BaseStorage,
    worker_index: int,
    *,
    data_dir: str | None = None,
    download: bool = False,
    device: str | None = None,
    artifacts: str = DEFAULT_ARTIFACTS,
    idle: Callable[[], None] | None = None,
) -> None:
    """One worker: train trials of ``config`` on ``storage`` until the budget is spent;
    paused trials keep their checkpoints in the artifact store at ``artifacts``. ``idle``
    replaces the promotion loop's poll sleep (virtual workers, :mod:`optuna_ohgw.virtual`)."""
    import torch

    failpoints.arm()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # A missing dataset or a broken recipe fails here, before any trial starts.
    trainer = open_trainer(config, device=device, data_dir=data_dir, download=download)
    # The first torch.optim optimizer of a process imports torch._dynamo (1.3 s on an idle
    # core, 9 s on a loaded one). Paid here, before any trial, it is charged to no arm: not to
    # the self-check (the first optimizer it builds) nor to a vanilla trial's first epoch.
    import torch._dynamo  # noqa: F401

    objective = trainer.make_objective(
        config.seed, config.max_epochs, batch_size=config.batch_size or None
    )
    study = optuna.load_study(
        study_name=config.study_name,
        storage=storage,
        sampler=build_sampler(config, trainer, worker_index),
        pruner=build_pruner(config),
    )
    if budget_spent(config, study.get_trials(deepcopy=False), study):
        return
    me = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "worker": worker_index,
        "device": device,
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }

    promotion = is_promotion(config)

    def tracked(trial: optuna.Trial) -> float:
        if not promotion:  # the promotion loop records the owner and the slot itself
            trial.storage.set_trial_system_attr(compat.trial_id(study, trial), WORKER_ATTR, me)
            take_slot(config, study, trial)
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as err:
            # The reason goes on the trial, where the dashboard and the report show it.
            reason = f"{type(err).__name__}: {err}"[:MAX_ERROR_CHARS]
            trial.set_user_attr(attrs.ERROR, reason)
            raise
        finally:
            save_warm_start_note(trial)

    if promotion:
        from optuna_ohgw.checkpoint import open_checkpoints
        from optuna_ohgw.schedulers import PauseResumeHooks, finish_study, run_promotion_worker

        scheduler = build_scheduler(config, worker_index)
        store = open_checkpoints(study, artifacts)
        objective.hooks = PauseResumeHooks(
            scheduler, store, on_resume=build_resume_probe(config, trainer)
        )
        wall = config.budget.wall_seconds
        run_promotion_worker(
            study,
            tracked,
            scheduler,
            lambda trials: new_configs_allowed(config, trials),
            budget_spent=lambda trials: epoch_budget_spent(config, trials),
            admit=lambda trials, number: admits(config, trials, number),
            store=store,
            owner=me,
            deadline=time.time() + wall if wall else None,
            max_consecutive_failures=MAX_CONSECUTIVE_FAILURES,
            idle=idle,
        )
        if budget_spent(config, study.get_trials(deepcopy=False), study):
            finish_study(study, store)  # every worker may: the last one leaves no checkpoint
        mine = [
            t
            for t in study.get_trials(deepcopy=False)
            if (t.system_attrs.get(WORKER_ATTR) or {}).get("pid") == me["pid"]
            and lineage.OVER_BUDGET not in t.user_attrs
        ]
        last = mine[-MAX_CONSECUTIVE_FAILURES:]
        if len(last) == MAX_CONSECUTIVE_FAILURES and all(t.state == TrialState.FAIL for t in last):
            raise WorkerGaveUpError(_give_up_message(study))
        return
    callback = BudgetCallback(config)
    study.optimize(
        tracked,
        callbacks=[callback],
        timeout=config.budget.wall_seconds or None,
        catch=(Exception,),
    )
    if callback.gave_up:
        raise WorkerGaveUpError(_give_up_message(study))


def _give_up_message(study: optuna.Study) -> str:
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    last = failed[-1] if failed else None
    reason = last.user_attrs.get(attrs.ERROR, "see the worker log") if last else "-"
    return (
        f"a worker gave up after {MAX_CONSECUTIVE_FAILURES} failed trials in a row "
        f"(last: trial {last.number if last else '-'}: {reason})"
    )
