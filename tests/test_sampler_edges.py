"""OHGWSampler at the edges: enumerating and fixing samplers, shared samplers, failing probes,
and the trial's own seed."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path

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
    # The self-check builds the first trial's model once more, before its probe does.
    assert len(probed) == 4 and len(trained) == 3
    assert all(torch.equal(probed[0][k], probed[1][k]) for k in probed[0])
    for p, t in zip(probed[1:], trained):
        assert p.keys() == t.keys() and all(torch.equal(p[k], t[k]) for k in p)
    assert not torch.equal(trained[0]["0.weight"], trained[1]["0.weight"])
    for trial in study.trials:
        assert ohgw.trial_seed(trial) == trial.user_attrs[attrs.SEED]  # FrozenTrial: the attr
        assert trial.user_attrs[attrs.SEED] == sampler.trial_seed(trial.number)


def test_two_tuned_learning_rates_are_each_nudged_by_their_own_gradient() -> None:
    """Discriminative fine-tuning (issue 24): ``head_lr`` and ``backbone_lr`` share the role
    ``lr``; the sampler knows parameters by name, and each moves along its own hypergradient."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=gen), torch.randint(0, 3, (64,), generator=gen)

    def make_optimizer(model: nn.Module, h: Mapping[str, float]) -> torch.optim.Optimizer:
        backbone, head = model[0], model[2]
        return torch.optim.SGD(
            [
                {"params": backbone.parameters(), "lr": h["backbone_lr"]},
                {"params": head.parameters(), "lr": h["head_lr"]},
            ]
        )

    names = ("head_lr", "backbone_lr")
    space = {n: FloatDistribution(1e-3, 1.0, log=True) for n in names}
    probe = ohgw.LookaheadProbe(
        _net,
        (x[:48], y[:48]),
        (x[48:], y[48:]),
        dict.fromkeys(names, "lr"),
        optimizer=make_optimizer,
        batch_size=16,
    )
    sampler = ohgw.OHGWSampler(RandomSampler(seed=1), probe, search_space=space, seed=7)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: sum(t.suggest_float(n, 1e-3, 1.0, log=True) for n in names), 2)
    for trial in study.trials:
        assert trial.user_attrs[attrs.STATUS] == "ok", trial.user_attrs
        grads = [trial.user_attrs[attrs.grad(n)] for n in names]
        assert all(g != 0.0 for g in grads) and grads[0] != grads[1]
        for n, g in zip(names, grads):
            moved = trial.params[n] - trial.user_attrs[attrs.raw(n)]
            assert moved != 0.0 and (moved > 0) == (g < 0), n


def test_trial_seed_needs_an_ohgw_study() -> None:
    study = optuna.create_study()
    with pytest.raises(ValueError, match="OHGWSampler"):
        ohgw.trial_seed(study.ask())
    study.optimize(lambda t: 0.0, n_trials=1)
    with pytest.raises(ValueError, match="ohgw.seed"):
        ohgw.trial_seed(study.trials[0])


def _nested(kind: str, inner: optuna.samplers.BaseSampler) -> optuna.samplers.BaseSampler:
    from optuna_ohgw.schedulers import ProposalSampler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fixing = PartialFixedSampler({"y": 0.5}, inner)
        if kind == "partial-fixed-twice":
            fixing = PartialFixedSampler({"y": 0.5}, PartialFixedSampler({}, inner))
    return ProposalSampler(fixing) if kind == "proposal" else fixing


@pytest.mark.parametrize("kind", ["partial-fixed", "partial-fixed-twice", "proposal"])
def test_a_grid_inside_other_samplers_is_served_untouched(kind: str) -> None:
    """Only the outermost sampler was checked: the grid's values were nudged."""
    grid = {"x": [0.0, 0.25, 0.5, 0.75, 1.0]}
    calls: list[dict[str, float]] = []
    base = _nested(kind, GridSampler(grid, seed=0))
    with pytest.warns(UserWarning, match=r"GridSampler \(in \w+\) enumerates") as caught:
        sampler = ohgw.OHGWSampler(base, _grad_probe(calls), search_space=SPACE, seed=0)
    assert len(caught) == 1
    study = optuna.create_study(sampler=sampler)
    study.optimize(_two_floats, n_trials=5)
    assert sorted(t.params["x"] for t in study.trials) == grid["x"]  # every point, none moved
    assert all(t.params["y"] == 0.5 for t in study.trials) and calls == []


def test_fixed_values_inside_another_wrapper_are_untouched() -> None:
    calls: list[dict[str, float]] = []
    base = _nested("proposal", RandomSampler(seed=0))
    with pytest.warns(UserWarning, match=r"fixed parameters \['y'\] are served untouched"):
        sampler = ohgw.OHGWSampler(base, _grad_probe(calls), search_space=SPACE, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_two_floats, n_trials=4)
    assert len(calls) == 4 and all(call["y"] == 0.5 for call in calls)
    assert all(t.params["y"] == 0.5 and t.user_attrs[attrs.STATUS] == "ok" for t in study.trials)


@pytest.mark.parametrize("storage", ["sqlite", "in-memory"])
def test_a_shared_sampler_infers_each_studys_space_apart(storage: str, tmp_path: Path) -> None:
    """Without search_space=, one sampler shared by two studies: before, the second study in
    one SQLite storage failed every trial, and in memory it was probed with the first's range."""
    calls: list[dict[str, float]] = []
    sampler = ohgw.OHGWSampler(RandomSampler(seed=0), _grad_probe(calls), seed=0)
    url = f"sqlite:///{tmp_path}/shared.db" if storage == "sqlite" else None
    ranges = {"a": (0.0, 1.0), "b": (10.0, 20.0)}
    studies = {}
    for name, (low, high) in ranges.items():
        studies[name] = optuna.create_study(study_name=name, storage=url, sampler=sampler)
        studies[name].optimize(
            lambda t, low=low, high=high: (
                t.suggest_float("x", low, high) + t.suggest_float("y", low, high)
            ),
            n_trials=4,
        )
    for name, (low, high) in ranges.items():
        trials = studies[name].trials
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        statuses = [t.user_attrs[attrs.STATUS] for t in trials]
        assert statuses[0].startswith("skipped: no float distribution known yet")
        assert statuses[1:] == ["ok"] * 3
        for t in trials[1:]:
            for p in ("x", "y"):
                assert low <= t.user_attrs[attrs.raw(p)] <= high
                assert t.params[p] == t.user_attrs[attrs.nudged(p)] < t.user_attrs[attrs.raw(p)]
    assert len(calls) == 6
    assert all(0.0 <= c["x"] <= 1.0 for c in calls[:3])
    assert all(10.0 <= c["x"] <= 20.0 for c in calls[3:])


def test_line_search_with_no_finite_lookahead_is_a_failure() -> None:
    """Before, nothing moved and the trial recorded ``ok``."""
    seen: list[dict[str, float]] = []

    def fn(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        first = not seen or params == seen[0]
        seen.append(dict(params))
        return (1.0 if first else math.nan), {n: 1.0 for n in params}

    space = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}
    sampler = ohgw.OHGWSampler(
        RandomSampler(seed=0),
        FunctionProbe(fn, ["x", "y"]),
        search_space=space,
        seed=0,
        step="line-search",
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1), n_trials=1)
    (trial,) = study.trials
    status = trial.user_attrs[attrs.STATUS]
    assert status.startswith("error: FloatingPointError: line-search: no look-ahead loss is")
    assert attrs.status_kind(status) in attrs.FAILED_STATUSES
    assert trial.params["x"] == trial.user_attrs[attrs.raw("x")]  # the base sampler's values
    assert trial.user_attrs[attrs.LOOKAHEADS] == 4
