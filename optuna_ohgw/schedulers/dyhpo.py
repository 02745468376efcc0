"""DyHPO (Wistuba, Kadra, Grabocka, NeurIPS 2022): advance the configuration, paused or new,
whose next step has the highest multi-fidelity expected improvement under a deep-kernel GP."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import qmc

from optuna_ohgw import attrs, lineage
from optuna_ohgw._coords import from_unit as from_unit
from optuna_ohgw._coords import to_unit
from optuna_ohgw.schedulers._base import BasePromotionScheduler
from optuna_ohgw.schedulers._rungs import rung_epochs
from optuna_ohgw.schedulers._surrogate import (
    DeepKernelGP,
    SurrogateFitError,
    expected_improvement,
)

_logger = logging.getLogger("optuna_ohgw")

ACQUISITION = f"{attrs.PREFIX}.dyhpo.ei"
"""Trial user attr: the expected improvement for which DyHPO chose this segment."""
DECISION_SECONDS = f"{attrs.PREFIX}.dyhpo.decision_seconds"
"""Trial user attr: surrogate fit + acquisition time of the decision that chose this segment."""
OBSERVED = f"{attrs.PREFIX}.dyhpo.observed_epochs"
"""Trial user attr: how many epochs the surrogate was fitted on for that decision."""
ADVANCE_MODES = ("epoch", "rung")


def budget_ladder(
    mode: str, min_resource: int, reduction_factor: int, max_resource: int
) -> list[int]:
    """Where DyHPO pauses: every epoch from ``min_resource`` (``"epoch"``), or the geometric
    rungs of ASHA (``"rung"``); ``max_resource`` is always last."""
    if mode == "rung":
        return rung_epochs(min_resource, reduction_factor, max_resource)
    if mode != "epoch":
        raise ValueError(f"advance must be one of {ADVANCE_MODES}, got {mode!r}")
    rung_epochs(min_resource, reduction_factor, max_resource)  # validates the arguments
    return list(range(min_resource, max_resource + 1))


class DyHPO(BasePromotionScheduler):
    """Each decision fits the surrogate on every observed epoch of every configuration and
    scores every candidate at its *next* budget: each paused configuration at its last budget
    plus one step, and a fresh quasi-random pool of new configurations at the first budget.
    The incumbent of a budget is the best value observed at that budget (the best value
    observed at all while nothing reached it). The winner advances one step and pauses again.

    A paused configuration is resumed by claiming its WAITING continuation, which is atomic on
    every storage (:func:`~optuna_ohgw.schedulers.claim`), so two workers never advance the same
    configuration at once; one being advanced by another worker is RUNNING, so not a candidate.
    A new configuration's proposed values reach the trial through
    :class:`~optuna_ohgw.schedulers.ProposalSampler`, i.e. through the (OHGW-wrapped) Optuna
    sampler chain, so OHGW nudges them before the first step exactly as with ASHA.
    """

    def __init__(
        self,
        min_resource: int,
        reduction_factor: int,
        max_resource: int,
        space: Mapping[str, FloatDistribution],
        *,
        advance: str = "epoch",
        seed: int = 0,
        pool_size: int = 128,
        n_initial: int = 2,
        surrogate: DeepKernelGP | None = None,
    ) -> None:
        super().__init__(min_resource, reduction_factor, max_resource)
        self.rungs = budget_ladder(advance, min_resource, reduction_factor, max_resource)
        self.advance = advance
        self.space = {k: v for k, v in space.items() if isinstance(v, FloatDistribution)}
        self.names = sorted(self.space)
        self.seed = seed
        self.pool_size = pool_size
        self.n_initial = n_initial
        self.surrogate = surrogate or DeepKernelGP(len(self.names), max_resource - 1, seed=seed)
        self._decisions = 0
        self._proposal: dict[str, float] | None = None
        self._decision: dict[str, Any] = {}

    # ----- features -------------------------------------------------------------------------

    def _x(self, params: Mapping[str, Any]) -> list[float]:
        return [
            to_unit(float(params[n]), self.space[n]) if n in params else 0.5 for n in self.names
        ]

    def _next_budget(self, epoch: int) -> int | None:
        later = [b for b in self.rungs if b > epoch]
        return later[0] if later else None

    @staticmethod
    def _prefix(curve: Mapping[int, float], budget: int) -> list[float]:
        return [curve.get(e, 0.0) for e in range(1, budget)]

    def training_points(
        self,
        trials: Sequence[FrozenTrial],
        curves: Mapping[int, Mapping[int, float]] | None = None,
    ) -> tuple[list[list[float]], list[float], list[list[float]], list[float]]:
        """One point per observed epoch: (config, epoch / max, values before it) -> value.
        ``curves`` is ``lineage.learning_curves(trials)`` when the caller has it already."""
        if curves is None:
            curves = lineage.learning_curves(trials)
        params = {
            lineage.config_of(t): t.params
            for t in trials
            if t.state != TrialState.WAITING and t.params
        }
        xs, budgets, prefixes, ys = [], [], [], []
        for config, curve in sorted(curves.items()):
            if config not in params:
                continue
            x = self._x(params[config])
            for epoch, value in sorted(curve.items()):
                if not math.isfinite(value):
                    continue
                xs.append(x)
                budgets.append(epoch / self.max_resource)
                prefixes.append(self._prefix(curve, epoch))
                ys.append(value)
        return xs, budgets, prefixes, ys

    def _pool(self, worker_salt: int) -> list[list[float]]:
        sobol = qmc.Sobol(
            len(self.names), scramble=True, seed=np.random.default_rng([self.seed, worker_salt])
        )
        return sobol.random(self.pool_size).tolist()

    # ----- the decision ---------------------------------------------------------------------

    def choose(
        self, study: optuna.Study, trials: Sequence[FrozenTrial], allow_new: bool = True
    ) -> FrozenTrial | None:
        start = time.perf_counter()
        self._proposal, self._decision = None, {}
        self._decisions += 1
        maximize = study.direction == StudyDirection.MAXIMIZE
        # Paused configurations that can go further, with the budget they would go to.
        waiting: list[tuple[FrozenTrial, int]] = []
        for t in trials:
            if t.state == TrialState.WAITING and lineage.is_continuation(t):
                budget = self._next_budget(int(lineage.resume_info(t)["epoch"]))
                if budget is not None:
                    waiting.append((t, budget))
        if not waiting and not allow_new:
            return None
        curves = lineage.learning_curves(trials)
        xs, budgets, prefixes, ys = self.training_points(trials, curves)
        if allow_new and (len(curves) < self.n_initial or len(ys) < 2):
            return None  # the initial design: the sampler's own configurations
        try:
            self.surrogate.fit(xs, budgets, prefixes, ys)
        except SurrogateFitError as err:
            _logger.warning(
                f"DyHPO: {err}; this decision falls back to a new configuration from the "
                "sampler (or, when no new one is allowed, the paused one with the best value)"
            )
            return self._fallback([t for t, _ in waiting], curves, maximize, allow_new)

        best_at: dict[int, float] = {}
        for curve in curves.values():
            for epoch, value in curve.items():
                if math.isfinite(value) and (
                    epoch not in best_at or (value > best_at[epoch]) == maximize
                ):
                    best_at[epoch] = value
        overall = max(best_at.values()) if maximize else min(best_at.values())

        cand_x, cand_b, cand_prefix, incumbents = [], [], [], []
        for t, budget in waiting:
            cand_x.append(self._x(t.params))
            cand_b.append(budget / self.max_resource)
            cand_prefix.append(self._prefix(curves.get(lineage.config_of(t), {}), budget))
            incumbents.append(best_at.get(budget, overall))
        pool = self._pool(self._decisions * 1000 + len(trials)) if allow_new else []
        first = self.rungs[0]
        for u in pool:
            cand_x.append(u)
            cand_b.append(first / self.max_resource)
            cand_prefix.append([0.0] * (first - 1))
            incumbents.append(best_at.get(first, overall))
        mean, std = self.surrogate.predict(cand_x, cand_b, cand_prefix)
        ei = expected_improvement(
            mean, std, torch.tensor(incumbents, dtype=torch.float64), maximize
        )
        ei = torch.nan_to_num(ei, nan=-1.0)
        best = int(torch.argmax(ei))
        self._decision = {
            ACQUISITION: float(ei[best]),
            DECISION_SECONDS: time.perf_counter() - start,
            OBSERVED: len(ys),
        }
        if best < len(waiting):
            return waiting[best][0]
        u = pool[best - len(waiting)]
        self._proposal = {n: from_unit(v, self.space[n]) for n, v in zip(self.names, u)}
        return None

    def _fallback(
        self,
        waiting: list[FrozenTrial],
        curves: Mapping[int, Mapping[int, float]],
        maximize: bool,
        allow_new: bool,
    ) -> FrozenTrial | None:
        if allow_new or not waiting:
            return None

        def last(t: FrozenTrial) -> float:
            curve = curves.get(lineage.config_of(t), {})
            value = curve[max(curve)] if curve else -math.inf
            return value if maximize else -value

        return max(waiting, key=last)

    def can_advance(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> bool:
        """DyHPO advances any paused configuration below ``max_resource`` once no new one may
        start (:meth:`choose` always picks one), so one of them keeps the study open."""
        return any(
            t.state == TrialState.WAITING
            and lineage.is_continuation(t)
            and not lineage.resume_info(t).get("tried_by")
            and self._next_budget(int(lineage.resume_info(t)["epoch"])) is not None
            for t in trials
        )

    def new_configuration(self) -> dict[str, float] | None:
        return self._proposal

    def decision_attrs(self) -> dict[str, Any]:
        return dict(self._decision)

    def resource_limit(self, study: optuna.Study) -> int:
        return self.max_resource
