"""Running a named study: the study, its sampler and pruner, budgets, and worker processes.

The parent process (:func:`run_study`) creates the study once, starts one worker process per
GPU (or per share of the CPU cores), watches them and the storage (progress, crashed workers)
and returns a :class:`RunSummary`. Each worker is ``python -m optuna_ohgw.worker``: it receives
the resolved configuration as JSON, builds the task, the OHGW-wrapped sampler and the pruner
itself (:func:`run_worker`) and trains on the shared storage until the budget is spent. A worker
that dies at any point loses no configuration and trains none twice: the order of a segment's
writes, what recovery does after a death between any two of them, and the failpoints that test
it are in ``docs/segment-protocol.md``.

One module per job: ``_build`` (objects from a configuration), ``_budget``, ``_trainer`` (the
recipe: the user's or a task's), ``_worker`` (the worker body), ``_supervise`` (worker processes),
``_virtual`` (simulated workers in this process), ``_recovery`` (crashed trials),
``_handback`` (SIGTERM), ``_summary``.
"""

from optuna_ohgw.runner._budget import (
    MAX_CONSECUTIVE_FAILURES,
    BudgetCallback,
    admits,
    budget_spent,
    epoch_budget_spent,
    epochs_used,
    new_configs_allowed,
)
from optuna_ohgw.runner._build import (
    build_base_sampler,
    build_pruner,
    build_sampler,
    build_scheduler,
    create_study,
    is_promotion,
    study_attrs,
)
from optuna_ohgw.runner._handback import (
    HAND_BACK_SECONDS,
    SigtermHandBack,
    exit_now,
    hand_back,
    interrupted_message,
)
from optuna_ohgw.runner._recovery import (
    WORKER_ATTR,
    fail_and_retry,
    recover_orphans,
    retry_interrupted,
)
from optuna_ohgw.runner._summary import RunSummary, finished_counts, summarize
from optuna_ohgw.runner._supervise import (
    MAX_RESPAWNS,
    RunFailedError,
    WorkerSpec,
    run_study,
    worker_specs,
)
from optuna_ohgw.runner._trainer import RecipeTrainer, check_trainer, open_trainer
from optuna_ohgw.runner._virtual import run_study_virtual
from optuna_ohgw.runner._worker import WorkerGaveUpError, run_worker

__all__ = [
    "HAND_BACK_SECONDS",
    "MAX_CONSECUTIVE_FAILURES",
    "MAX_RESPAWNS",
    "WORKER_ATTR",
    "BudgetCallback",
    "RecipeTrainer",
    "RunFailedError",
    "RunSummary",
    "SigtermHandBack",
    "WorkerGaveUpError",
    "WorkerSpec",
    "admits",
    "budget_spent",
    "build_base_sampler",
    "build_pruner",
    "build_sampler",
    "build_scheduler",
    "check_trainer",
    "create_study",
    "epoch_budget_spent",
    "epochs_used",
    "exit_now",
    "fail_and_retry",
    "finished_counts",
    "hand_back",
    "interrupted_message",
    "is_promotion",
    "new_configs_allowed",
    "open_trainer",
    "recover_orphans",
    "retry_interrupted",
    "run_study",
    "run_study_virtual",
    "run_worker",
    "study_attrs",
    "summarize",
    "worker_specs",
]
