"""A base sampler seeded per trial: the draw of trial ``n`` depends on the study's seed, ``n``
and the history, never on which worker, machine or restart asks.

Seeding each worker's sampler once (with its index) makes every machine that numbers its
workers from 0, and every restarted worker, repeat the same draws. Trial numbers are handed out
atomically by the storage, so seeding with them gives distinct draws everywhere, reproducibly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from optuna import Study
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw._forwarding import ForwardingSampler
from optuna_ohgw.seeding import trial_seed

SAMPLER_STREAM = 1
"""Extra word of the per-trial seed, so the sampler's stream is not the model's (same seed and
trial number, see :mod:`optuna_ohgw.seeding`)."""

_TrialKey = tuple[int, int, int]


def _key(study: Study, trial: FrozenTrial) -> _TrialKey:
    return (id(compat.storage_of(study)), compat.study_id(study), compat.trial_id(study, trial))


class TrialSeededSampler(ForwardingSampler):
    """Builds a fresh base sampler for each trial, seeded with the study seed and its number.

    Each trial keeps its own sampler from ``before_trial`` to ``after_trial``, so trials that
    run at once in threads (``n_jobs``) never draw from each other's streams.

    Args:
        make: ``seed -> sampler``; it is called once per trial (Optuna's samplers keep their
            state in the storage, so a fresh instance loses nothing but its random stream).
        seed: The study's seed.
    """

    def __init__(self, *, make: Callable[[int], BaseSampler], seed: int) -> None:
        super().__init__(make(seed))  # base_sampler: the type every trial gets, study-seeded
        self._make = make
        self._seed = seed
        self._by_trial: dict[_TrialKey, BaseSampler] = {}
        self._lock = threading.Lock()

    def _inner(self, study: Study, trial: FrozenTrial) -> BaseSampler:
        with self._lock:
            return self._by_trial.get(_key(study, trial), self._base)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        sampler = self._make(trial_seed(self._seed, trial.number, SAMPLER_STREAM))
        with self._lock:
            self._by_trial[_key(study, trial)] = sampler
        sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        # A trial this process did not start (told for a dead worker) gets the study-seeded one.
        with self._lock:
            sampler = self._by_trial.pop(_key(study, trial), self._base)
        sampler.after_trial(study, trial, state, values)
