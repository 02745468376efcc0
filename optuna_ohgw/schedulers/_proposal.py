"""A sampler wrapper that serves a scheduler's proposed values for a new configuration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import _optuna_compat as compat

PROPOSAL = "ohgw:proposal"
"""Trial system attr: ``{param: value}`` a scheduler (DyHPO) chose for this new configuration."""


def _proposed(trial: FrozenTrial, name: str, dist: BaseDistribution) -> Any | None:
    proposal = trial.system_attrs.get(PROPOSAL) or {}
    if name not in proposal:
        return None
    value = proposal[name]
    return value if compat.dist_contains(dist, value) else None


class ProposalSampler(BaseSampler):
    """Serves the values in a trial's :data:`PROPOSAL` system attr; everything else (and every
    trial without a proposal) comes from ``base``.

    Unlike an enqueued trial's ``fixed_params``, proposed values are *sampled* values: an
    :class:`~optuna_ohgw.OHGWSampler` wrapped around this one probes and nudges them like any
    other draw, which is how DyHPO's new configurations get their warm start.
    """

    def __init__(self, base: BaseSampler) -> None:
        self._base = base

    @property
    def base_sampler(self) -> BaseSampler:
        return self._base

    def reseed_rng(self) -> None:
        self._base.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        values = dict(self._base.sample_relative(study, trial, search_space))
        for name, dist in search_space.items():
            value = _proposed(trial, name, dist)
            if value is not None:
                values[name] = value
        return values

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        value = _proposed(trial, param_name, param_distribution)
        if value is not None:
            return value
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._base.after_trial(study, trial, state, values)
