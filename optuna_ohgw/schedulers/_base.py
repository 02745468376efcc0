"""Promotion-type schedulers: trials pause at rungs and the best paused ones are resumed."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import lineage
from optuna_ohgw.schedulers._rungs import rung_epochs

PROMOTION_RULES = ("floor", "quantile")
"""Which configurations of a rung may be resumed (default first; see ``promotion`` below)."""


class BasePromotionScheduler(abc.ABC):
    """Decides where trials pause and which paused configuration a free worker resumes.

    A configuration pauses at every rung below ``max_resource``. A free worker resumes the best
    not-yet-promoted paused configuration of the highest rung whose top ``1/eta`` it is in and
    whose next rung is allowed (:meth:`resource_limit`); when none qualifies, it starts a new
    configuration (Li et al., "A System for Massively Parallel Hyperparameter Tuning", 2020).

    Args:
        min_resource: ``r_min``, the first rung.
        reduction_factor: ``eta``.
        max_resource: The last rung (``max_epochs``).
        promotion: What "top ``1/eta``" means. ``"floor"`` (Li et al.): the best
            ``floor(n / eta)`` of the ``n`` configurations in the rung, so a rung promotes
            nothing before it holds ``eta`` of them. ``"quantile"`` (syne-tune, Ray Tune): those
            at least as good as the ``1 - 1/eta`` quantile (linear interpolation) of the rung's
            values, once it holds two; with two, the better one.
    """

    def __init__(
        self,
        min_resource: int,
        reduction_factor: int,
        max_resource: int,
        *,
        promotion: str = "floor",
    ) -> None:
        if promotion not in PROMOTION_RULES:
            raise ValueError(f"promotion must be one of {PROMOTION_RULES}, got {promotion!r}")
        self.min_resource = min_resource
        self.reduction_factor = reduction_factor
        self.max_resource = max_resource
        self.promotion = promotion
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
            for config in self.promotable(at_rung, maximize):
                candidate = waiting.get(config)
                if candidate is not None and lineage.resume_info(candidate)["epoch"] == rung:
                    return candidate
        return None

    def can_advance(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> bool:
        """Whether a paused configuration would still be resumed once no new one may start:
        the study is not done while one would (a rerun after a stop resumes it). A
        continuation whose checkpoint some worker failed to read does not count."""
        readable = [t for t in trials if not (lineage.resume_info(t) or {}).get("tried_by")]
        return self.choose(study, readable, allow_new=False) is not None

    def promotable(self, at_rung: dict[int, float], maximize: bool) -> list[int]:
        """The configurations of a rung (``config -> value``) in its top ``1/eta``, best first
        (see ``promotion`` in the class docstring)."""
        ranked = sorted(at_rung, key=lambda c: at_rung[c], reverse=maximize)
        if self.promotion == "floor":
            return ranked[: len(at_rung) // self.reduction_factor]
        if len(at_rung) < 2:
            return []
        q = 1.0 - 1.0 / self.reduction_factor if maximize else 1.0 / self.reduction_factor
        cutoff = float(np.quantile(list(at_rung.values()), q))
        return [c for c in ranked if (at_rung[c] >= cutoff if maximize else at_rung[c] <= cutoff)]

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
