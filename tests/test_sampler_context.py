"""A probe's context names (a width, a categorical) reach it as constants, also when the base
sampler proposes the probed floats relatively before the trial has suggested them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution

from optuna_ohgw import OHGWSampler, attrs
from optuna_ohgw.probes import BaseProbe, ProbeResult

X = FloatDistribution(0.0, 1.0)


class WidthProbe(BaseProbe):
    """Loss (x - width / 100)^2: the gradient needs the trial's width."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    @property
    def param_names(self) -> Sequence[str]:
        return ("x",)

    @property
    def context_names(self) -> Sequence[str]:
        return ("width", "act")

    def __call__(self, params: Mapping[str, Any], *, seed: int = 0) -> ProbeResult:
        self.seen.append(dict(params))
        d = params["x"] - params["width"] / 100
        return ProbeResult(value=d * d, grads={"x": 2 * d}, seconds=0.0)


class RelativeX(optuna.samplers.RandomSampler):
    """Proposes x relatively (as DyHPO's proposals and multivariate samplers do)."""

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return {"x": X}

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        return {"x": 0.9} if search_space else {}


@pytest.mark.parametrize("base", [optuna.samplers.RandomSampler, RelativeX])
def test_context_values_reach_the_probe(base: type) -> None:
    probe = WidthProbe()
    sampler = OHGWSampler(base(seed=0), probe, search_space={"x": X}, seed=0)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        width = trial.suggest_int("width", 10, 50)
        trial.suggest_categorical("act", ["relu", "gelu"])
        return (trial.suggest_float("x", 0.0, 1.0) - width / 100) ** 2

    study.optimize(objective, n_trials=3)
    assert len(probe.seen) == 3
    for t, seen in zip(study.trials, probe.seen):
        assert t.user_attrs[attrs.STATUS] == "ok"
        assert seen["width"] == t.params["width"] and seen["act"] == t.params["act"]
        assert t.params["x"] == t.user_attrs[attrs.nudged("x")] != t.user_attrs[attrs.raw("x")]
        if base is RelativeX:
            assert t.user_attrs[attrs.raw("x")] == 0.9  # the relative proposal, then nudged
