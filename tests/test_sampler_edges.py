"""OHGWSampler at the edges: enumerating and fixing samplers, shared samplers, failing probes,
and the trial's own seed."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.samplers import BruteForceSampler, GridSampler, PartialFixedSampler, RandomSampler
from torch import nn

import optuna_ohgw as ohgw
from optuna_ohgw import attrs
from optuna_ohgw.probes import FunctionProbe

optuna.logging.set_verbosity(optuna.logging.WARNING)

X = FloatDistribution(0.0, 1.0, step=0.25)
Y = FloatDistribution(0.0, 1.0, step=0.5)
SPACE = {"x": X, "y": Y}


def _grad_probe(calls: list[dict[str, float]] | None = None) -> FunctionProbe:
    def fn(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        if calls is not None:
            calls.append(dict(params))
        return 0.0, {name: 1.0 for name in params}

    return FunctionProbe(fn, ["x", "y"])


def _two_floats(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0, step=0.25) + trial.suggest_float(
        "y", 0.0, 1.0, step=0.5
    )


@pytest.mark.parametrize("kind", ["grid", "brute-force"])
def test_enumerating_samplers_are_served_untouched_with_one_warning(kind: str) -> None:
    grid = {"x": [0.0, 0.25, 0.5, 0.75, 1.0], "y": [0.0, 0.5, 1.0]}
    base = GridSampler(grid, seed=0) if kind == "grid" else BruteForceSampler(seed=0)
    calls: list[dict[str, float]] = []
    with pytest.warns(UserWarning, match="served untouched") as caught:
        sampler = ohgw.OHGWSampler(base, _grad_probe(calls), search_space=SPACE, seed=0)
    assert len(caught) == 1
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no further warning per trial
        study.optimize(_two_floats, n_trials=15)
    points = {(t.params["x"], t.params["y"]) for t in study.trials}
    assert points == {(x, y) for x in grid["x"] for y in grid["y"]}  # every point, none moved
    assert calls == []
    assert all(not any(k.startswith("ohgw.") for k in t.user_attrs) for t in study.trials)


def test_partial_fixed_values_are_untouched_and_the_others_warm_started() -> None:
    calls: list[dict[str, float]] = []
    base = PartialFixedSampler({"y": 0.5}, RandomSampler(seed=0))
    space = {"x": FloatDistribution(0.0, 1.0), "y": Y}
    with pytest.warns(UserWarning, match=r"fixed parameters \['y'\] are served untouched"):
        sampler = ohgw.OHGWSampler(base, _grad_probe(calls), search_space=space, seed=0)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_float("y", 0.0, 1.0, step=0.5)

    study.optimize(objective, n_trials=6)
    for trial, call in zip(study.trials, calls):
        assert trial.params["y"] == 0.5 and call["y"] == 0.5
        assert trial.user_attrs[attrs.STATUS] == "ok"
        assert attrs.raw("y") not in trial.user_attrs
        assert trial.params["x"] == trial.user_attrs[attrs.nudged("x")]
    assert len(calls) == 6
    assert any(t.user_attrs[attrs.step("x")] != 0.0 for t in study.trials)


def test_one_sampler_shared_by_two_in_memory_studies() -> None:
    """Trial ids restart at 0 in each in-memory storage: the state must not leak across."""
    sampler = ohgw.OHGWSampler(
        RandomSampler(seed=0), _grad_probe(), search_space=SPACE, seed=0, step="none"
    )
    study_a = optuna.create_study(sampler=sampler)
    study_b = optuna.create_study(sampler=sampler)
    a, b = study_a.ask(), study_b.ask()
    assert a._trial_id == b._trial_id
    xa = a.suggest_float("x", 0.0, 1.0, step=0.25)
    xb = b.suggest_float("x", 0.0, 1.0, step=0.25)
    ua = study_a.trials[0].user_attrs
    ub = study_b.trials[0].user_attrs
    assert xa == ua[attrs.nudged("x")] and xb == ub[attrs.nudged("x")]
    assert attrs.raw("x") in ub  # B's trial was probed, not served A's values


def _failing(value: float) -> FunctionProbe:
    def fn(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        if math.isnan(value):
            return value, {n: 1.0 for n in params}
        raise RuntimeError("bad model")

    return FunctionProbe(fn, ["x", "y"])


@pytest.mark.parametrize("value", [0.0, math.nan], ids=["exception", "nan"])
def test_max_consecutive_failures_raises(value: float) -> None:
    sampler = ohgw.OHGWSampler(
        RandomSampler(seed=0),
        _failing(value),
        search_space=SPACE,
        seed=0,
        max_consecutive_failures=3,
    )
    study = optuna.create_study(sampler=sampler)
    with pytest.raises(RuntimeError, match="failed 3 times in a row"):
        study.optimize(_two_floats, n_trials=10)
    statuses = [t.user_attrs[attrs.STATUS] for t in study.trials]
    prefix = "nonfinite" if math.isnan(value) else "error: RuntimeError: bad model"
    assert len(statuses) == 3 and all(s.startswith(prefix) for s in statuses)
    assert [t.state for t in study.trials][:2] == [optuna.trial.TrialState.COMPLETE] * 2
    assert study.trials[2].state == optuna.trial.TrialState.FAIL


def test_failures_never_raise_by_default_and_a_success_resets_the_count() -> None:
    outcomes = iter([False, False, True, False, False, True, False, False])

    def fn(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        if not next(outcomes):
            raise RuntimeError("flaky")
        return 0.0, {n: 1.0 for n in params}

    sampler = ohgw.OHGWSampler(
        RandomSampler(seed=0),
        FunctionProbe(fn, ["x", "y"]),
        search_space=SPACE,
        seed=0,
        max_consecutive_failures=3,
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(_two_floats, n_trials=8)
    assert [t.user_attrs[attrs.STATUS] == "ok" for t in study.trials] == [
        False,
        False,
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    default = ohgw.OHGWSampler(RandomSampler(seed=0), _failing(0.0), search_space=SPACE)
    study = optuna.create_study(sampler=default)
    study.optimize(_two_floats, n_trials=5)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    with pytest.raises(ValueError, match="max_consecutive_failures"):
        ohgw.OHGWSampler(probe=_grad_probe(), max_consecutive_failures=0)


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def test_the_probe_starts_from_the_trials_initial_weights() -> None:
    """Through the public API: the trial builds its model from ``ohgw.trial_seed(trial)``."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=gen), torch.randint(0, 3, (64,), generator=gen)
    probed: list[dict[str, torch.Tensor]] = []

    def factory(seed: int) -> nn.Module:
        model = _net(seed)
        probed.append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    space = {"lr": FloatDistribution(1e-3, 1.0, log=True)}
    probe = ohgw.LookaheadProbe(
        factory,
        (x[:48], y[:48]),
        (x[48:], y[48:]),
        {"lr": "lr"},
        optimizer=torch.optim.AdamW,
        batch_size=16,
    )
    sampler = ohgw.OHGWSampler(RandomSampler(seed=1), probe, search_space=space, seed=7)
    trained: list[dict[str, torch.Tensor]] = []

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 1e-3, 1.0, log=True)
        model = _net(ohgw.trial_seed(trial))
        trained.append({k: v.clone() for k, v in model.state_dict().items()})
        return 0.0

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=3)
    assert len(probed) == len(trained) == 3
    for p, t in zip(probed, trained):
        assert p.keys() == t.keys() and all(torch.equal(p[k], t[k]) for k in p)
    assert not torch.equal(trained[0]["0.weight"], trained[1]["0.weight"])
    for trial in study.trials:
        assert ohgw.trial_seed(trial) == trial.user_attrs[attrs.SEED]  # FrozenTrial: the attr
        assert trial.user_attrs[attrs.SEED] == sampler.trial_seed(trial.number)


def test_trial_seed_needs_an_ohgw_study() -> None:
    study = optuna.create_study()
    with pytest.raises(ValueError, match="OHGWSampler"):
        ohgw.trial_seed(study.ask())
    study.optimize(lambda t: 0.0, n_trials=1)
    with pytest.raises(ValueError, match="ohgw.seed"):
        ohgw.trial_seed(study.trials[0])
