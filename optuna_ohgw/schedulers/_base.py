"""Promotion-type schedulers: trials pause at rungs and the best paused ones are resumed."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import lineage
from optuna_ohgw.schedulers._rungs import rung_epochs


class BasePromotionScheduler(abc.ABC):
    """Decides where trials pause and which paused configuration a free worker resumes.

    A configuration pauses at every rung below ``max_resource``. A free worker resumes the best
    not-yet-promoted paused configuration of the highest rung whose top ``1/eta`` it is in and
    whose next rung is allowed (:meth:`resource_limit`); when none qualifies, it starts a new
    configuration (Li et al., "A System for Massively Parallel Hyperparameter Tuning", 2020).
    """

    def __init__(self, min_resource: int, reduction_factor: int, max_resource: int) -> None:
        self.min_resource = min_resource
        self.reduction_factor = reduction_factor
        self.max_resource = max_resource
        self.rungs = rung_epochs(min_resource, reduction_factor, max_resource)

    @abc.abstractmethod
    def resource_limit(self, study: optuna.Study) -> int:
        """The largest resource a configuration may be promoted to now."""

    def after_report(
        self, study: optuna.Study, trials: Sequence[FrozenTrial], epochs_done: int
    ) -> None:
        """Called after every reported epoch (PASHA updates its maximum resource here)."""
        return None

    def should_pause(self, epochs_done: int) -> bool:
        return epochs_done in self.rungs and epochs_done < self.max_resource

    def choose(
        self, study: optuna.Study, trials: Sequence[FrozenTrial], allow_new: bool = True
    ) -> FrozenTrial | None:
        """The paused continuation to resume next, or None to start a new configuration
        (``allow_new`` says whether the budget still allows one)."""
        waiting = {
            lineage.config_of(t): t
            for t in trials
            if t.state == TrialState.WAITING and lineage.is_continuation(t)
        }
        if not waiting:
            return None
        curves = lineage.learning_curves(trials)
        limit = self.resource_limit(study)
        maximize = study.direction == StudyDirection.MAXIMIZE
        for k in range(len(self.rungs) - 2, -1, -1):
            rung, following = self.rungs[k], self.rungs[k + 1]
            if following > limit:
                continue
            at_rung = {c: curve[rung] for c, curve in curves.items() if rung in curve}
            n_top = len(at_rung) // self.reduction_factor
            ranked = sorted(at_rung, key=lambda c: at_rung[c], reverse=maximize)[:n_top]
            for config in ranked:
                candidate = waiting.get(config)
                if candidate is not None and lineage.resume_info(candidate)["epoch"] == rung:
                    return candidate
        return None

    def new_configuration(self) -> dict[str, float] | None:
        """Values the next new configuration should start from, decided by the last
        :meth:`choose` (None: the sampler's own choice)."""
        return None

    def decision_attrs(self) -> dict[str, Any]:
        """User attrs to record on the trial the last :meth:`choose` picked (or started)."""
        return {}


class PromotionASHA(BasePromotionScheduler):
    """Promotion-type ASHA: the maximum resource is fixed."""

    def resource_limit(self, study: optuna.Study) -> int:
        return self.max_resource
