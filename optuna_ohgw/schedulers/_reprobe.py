"""Re-probe at every promotion: nudge a resumed configuration from its checkpoint's weights.

The seed's warm start moves a configuration once, before its first epoch. Under a promotion
scheduler a configuration is paused at every rung and resumed later, so the hypergradient can be
taken again where it matters more: from the trained weights the configuration goes on from. When
a paused configuration is resumed (after its checkpoint is loaded), :class:`ResumeProbe` runs the
probe from those weights at the hyperparameters the configuration trains with, applies the step
rule in each parameter's internal coordinates (log space for log-scaled floats), clips to the
bounds, snaps to the step grid, and sets the new values on the training state; the checkpoint of
the next pause carries them on. Optuna's ``params`` of every segment stay the configuration's
starting values (a trial's parameters cannot change); the values in force are the lineage attrs
``ohgw.reprobe.*`` (:mod:`optuna_ohgw.attrs`), recorded on each resumed segment so that the
dashboard shows how the configuration moved.

The runner's probe (``build_resume_probe``: ``RecipeProbe(resumed=state)``) continues the
resumed trial exactly: its weights, its optimizer's state (moments, step counts, momentum
buffers) and its scheduler fast-forwarded to the resumed step (``docs/recipes.md``). A probe that
cannot (a scheduler without ``last_epoch``) raises, and the segment records
``ohgw.reprobe.status = "error: ..."`` with its values unchanged. The legacy task probe
(``task.make_probe(..., model=state.model)``) starts from the weights alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.distributions import FloatDistribution

from optuna_ohgw._coords import to_internal as _to_internal
from optuna_ohgw.attrs import (
    REPROBE_SECONDS,
    REPROBE_STATUS,
    reprobe_from,
    reprobe_grad,
    reprobe_to,
)
from optuna_ohgw.probes import BaseProbe
from optuna_ohgw.sampler import _move
from optuna_ohgw.seeding import trial_seed
from optuna_ohgw.steps import BaseStepRule, StepContext


class Tunable(Protocol):
    """A training state whose continuous hyperparameters can change between epochs."""

    hyperparameters: dict[str, float]

    def set_hyperparameters(self, values: Mapping[str, float]) -> None: ...


class ResumeProbe:
    """Called by :class:`~optuna_ohgw.schedulers.PauseResumeHooks` after a checkpoint is loaded.

    Args:
        make_probe: ``state -> probe`` whose look-ahead starts from ``state``'s current weights
            (the runner's: ``RecipeTrainer.make_probe(resumed=state)``).
        space: The float distributions to nudge (names as in ``state.hyperparameters``).
        step: The step rule (the same as the study's warm start).
        seed: Seeds the probe's batches and random-sign draws per segment trial number.
    """

    def __init__(
        self,
        make_probe: Callable[[Any], BaseProbe],
        space: Mapping[str, FloatDistribution],
        *,
        step: BaseStepRule,
        seed: int,
    ) -> None:
        self.make_probe = make_probe
        self.space = dict(space)
        self.step = step
        self.seed = int(seed)

    def __call__(self, trial: optuna.Trial, state: Tunable) -> dict[str, float]:
        """Nudge ``state`` in place, record the lineage attrs; return the values in force."""
        dists = self.space
        values = {n: float(state.hyperparameters[n]) for n in dists}
        seed = trial_seed(self.seed, trial.number)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, trial.number, 1]))
        spans = {n: _to_internal(d.high, d) - _to_internal(d.low, d) for n, d in dists.items()}
        record: dict[str, Any] = {}
        seconds = 0.0
        new = dict(values)
        status = "ok"
        try:
            probe = self.make_probe(state)

            def lookahead(delta: Mapping[str, float]) -> float:
                nonlocal seconds
                moved = {n: _move(v, float(delta[n]), dists[n]) for n, v in values.items()}
                res = probe(moved, seed=seed)
                seconds += res.seconds
                return float(res.value)

            grads = {n: 0.0 for n in values}
            if self.step.needs_probe:
                result = probe(values, seed=seed)
                seconds += result.seconds
                grads = {
                    n: float(result.grads[n]) * (values[n] if dists[n].log else 1.0)
                    for n in values
                }
                if not math.isfinite(result.value) or not all(map(math.isfinite, grads.values())):
                    status = f"nonfinite: probe loss {result.value}"
                record.update({reprobe_grad(n): g for n, g in grads.items() if math.isfinite(g)})
            if status == "ok":
                coords = {n: _to_internal(v, dists[n]) for n, v in values.items()}
                lows = {n: _to_internal(d.low, d) for n, d in dists.items()}
                highs = {n: _to_internal(d.high, d) for n, d in dists.items()}
                delta = self.step(grads, spans, rng, StepContext(coords, lows, highs, lookahead))
                new = {n: _move(v, float(delta[n]), dists[n]) for n, v in values.items()}
        except Exception as err:  # noqa: BLE001 - a probe must never crash the study
            status = f"error: {type(err).__name__}: {err}"
            new = dict(values)
        if status != "ok":  # one line, never a crash: the configuration trains on unchanged
            warnings.warn(f"re-probe of trial {trial.number} refused: {status}", stacklevel=2)
        state.set_hyperparameters(new)
        record[REPROBE_STATUS] = status
        record[REPROBE_SECONDS] = seconds
        for n in dists:
            record[reprobe_from(n)] = values[n]
            record[reprobe_to(n)] = new[n]
        for key, value in record.items():
            trial.set_user_attr(key, value)
        return new
