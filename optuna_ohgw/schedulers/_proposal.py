"""A sampler wrapper that serves a scheduler's proposed values for a new configuration."""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw._forwarding import ForwardingSampler

PROPOSAL = "ohgw:proposal"
"""Trial system attr: ``{param: value}`` a scheduler (DyHPO) chose for this new configuration."""


def _proposed(trial: FrozenTrial, name: str, dist: BaseDistribution) -> Any | None:
    proposal = trial.system_attrs.get(PROPOSAL) or {}
    if name not in proposal:
        return None
    value = proposal[name]
    return value if compat.dist_contains(dist, value) else None


class ProposalSampler(ForwardingSampler):
    """Serves the values in a trial's :data:`PROPOSAL` system attr; everything else (and every
    trial without a proposal) comes from ``base``.

    Unlike an enqueued trial's ``fixed_params``, proposed values are *sampled* values: an
    :class:`~optuna_ohgw.OHGWSampler` wrapped around this one probes and nudges them like any
    other draw, which is how DyHPO's new configurations get their warm start.

    Args:
        base: The sampler of everything not proposed.
    """

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        values = dict(super().sample_relative(study, trial, search_space))
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
        return super().sample_independent(study, trial, param_name, param_distribution)
