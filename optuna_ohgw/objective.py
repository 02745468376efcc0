"""Turn "build my state from a trial" + "train one epoch" into an Optuna objective.

The decorator owns the epoch loop: it reports the metric after every epoch (the step is the
number of epochs trained, i.e. the resource the pruner sees), asks the pruner, records per-epoch
compute seconds and the resource used as user attrs, and tears the state down however the trial
ends. The loop calls an :class:`EpochHooks` object at its start and after each epoch, so
schedulers that pause and resume trials can restore and save checkpoints without any change to
the user's functions.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import optuna

from optuna_ohgw import attrs

S = TypeVar("S")


class EpochHooks(Generic[S]):
    """Extension points of the epoch loop; the default runs every trial from epoch 0 to the end."""

    def start(self, trial: optuna.Trial, state: S) -> int:
        """Prepare ``state`` (e.g. load a checkpoint) and return the first epoch to train."""
        return 0

    def after_epoch(self, trial: optuna.Trial, state: S, epochs_done: int, value: float) -> bool:
        """Called after each reported epoch; return True to end this trial's run here."""
        return False


class EpochObjective(Generic[S]):
    """An Optuna objective built from ``setup(trial) -> state`` and ``train_epoch(state, epoch)``.

    Args:
        train_epoch: Trains one epoch (``epoch`` counts from 0) and returns the metric the pruner
            and the study see (for example validation accuracy).
        setup: Suggests the hyperparameters and builds the training state (model, optimizer,
            data). Suggest floats here so :class:`~optuna_ohgw.OHGWSampler` can warm-start them.
        max_epochs: The maximum resource of a trial.
        final: Optional ``state -> {name: value}`` run when a trial ends without being pruned
            (after its last epoch, or when the hooks pause it), for example test accuracy;
            the values are stored as user attrs.
        teardown: Optional ``state -> None`` run however the trial ends (free GPU memory, files).
    """

    def __init__(
        self,
        train_epoch: Callable[[S, int], float],
        *,
        setup: Callable[[optuna.Trial], S],
        max_epochs: int,
        final: Callable[[S], Mapping[str, float]] | None = None,
        teardown: Callable[[S], None] | None = None,
    ) -> None:
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be at least 1, got {max_epochs}.")
        self.train_epoch = train_epoch
        self.setup = setup
        self.max_epochs = max_epochs
        self.final = final
        self.teardown = teardown
        self.hooks: EpochHooks[S] = EpochHooks()
        functools.update_wrapper(self, train_epoch)

    def __call__(self, trial: optuna.Trial) -> float:
        start = time.perf_counter()
        state = self.setup(trial)
        trial.set_user_attr(attrs.SETUP_SECONDS, time.perf_counter() - start)
        epoch_seconds: list[float] = []
        value = math.nan
        try:
            epoch = self.hooks.start(trial, state)
            while epoch < self.max_epochs:
                tick = time.perf_counter()
                value = float(self.train_epoch(state, epoch))
                epoch_seconds.append(time.perf_counter() - tick)
                epoch += 1
                trial.report(value, epoch)
                if not math.isfinite(value):
                    return value  # Optuna fails the trial with a warning; the study goes on
                # A trial that trained every epoch completes: SuccessiveHalvingPruner has a rung
                # exactly at max_epochs whenever max_epochs = r_min * eta^k, and would otherwise
                # prune a fully trained trial (no final figures, never the best trial).
                if epoch < self.max_epochs and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {epoch} (value {value:.6g})")
                if self.hooks.after_epoch(trial, state, epoch, value):
                    break
            # Also when the hooks end the run early (a pause): a paused configuration that is
            # never resumed (PASHA's top rung) may be the study's answer and needs its figure.
            if self.final is not None:
                for key, extra in self.final(state).items():
                    trial.set_user_attr(key, float(extra))
            return value
        finally:
            # Written once at the end (not per epoch) to keep storage writes, and so lock
            # contention between parallel workers, low.
            self._record(trial, len(epoch_seconds), epoch_seconds)
            if self.teardown is not None:
                self.teardown(state)

    @staticmethod
    def _record(trial: optuna.Trial, epochs: int, epoch_seconds: list[float]) -> None:
        trial.set_user_attr(attrs.EPOCHS, epochs)
        trial.set_user_attr(attrs.EPOCH_SECONDS, attrs.pack_floats(epoch_seconds))
        trial.set_user_attr(attrs.TRAIN_SECONDS, float(sum(epoch_seconds)))


def epoch_objective(
    *,
    setup: Callable[[optuna.Trial], S],
    max_epochs: int,
    final: Callable[[S], Mapping[str, float]] | None = None,
    teardown: Callable[[S], None] | None = None,
) -> Callable[[Callable[[S, int], float]], EpochObjective[S]]:
    """Decorator form of :class:`EpochObjective`::

    @epoch_objective(setup=build, max_epochs=20)
    def objective(state, epoch):
        ...  # train one epoch
        return val_accuracy

    study.optimize(objective, n_trials=50)
    """

    def wrap(train_epoch: Callable[[S, int], float]) -> EpochObjective[S]:
        return EpochObjective(
            train_epoch, setup=setup, max_epochs=max_epochs, final=final, teardown=teardown
        )

    return wrap
