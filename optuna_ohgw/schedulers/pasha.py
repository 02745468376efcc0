"""PASHA (Bohdal et al., ICLR 2023): promotion ASHA whose maximum resource grows on demand."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from optuna_ohgw import attrs, lineage
from optuna_ohgw.schedulers._base import BasePromotionScheduler
from optuna_ohgw.schedulers._pasha_logic import decide_max_resource, initial_max_resource

EPSILON = f"{attrs.PREFIX}.pasha.epsilon"
"""Study user attr: the noise level of the last decision (a measurement, not a state)."""
INCREASE_PREFIX = f"{attrs.PREFIX}.pasha.increase."
"""Study user attrs ``ohgw.pasha.increase.<max_resource>``: one per raise of the maximum,
``{"max_resource", "epsilon", "epochs_seen", "time"}``."""


def increases(study_attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """PASHA's raises recorded on a study (its ``user_attrs``), lowest maximum first."""
    found = [v for k, v in study_attrs.items() if k.startswith(INCREASE_PREFIX)]
    return sorted(found, key=lambda entry: entry["max_resource"])


class PASHA(BasePromotionScheduler):
    """Promotion-type ASHA that starts with maximum resource ``eta * r_min`` and raises it by one
    rung whenever the soft ranking of the configurations in the top two rungs is not stable.

    The state lives in the study's user attrs, so every worker on the storage shares it and the
    dashboard and the report show it. Each raise is its own attr, keyed by the new maximum, and
    the current maximum is the largest one recorded: workers that decide at once can write the
    same raise twice but never lower the maximum or lose a raise (no read-modify-write).
    """

    def resource_limit(self, study: optuna.Study) -> int:
        initial = initial_max_resource(self.min_resource, self.reduction_factor, self.max_resource)
        return max([initial, *(int(i["max_resource"]) for i in increases(study.user_attrs))])

    def after_report(
        self, study: optuna.Study, trials: Sequence[FrozenTrial], epochs_done: int
    ) -> None:
        attrs_now = study.user_attrs
        initial = initial_max_resource(self.min_resource, self.reduction_factor, self.max_resource)
        current = max([initial, *(int(i["max_resource"]) for i in increases(attrs_now))])
        if current >= self.max_resource:
            return
        curves = lineage.learning_curves(trials)
        decision = decide_max_resource(
            curves,
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
            study.set_user_attr(
                f"{INCREASE_PREFIX}{int(decision.max_resource)}",
                {
                    "max_resource": int(decision.max_resource),
                    "epsilon": float(decision.epsilon),
                    "epochs_seen": sum(len(c) for c in curves.values()),
                    "time": datetime.datetime.now(datetime.UTC).isoformat(),
                },
            )
