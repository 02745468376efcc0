"""ForwardingSampler: the base of the samplers that wrap another one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState


class ForwardingSampler(BaseSampler):
    """Hands every :class:`~optuna.samplers.BaseSampler` hook to the sampler it wraps.

    Subclasses override the hooks they change and call ``super()`` for the rest. The wrapped
    sampler may depend on the trial: every per-trial hook asks :meth:`_inner` for it.

    Args:
        base: The wrapped sampler (:attr:`base_sampler`).
    """

    def __init__(self, base: BaseSampler) -> None:
        self._base = base

    @property
    def base_sampler(self) -> BaseSampler:
        """The wrapped sampler."""
        return self._base

    def _inner(self, study: Study, trial: FrozenTrial) -> BaseSampler:
        """The sampler that serves ``trial`` (:attr:`base_sampler` unless overridden)."""
        return self._base

    def reseed_rng(self) -> None:
        self._base.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._inner(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._inner(study, trial).sample_independent(
            study, trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._inner(study, trial).before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._inner(study, trial).after_trial(study, trial, state, values)
