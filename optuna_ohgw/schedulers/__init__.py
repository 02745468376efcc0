"""Schedulers beyond Optuna's own: promotion-type ASHA, PASHA, DyHPO."""

from optuna_ohgw.schedulers._base import BasePromotionScheduler, PromotionASHA, rung_epochs
from optuna_ohgw.schedulers._hooks import Checkpointable, PauseResumeHooks
from optuna_ohgw.schedulers._loop import claim, close_paused, run_promotion_worker
from optuna_ohgw.schedulers._proposal import PROPOSAL, ProposalSampler
from optuna_ohgw.schedulers._reprobe import ResumeProbe
from optuna_ohgw.schedulers._surrogate import DeepKernelGP, SurrogateFitError, expected_improvement
from optuna_ohgw.schedulers.dyhpo import DyHPO
from optuna_ohgw.schedulers.pasha import PASHA

__all__ = [
    "PASHA",
    "PROPOSAL",
    "DeepKernelGP",
    "DyHPO",
    "ProposalSampler",
    "ResumeProbe",
    "SurrogateFitError",
    "expected_improvement",
    "BasePromotionScheduler",
    "Checkpointable",
    "PauseResumeHooks",
    "PromotionASHA",
    "claim",
    "close_paused",
    "rung_epochs",
    "run_promotion_worker",
]
