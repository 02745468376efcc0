"""A base sampler seeded per trial: the draw of trial ``n`` depends on the study's seed, ``n``
and the history, never on which worker, machine or restart asks.

Seeding each worker's sampler once (with its index) makes every machine that numbers its
workers from 0, and every restarted worker, repeat the same draws. Trial numbers are handed out
atomically by the storage, so seeding with them gives distinct draws everywhere, reproducibly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from optuna import Study
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw.seeding import trial_seed

SAMPLER_STREAM = 1
"""Extra word of the per-trial seed, so the sampler's stream is not the model's (same seed and
trial number, see :mod:`optuna_ohgw.seeding`)."""


class TrialSeededSampler(BaseSampler):
    """Builds a fresh base sampler for each trial, seeded with the study seed and its number.

    Args:
        make: ``seed -> sampler``; it is called once per trial (Optuna's samplers keep their
            state in the storage, so a fresh instance loses nothing but its random stream).
        seed: The study's seed.
    """

    def __init__(self, *, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make = make
        self._seed = seed
        self._base = make(seed)

    @property
    def base_sampler(self) -> BaseSampler:
        """The sampler of the current trial."""
        return self._base

    def reseed_rng(self) -> None:
        self._base.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base = self._make(trial_seed(self._seed, trial.number, SAMPLER_STREAM))
        self._base.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._base.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._base.after_trial(study, trial, state, values)
