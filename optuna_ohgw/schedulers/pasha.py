"""PASHA (Bohdal et al., ICLR 2023): promotion ASHA whose maximum resource grows on demand."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from optuna_ohgw import attrs, lineage
from optuna_ohgw.schedulers._base import BasePromotionScheduler
from optuna_ohgw.schedulers._pasha_logic import decide_max_resource, initial_max_resource

MAX_RESOURCE = f"{attrs.PREFIX}.pasha.max_resource"
"""Study user attr: PASHA's current maximum resource (epochs)."""
EPSILON = f"{attrs.PREFIX}.pasha.epsilon"
INCREASES = f"{attrs.PREFIX}.pasha.increases"
"""Study user attr: one ``{"max_resource", "epsilon", "epochs_seen", "time"}`` per increase."""


class PASHA(BasePromotionScheduler):
    """Promotion-type ASHA that starts with maximum resource ``eta * r_min`` and raises it by one
    rung whenever the soft ranking of the configurations in the top two rungs is not stable.

    The state (current maximum, epsilon, the log of increases) lives in the study's user attrs,
    so every worker on the storage shares it and the dashboard and the report show it.
    """

    def resource_limit(self, study: optuna.Study) -> int:
        initial = initial_max_resource(self.min_resource, self.reduction_factor, self.max_resource)
        return int(study.user_attrs.get(MAX_RESOURCE, initial))

    def after_report(
        self, study: optuna.Study, trials: Sequence[FrozenTrial], epochs_done: int
    ) -> None:
        attrs_now = study.user_attrs
        current = self.resource_limit(study)
        if current >= self.max_resource:
            return
        decision = decide_max_resource(
            lineage.learning_curves(trials),
            min_resource=self.min_resource,
            reduction_factor=self.reduction_factor,
            max_resource=self.max_resource,
            current_max_resource=current,
            mode="max" if study.direction == StudyDirection.MAXIMIZE else "min",
            epsilon=float(attrs_now.get(EPSILON, 0.0)),
        )
        if decision.epsilon != attrs_now.get(EPSILON):
            study.set_user_attr(EPSILON, float(decision.epsilon))
        if decision.raised:
            # Several workers may decide at once; the maximum only ever grows.
            latest = self.resource_limit(study)
            if decision.max_resource > latest:
                study.set_user_attr(MAX_RESOURCE, int(decision.max_resource))
                log = list(study.user_attrs.get(INCREASES, []))
                log.append(
                    {
                        "max_resource": int(decision.max_resource),
                        "epsilon": float(decision.epsilon),
                        "epochs_seen": sum(
                            len(c) for c in lineage.learning_curves(trials).values()
                        ),
                        "time": datetime.datetime.now(datetime.UTC).isoformat(),
                    }
                )
                study.set_user_attr(INCREASES, log)
