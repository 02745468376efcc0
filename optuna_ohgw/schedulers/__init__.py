"""Schedulers beyond Optuna's own: promotion-type ASHA, PASHA, DyHPO (imported on first use)."""

from typing import TYPE_CHECKING

from optuna_ohgw._lazy import lazy_exports

_EXPORTS = {
    "BasePromotionScheduler": "._base",
    "PromotionASHA": "._base",
    "Checkpointable": "._hooks",
    "PauseResumeHooks": "._hooks",
    "claim": "._claim",
    "close_paused": "._loop",
    "finish_study": "._loop",
    "run_promotion_worker": "._loop",
    "PROPOSAL": "._proposal",
    "ProposalSampler": "._proposal",
    "ResumeProbe": "._reprobe",
    "SCHEDULER_SPECS": "._registry",
    "SchedulerSpec": "._registry",
    "scheduler_spec": "._registry",
    "rung_epochs": "._rungs",
    "DeepKernelGP": "._surrogate",
    "SurrogateFitError": "._surrogate",
    "expected_improvement": "._surrogate",
    "DyHPO": ".dyhpo",
    "PASHA": ".pasha",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_ohgw.schedulers._base import BasePromotionScheduler, PromotionASHA
    from optuna_ohgw.schedulers._claim import claim
    from optuna_ohgw.schedulers._hooks import Checkpointable, PauseResumeHooks
    from optuna_ohgw.schedulers._loop import (
        close_paused,
        finish_study,
        run_promotion_worker,
    )
    from optuna_ohgw.schedulers._proposal import PROPOSAL, ProposalSampler
    from optuna_ohgw.schedulers._registry import SCHEDULER_SPECS, SchedulerSpec, scheduler_spec
    from optuna_ohgw.schedulers._reprobe import ResumeProbe
    from optuna_ohgw.schedulers._rungs import rung_epochs
    from optuna_ohgw.schedulers._surrogate import (
        DeepKernelGP,
        SurrogateFitError,
        expected_improvement,
    )
    from optuna_ohgw.schedulers.dyhpo import DyHPO
    from optuna_ohgw.schedulers.pasha import PASHA

__all__ = [
    "PASHA",
    "PROPOSAL",
    "SCHEDULER_SPECS",
    "BasePromotionScheduler",
    "Checkpointable",
    "DeepKernelGP",
    "DyHPO",
    "PauseResumeHooks",
    "PromotionASHA",
    "ProposalSampler",
    "ResumeProbe",
    "SchedulerSpec",
    "SurrogateFitError",
    "claim",
    "close_paused",
    "expected_improvement",
    "finish_study",
    "rung_epochs",
    "run_promotion_worker",
    "scheduler_spec",
]
