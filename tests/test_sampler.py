"""OHGWSampler around real Optuna samplers and studies, with an analytic probe.

The probe's loss is a quadratic in each distribution's internal coordinates (log x for the
log-scaled learning rate, x otherwise) with a known minimum, so the direction and the size of
every nudge can be computed by hand and compared with what the sampler stored.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.pruners import BasePruner, HyperbandPruner, NopPruner, SuccessiveHalvingPruner
from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GPSampler,
    NSGAIISampler,
    QMCSampler,
    RandomSampler,
    TPESampler,
)
from optuna.storages import InMemoryStorage, JournalStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import attrs
from optuna_ohgw._optuna_compat import set_user_attrs as _set_user_attrs
from optuna_ohgw.objective import EpochHooks, EpochObjective, epoch_objective
from optuna_ohgw.probes import BaseProbe, FunctionProbe, ProbeResult
from optuna_ohgw.sampler import OHGWSampler
from optuna_ohgw.steps import NormalizedStep, RawStep

optuna.logging.set_verbosity(optuna.logging.WARNING)

LR = FloatDistribution(1e-4, 1e-1, log=True)
MOM = FloatDistribution(0.0, 1.0)
WD = FloatDistribution(0.0, 1.0, step=0.05)
SPACE: dict[str, FloatDistribution] = {"lr": LR, "mom": MOM, "wd": WD}
NAMES = tuple(SPACE)
# The probe's minimum, in internal coordinates.
TARGET = {"lr": math.log(1e-2), "mom": 0.3, "wd": 0.6}
FRACTION = 0.1


def internal(value: float, dist: FloatDistribution) -> float:
    return math.log(value) if dist.log else value


def span(dist: FloatDistribution) -> float:
    return internal(dist.high, dist) - internal(dist.low, dist)


def quad(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    """sum (u - c)^2 in internal coordinates; gradients in external units (dL/dx)."""
    loss = 0.0
    grads: dict[str, float] = {}
    for name, dist in SPACE.items():
        x = params[name]
        d = internal(x, dist) - TARGET[name]
        loss += d * d
        grads[name] = 2.0 * d / x if dist.log else 2.0 * d
    return loss, grads


def internal_grad(name: str, raw: float) -> float:
    """x * dL/dx for log params, dL/dx otherwise: what ohgw.grad.* must hold."""
    _, grads = quad({n: (raw if n == name else _mid(d)) for n, d in SPACE.items()})
    return grads[name] * (raw if SPACE[name].log else 1.0)


def _mid(dist: FloatDistribution) -> float:
    return math.sqrt(dist.low * dist.high) if dist.log else (dist.low + dist.high) / 2


def expected_nudge(name: str, raw: float, k: int = 1) -> float:
    """The normalized-sign rule by hand: k moves of FRACTION*span downhill on the quadratic
    (re-evaluating the gradient's sign after each move), clipped to the bounds, snapped."""
    dist = SPACE[name]
    value = raw
    for _ in range(k):
        g = internal(value, dist) - TARGET[name]
        u = internal(value, dist) - FRACTION * span(dist) * float(np.sign(g))
        value = math.exp(u) if dist.log else u
        value = min(max(value, dist.low), dist.high)
        if dist.step is not None:
            value = dist.low + round((value - dist.low) / dist.step) * dist.step
    return value


class CallLog:
    """A FunctionProbe around ``fn`` that remembers every params dict it was given."""

    def __init__(self, fn: Callable[[Mapping[str, float]], Any] = quad, names=NAMES) -> None:
        self.calls: list[dict[str, float]] = []
        self.fn = fn

        def record(params: Mapping[str, float]) -> Any:
            self.calls.append(dict(params))
            return self.fn(params)

        self.probe = FunctionProbe(record, names)


class Recorder(BaseSampler):
    """Forwards every hook to a real sampler and records what it returned and which study
    object each hook received."""

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner
        self.relative: dict[int, dict[str, Any]] = {}
        self.independent: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        self.study_types: dict[str, set[str]] = defaultdict(set)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self.study_types["infer"].add(type(study).__name__)
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self.study_types["relative"].add(type(study).__name__)
        out = self.inner.sample_relative(study, trial, search_space)
        self.relative[trial.number] = dict(out)
        return out

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, dist: BaseDistribution
    ) -> Any:
        self.study_types["independent"].add(type(study).__name__)
        value = self.inner.sample_independent(study, trial, param_name, dist)
        self.independent[trial.number][param_name].append(value)
        return value

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.study_types["before"].add(type(study).__name__)
        self.inner.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.study_types["after"].add(type(study).__name__)
        self.inner.after_trial(study, trial, state, values)

    def base_value(self, number: int, name: str) -> Any:
        """The value the base sampler produced for ``name`` in trial ``number``."""
        independent = self.independent[number].get(name)
        if independent:
            assert len(independent) == 1, (number, name, independent)
            return independent[0]
        return self.relative[number][name]


def mixed_objective(trial: optuna.Trial) -> float:
    """Int first, then floats mixed with a categorical (the warm start happens at 'lr')."""
    layers = trial.suggest_int("layers", 1, 4)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    mom = trial.suggest_float("mom", 0.0, 1.0)
    wd = trial.suggest_float("wd", 0.0, 1.0, step=0.05)
    loss, _ = quad({"lr": lr, "mom": mom, "wd": wd})
    return loss + 0.01 * layers + (0.02 if act == "tanh" else 0.0)


def ohgw_attrs(trial: FrozenTrial) -> dict[str, Any]:
    return {k: v for k, v in trial.user_attrs.items() if k.startswith("ohgw.")}


def check_warm_started(
    trial: FrozenTrial, names: Sequence[str] = NAMES, rule: str = "normalized", k: int = 1
) -> None:
    """Everything an 'ok' warm start must satisfy, computed independently of the sampler."""
    ua = trial.user_attrs
    assert ua[attrs.STATUS] == "ok", ua
    assert ua[attrs.STEP_RULE] == rule
    assert ua[attrs.N_PROBES] == k
    assert type(ua[attrs.PROBE_SECONDS]) is float and ua[attrs.PROBE_SECONDS] >= 0.0
    assert type(ua[attrs.PROBE_LOSS]) is float
    raw_all = {n: ua[attrs.raw(n)] if attrs.raw(n) in ua else trial.params[n] for n in NAMES}
    assert ua[attrs.PROBE_LOSS] == pytest.approx(quad(raw_all)[0])
    for name in names:
        dist = SPACE[name]
        raw, nudged = ua[attrs.raw(name)], ua[attrs.nudged(name)]
        grad, step = ua[attrs.grad(name)], ua[attrs.step(name)]
        for value in (raw, nudged, grad, step):
            assert type(value) is float
        assert trial.params[name] == nudged
        assert trial.distributions[name] == dist
        assert dist._contains(raw) and dist._contains(nudged)
        # The gradient in internal coordinates (chain rule x * dL/dx for log-scaled floats).
        assert grad == pytest.approx(2.0 * (internal(raw, dist) - TARGET[name]))
        assert step == pytest.approx(internal(nudged, dist) - internal(raw, dist), abs=1e-12)
        if rule == "none":
            assert nudged == raw and step == 0.0
            continue
        # Downhill towards the known minimum: the step never has the gradient's sign...
        assert step * grad <= 0.0
        # ...and it is exactly the hand-computed normalized-sign move, clipped and snapped.
        assert nudged == pytest.approx(expected_nudge(name, raw, k), rel=1e-9, abs=1e-12)


SAMPLERS: dict[str, Callable[[], BaseSampler]] = {
    "random": lambda: RandomSampler(seed=0),
    # Optuna 5's TPESampler is multivariate by default for single-objective studies.
    "tpe": lambda: TPESampler(seed=0, n_startup_trials=3, multivariate=False),
    "tpe-multivariate": lambda: TPESampler(seed=0, n_startup_trials=3, multivariate=True),
    "tpe-default": lambda: TPESampler(seed=0, n_startup_trials=3),
    "cmaes": lambda: CmaEsSampler(seed=0, n_startup_trials=2),
    "gp": lambda: GPSampler(seed=0, n_startup_trials=3),
    "qmc": lambda: QMCSampler(seed=0),
    "nsgaii": lambda: NSGAIISampler(seed=0, population_size=4),
}
N_TRIALS = {"gp": 6, "nsgaii": 12}
RELATIVE = {"tpe-multivariate", "tpe-default", "cmaes", "gp", "qmc", "nsgaii"}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kind", list(SAMPLERS))
def test_wraps_every_float_sampler(kind: str) -> None:
    recorder = Recorder(SAMPLERS[kind]())
    log = CallLog()
    sampler = OHGWSampler(
        recorder, log.probe, step=NormalizedStep(FRACTION), search_space=SPACE, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    n_trials = N_TRIALS.get(kind, 8)
    study.optimize(mixed_objective, n_trials=n_trials)

    trials = study.get_trials()
    assert len(trials) == n_trials and all(t.state == TrialState.COMPLETE for t in trials)
    assert len(log.calls) == n_trials  # one probe per trial
    moved = 0
    for trial, call in zip(trials, log.calls):
        check_warm_started(trial)
        ua = trial.user_attrs
        # The probe saw the base sampler's raw values, and those are what the base produced.
        assert call == {n: ua[attrs.raw(n)] for n in NAMES}
        for name in NAMES:
            assert ua[attrs.raw(name)] == recorder.base_value(trial.number, name)
            moved += ua[attrs.step(name)] != 0.0
        # Integers and categoricals are exactly the base sampler's values, never nudged.
        for name in ("layers", "act"):
            assert trial.params[name] == recorder.base_value(trial.number, name)
            assert attrs.raw(name) not in ua and attrs.nudged(name) not in ua
        assert set(ohgw_attrs(trial)) == {
            attrs.STATUS,
            attrs.SEED,
            attrs.PROBE_SECONDS,
            attrs.PROBE_LOSS,
            attrs.STEP_RULE,
            attrs.N_PROBES,
            *(f(n) for n in NAMES for f in (attrs.raw, attrs.nudged, attrs.grad, attrs.step)),
        }
    assert moved >= n_trials * 2  # the nudge is not a silent no-op
    if kind in RELATIVE:
        # The relative path (sample_relative) really served probed floats.
        assert any(set(NAMES) & set(rel) for rel in recorder.relative.values()), kind


def test_float_suggested_first_and_nudge_targets_minimum() -> None:
    """Repeated warm starts from a fixed raw point walk to the analytic minimum."""

    def objective(trial: optuna.Trial) -> float:
        values = {
            n: trial.suggest_float(n, d.low, d.high, log=d.log, step=d.step)
            for n, d in SPACE.items()
        }
        return quad(values)[0]

    sampler = OHGWSampler(
        RandomSampler(seed=3),
        CallLog().probe,
        step=NormalizedStep(FRACTION),
        search_space=SPACE,
        n_steps=25,
        seed=0,
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=3)
    for trial in study.trials:
        check_warm_started(trial, k=25)
        for name, dist in SPACE.items():
            # 25 moves of a tenth of the range oscillate within one move of the minimum.
            dist_to_min = abs(internal(trial.params[name], dist) - TARGET[name])
            assert dist_to_min <= FRACTION * span(dist) + (dist.step or 0.0) + 1e-9


@pytest.mark.parametrize(("grad", "grid_moves"), [(-0.037, 1), (-0.02, 0), (0.062, -1)])
def test_moves_off_the_grid_are_snapped(grad: float, grid_moves: int) -> None:
    """A raw-rule move of 0.037 on a 0.05 grid lands on the nearest grid point."""
    names = ("wd",)
    probe = FunctionProbe(lambda p: (0.0, {"wd": grad}), names)
    sampler = OHGWSampler(
        RandomSampler(seed=0), probe, step=RawStep(eta=1.0), search_space={"wd": WD}, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("wd", 0.0, 1.0, step=0.05), n_trials=12)
    inside = 0
    for trial in study.trials:
        raw, nudged = trial.user_attrs[attrs.raw("wd")], trial.params["wd"]
        assert WD._contains(nudged) and nudged == trial.user_attrs[attrs.nudged("wd")]
        assert round(nudged / 0.05) * 0.05 == pytest.approx(nudged, abs=1e-12)
        if 0.0 < raw + grid_moves * 0.05 < 1.0:
            inside += 1
            assert nudged == pytest.approx(raw + grid_moves * 0.05, abs=1e-12)
    assert inside >= 6


# ----- probe=None and step 'none' -----------------------------------------------------------


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    "kind", ["random", "tpe", "tpe-multivariate", "tpe-default", "cmaes", "qmc", "nsgaii"]
)
def test_probe_none_is_the_unwrapped_sampler(kind: str) -> None:
    n_trials = N_TRIALS.get(kind, 10)
    plain = optuna.create_study(sampler=SAMPLERS[kind]())
    plain.optimize(mixed_objective, n_trials=n_trials)
    wrapped = optuna.create_study(
        sampler=OHGWSampler(SAMPLERS[kind](), None, search_space=SPACE, seed=0)
    )
    wrapped.optimize(mixed_objective, n_trials=n_trials)
    assert [t.params for t in wrapped.trials] == [t.params for t in plain.trials]
    assert [t.value for t in wrapped.trials] == [t.value for t in plain.trials]
    assert all(not ohgw_attrs(t) for t in wrapped.trials)


def test_step_none_keeps_raw_values_and_records_attrs() -> None:
    log = CallLog()
    sampler = OHGWSampler(
        TPESampler(seed=1, n_startup_trials=3), log.probe, step="none", search_space=SPACE, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(mixed_objective, n_trials=6)
    assert len(log.calls) == 6
    for trial in study.trials:
        check_warm_started(trial, rule="none")
        for name in NAMES:
            assert trial.params[name] == trial.user_attrs[attrs.raw(name)]
    # With the TPE seed fixed, the raw draws of a 'none' run are the plain sampler's values
    # for the first (startup) trial.
    plain = optuna.create_study(sampler=TPESampler(seed=1, n_startup_trials=3))
    plain.optimize(mixed_objective, n_trials=1)
    assert plain.trials[0].params["layers"] == study.trials[0].params["layers"]


def _floats_only(trial: optuna.Trial) -> float:
    values = {
        n: trial.suggest_float(n, d.low, d.high, log=d.log, step=d.step) for n, d in SPACE.items()
    }
    return quad(values)[0]


@pytest.mark.parametrize("kind", ["random", "tpe", "tpe-default"])
def test_step_none_is_bit_identical_to_the_base_sampler(kind: str) -> None:
    """Floats suggested in the declared order: the warm start draws them in the same order as
    the unwrapped sampler, so with step 'none' every trial must match bit for bit (no
    exp(log(x)) or re-snapping drift, which would also change every later TPE decision)."""
    plain = optuna.create_study(sampler=SAMPLERS[kind]())
    plain.optimize(_floats_only, n_trials=25)
    wrapped = optuna.create_study(
        sampler=OHGWSampler(
            SAMPLERS[kind](), CallLog().probe, step="none", search_space=SPACE, seed=0
        )
    )
    wrapped.optimize(_floats_only, n_trials=25)
    assert [t.params for t in wrapped.trials] == [t.params for t in plain.trials]
    for trial in wrapped.trials:
        assert trial.user_attrs[attrs.STATUS] == "ok"
        assert all(trial.user_attrs[attrs.step(n)] == 0.0 for n in NAMES)


def test_log_param_is_stepped_in_log_space_with_chain_rule() -> None:
    seen: list[tuple[float, float]] = []

    def fn(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        loss, grads = quad(params)
        seen.append((params["lr"], grads["lr"]))
        return loss, grads

    sampler = OHGWSampler(
        RandomSampler(seed=5),
        FunctionProbe(fn, NAMES),
        step=NormalizedStep(FRACTION),
        search_space=SPACE,
        seed=0,
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(mixed_objective, n_trials=6)
    for trial, (x, dldx) in zip(study.trials, seen):
        ua = trial.user_attrs
        assert ua[attrs.raw("lr")] == x
        assert ua[attrs.grad("lr")] == pytest.approx(x * dldx)
        assert ua[attrs.step("lr")] == pytest.approx(
            math.log(ua[attrs.nudged("lr")]) - math.log(ua[attrs.raw("lr")])
        )
        # A log-space move: unclipped, the ratio nudged/raw is exp(+-fraction*log-span).
        ratio = ua[attrs.nudged("lr")] / ua[attrs.raw("lr")]
        if LR.low < ua[attrs.nudged("lr")] < LR.high:
            assert abs(math.log(ratio)) == pytest.approx(FRACTION * math.log(1e3))
        # Linear params: grad attr is dL/dx itself.
        assert ua[attrs.grad("mom")] == pytest.approx(internal_grad("mom", ua[attrs.raw("mom")]))


# ----- enqueued, retried, fixed -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tpe", "cmaes"])
@pytest.mark.filterwarnings("ignore")
def test_enqueued_values_are_never_nudged(kind: str) -> None:
    log = CallLog()
    sampler = OHGWSampler(
        SAMPLERS[kind](), log.probe, step=NormalizedStep(FRACTION), search_space=SPACE, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(mixed_objective, n_trials=4)  # past the samplers' startup trials
    study.enqueue_trial({"lr": 0.005})
    study.enqueue_trial({"lr": 0.02, "wd": 0.35, "layers": 2})
    study.enqueue_trial({"lr": 0.03, "mom": 0.9, "wd": 0.1})
    study.enqueue_trial({"lr": 0.03, "mom": 0.9, "wd": 0.1}, skip_if_exists=False)
    n_before = len(log.calls)
    study.optimize(mixed_objective, n_trials=4)
    t_one, t_two, t_all, t_all2 = study.trials[4:8]

    assert t_one.params["lr"] == 0.005
    assert attrs.raw("lr") not in t_one.user_attrs
    check_warm_started(t_one, names=("mom", "wd"))
    assert t_two.params["lr"] == 0.02 and t_two.params["wd"] == 0.35
    assert t_two.params["layers"] == 2
    check_warm_started(t_two, names=("mom",))
    # The probe received the pinned values as constants next to the raw draws.
    calls = log.calls[n_before:]
    assert calls[0] == {
        "lr": 0.005,
        "mom": t_one.user_attrs[attrs.raw("mom")],
        "wd": t_one.user_attrs[attrs.raw("wd")],
    }
    assert calls[1] == {"lr": 0.02, "wd": 0.35, "mom": t_two.user_attrs[attrs.raw("mom")]}
    # Every probed float pinned: nothing to probe, the enqueued values are used as given.
    for t in (t_all, t_all2):
        assert (t.params["lr"], t.params["mom"], t.params["wd"]) == (0.03, 0.9, 0.1)
        assert not any(key.startswith(("ohgw.raw", "ohgw.nudged")) for key in t.user_attrs)
    assert len(calls) == 2


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_retried_trial_keeps_the_failed_trials_values() -> None:
    log = CallLog()
    sampler = OHGWSampler(
        RandomSampler(seed=0), log.probe, step=NormalizedStep(FRACTION), search_space=SPACE, seed=0
    )
    study = optuna.create_study(sampler=sampler)

    def failing(trial: optuna.Trial) -> float:
        mixed_objective(trial)
        raise RuntimeError("worker died")

    study.optimize(failing, n_trials=1, catch=(RuntimeError,))
    failed = study.trials[0]
    assert failed.state == TrialState.FAIL
    check_warm_started(failed, rule="normalized")
    # Optuna's own retry callback re-enqueues the failed trial's (nudged) params.
    RetryHeartbeatStaleTrialCallback(max_retry=1)(study, failed)
    n_calls = len(log.calls)
    study.optimize(mixed_objective, n_trials=1)
    retried = study.trials[1]
    assert retried.state == TrialState.COMPLETE
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retried) == 0
    assert retried.params == failed.params
    assert len(log.calls) == n_calls  # not probed again, not nudged again


# ----- distributions that differ from search_space -----------------------------------------


def test_different_distribution_gets_base_value_and_warning(caplog: pytest.LogCaptureFixture):
    recorder = Recorder(RandomSampler(seed=0))
    sampler = OHGWSampler(
        recorder, CallLog().probe, step=NormalizedStep(FRACTION), search_space=SPACE, seed=0
    )
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_float("mom", 0.0, 2.0)  # not the declared [0, 1]
        trial.suggest_float("wd", 0.0, 1.0, step=0.05)
        return 0.0

    with caplog.at_level(logging.WARNING, logger="optuna_ohgw"):
        study.optimize(objective, n_trials=3)
    warned = [r for r in caplog.records if r.name == "optuna_ohgw"]
    assert len(warned) == 3
    assert all("'mom'" in r.getMessage() for r in warned)
    for trial in study.trials:
        ua = trial.user_attrs
        # lr and wd still warm-started; mom is the base sampler's value for [0, 2].
        assert trial.params["lr"] == ua[attrs.nudged("lr")]
        assert trial.params["wd"] == ua[attrs.nudged("wd")]
        mom_draws = recorder.independent[trial.number]["mom"]
        assert len(mom_draws) == 2  # the raw draw for [0, 1], then the fallback for [0, 2]
        assert trial.params["mom"] == mom_draws[1]
        assert trial.distributions["mom"] == FloatDistribution(0.0, 2.0)


def test_first_suggested_distribution_overrides_declared(caplog: pytest.LogCaptureFixture):
    """Current behaviour: the distribution of the suggest that triggers the warm start is the
    one probed (it replaces the declared one), so that parameter is nudged inside its actual
    range without a warning; only later, mismatching suggests fall back to the base value."""
    sampler = OHGWSampler(
        RandomSampler(seed=0),
        CallLog().probe,
        step=NormalizedStep(FRACTION),
        search_space=SPACE,
        seed=0,
    )
    study = optuna.create_study(sampler=sampler)
    wide = FloatDistribution(0.0, 2.0)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("mom", 0.0, 2.0)  # first float, not the declared [0, 1]
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_float("wd", 0.0, 1.0, step=0.05)
        return 0.0

    with caplog.at_level(logging.WARNING, logger="optuna_ohgw"):
        study.optimize(objective, n_trials=3)
    assert not [r for r in caplog.records if r.name == "optuna_ohgw"]
    for trial in study.trials:
        ua = trial.user_attrs
        raw, nudged = ua[attrs.raw("mom")], trial.params["mom"]
        assert nudged == ua[attrs.nudged("mom")] and wide._contains(nudged)
        expected = min(max(raw - FRACTION * 2.0 * np.sign(raw - TARGET["mom"]), 0.0), 2.0)
        assert nudged == pytest.approx(expected)


# ----- no declared search space ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_inferred_space_skips_first_trial_then_warm_starts(kind: str) -> None:
    log = CallLog()
    sampler = OHGWSampler(SAMPLERS[kind](), log.probe, step=NormalizedStep(FRACTION), seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(mixed_objective, n_trials=5)
    first = study.trials[0]
    assert first.user_attrs[attrs.STATUS].startswith("skipped: ")
    assert "search_space" in first.user_attrs[attrs.STATUS]
    assert not any(k.startswith("ohgw.raw") for k in first.user_attrs)
    for trial in study.trials[1:]:
        check_warm_started(trial)
    assert len(log.calls) == 4


# ----- failing probes ----------------------------------------------------------------------


def _raising(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    raise RuntimeError("out of memory")


def _nan_loss(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    return math.nan, quad(params)[1]


def _inf_grad(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    loss, grads = quad(params)
    return loss, {**grads, "mom": math.inf}


@pytest.mark.parametrize(
    ("fn", "prefix"),
    [
        (_raising, "error: RuntimeError: out of memory"),
        (_nan_loss, "nonfinite:"),
        (_inf_grad, "nonfinite:"),
    ],
)
def test_failing_probe_keeps_raw_values(fn, prefix: str, caplog: pytest.LogCaptureFixture):
    sampler = OHGWSampler(
        TPESampler(seed=0, n_startup_trials=2),
        FunctionProbe(fn, NAMES),
        search_space=SPACE,
        seed=0,
    )
    study = optuna.create_study(sampler=sampler)
    with caplog.at_level(logging.WARNING, logger="optuna_ohgw"):
        study.optimize(mixed_objective, n_trials=4)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    warned = [r for r in caplog.records if r.name == "optuna_ohgw"]
    assert len(warned) == 4
    assert [f"Trial {t.number}:" in r.getMessage() for t, r in zip(study.trials, warned)] == [
        True
    ] * 4
    for trial in study.trials:
        ua = trial.user_attrs
        assert ua[attrs.STATUS].startswith(prefix), ua[attrs.STATUS]
        for name in NAMES:
            assert trial.params[name] == ua[attrs.raw(name)] == ua[attrs.nudged(name)]
            assert ua[attrs.step(name)] == 0.0
        json.dumps(ua)


def test_probe_failing_on_some_trials_only(caplog: pytest.LogCaptureFixture) -> None:
    count = {"n": 0}

    def flaky(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        count["n"] += 1
        if count["n"] % 2 == 0:
            raise ValueError("bad batch")
        return quad(params)

    sampler = OHGWSampler(
        RandomSampler(seed=0),
        FunctionProbe(flaky, NAMES),
        step=NormalizedStep(FRACTION),
        search_space=SPACE,
        seed=0,
    )
    study = optuna.create_study(sampler=sampler)
    with caplog.at_level(logging.WARNING, logger="optuna_ohgw"):
        study.optimize(mixed_objective, n_trials=6)
    statuses = [t.user_attrs[attrs.STATUS] for t in study.trials]
    assert statuses[0::2] == ["ok"] * 3
    assert all(s.startswith("error: ValueError") for s in statuses[1::2])
    assert len([r for r in caplog.records if r.name == "optuna_ohgw"]) == 3
    for trial in study.trials[0::2]:
        check_warm_started(trial)


def test_probe_failing_on_a_later_step_reverts_to_raw() -> None:
    count = {"n": 0}

    def second_fails(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        count["n"] += 1
        if count["n"] == 2:
            raise RuntimeError("diverged")
        return quad(params)

    sampler = OHGWSampler(
        RandomSampler(seed=0),
        FunctionProbe(second_fails, NAMES),
        n_steps=3,
        search_space=SPACE,
        seed=0,
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(mixed_objective, n_trials=1)
    ua = study.trials[0].user_attrs
    assert ua[attrs.STATUS].startswith("error: RuntimeError: diverged")
    for name in NAMES:
        assert study.trials[0].params[name] == ua[attrs.raw(name)]


# ----- pruners -----------------------------------------------------------------------------


def _epoch_setup(trial: optuna.Trial) -> dict[str, float]:
    params = {
        "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
        "mom": trial.suggest_float("mom", 0.0, 1.0),
        "wd": trial.suggest_float("wd", 0.0, 1.0, step=0.05),
    }
    return {"loss": quad(params)[0]}


def _epoch_train(state: dict[str, float], epoch: int) -> float:
    return state["loss"] + 1.0 / (epoch + 1)


@pytest.mark.parametrize("declared", [True, False])
def test_hyperband_bracket_studies(declared: bool) -> None:
    recorder = Recorder(TPESampler(seed=0, n_startup_trials=3))
    log = CallLog()
    sampler = OHGWSampler(
        recorder,
        log.probe,
        step=NormalizedStep(FRACTION),
        search_space=SPACE if declared else None,
        seed=0,
    )
    pruner = HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3)
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    study.optimize(EpochObjective(_epoch_train, setup=_epoch_setup, max_epochs=9), n_trials=14)
    for hook in ("before", "after", "independent"):
        assert recorder.study_types[hook] == {"_BracketStudy"}, hook
    states = {t.state for t in study.trials}
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    statuses = [t.user_attrs[attrs.STATUS] for t in study.trials]
    if declared:
        assert statuses == ["ok"] * 14
    else:
        assert statuses[0].startswith("skipped")
        assert statuses.count("ok") >= 12
    for trial in study.trials:
        if trial.user_attrs[attrs.STATUS] == "ok":
            check_warm_started(trial)
        assert trial.user_attrs[attrs.EPOCHS] == max(trial.intermediate_values)


def test_successive_halving_with_epoch_objective() -> None:
    log = CallLog()
    sampler = OHGWSampler(
        TPESampler(seed=0, n_startup_trials=3),
        log.probe,
        step=NormalizedStep(FRACTION),
        search_space=SPACE,
        seed=0,
    )
    pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    study.optimize(EpochObjective(_epoch_train, setup=_epoch_setup, max_epochs=8), n_trials=12)
    assert TrialState.PRUNED in {t.state for t in study.trials}
    assert len(log.calls) == 12
    for trial in study.trials:
        check_warm_started(trial)
        n_reported = len(trial.intermediate_values)
        assert sorted(trial.intermediate_values) == list(range(1, n_reported + 1))


def test_fully_trained_trial_completes_under_successive_halving() -> None:
    """max_epochs = r_min * eta^k puts a SuccessiveHalvingPruner rung at the last epoch; a trial
    that trained every epoch must still complete (final figures, eligible as the best trial)."""
    finals: list[int] = []

    def setup(trial: optuna.Trial) -> dict[str, int]:
        return {"n": trial.number}

    @epoch_objective(setup=setup, max_epochs=9, final=lambda s: finals.append(s["n"]) or {})
    def train(state: dict[str, int], epoch: int) -> float:
        # Later trials lead at rungs 1 and 3, then trail at epoch 9, where the last rung sits.
        return float(state["n"] if epoch == 8 else -state["n"])

    pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=3, min_early_stopping_rate=0)
    study = optuna.create_study(pruner=pruner)
    study.optimize(train, n_trials=12)
    full = [t for t in study.trials if len(t.intermediate_values) == 9]
    assert len(full) >= 2
    assert all(t.state == TrialState.COMPLETE for t in full)
    assert {t.number for t in full} == set(finals)
    unfinished = [t for t in study.trials if t.state != TrialState.COMPLETE]
    assert all(len(t.intermediate_values) < 9 for t in unfinished)


# ----- storage ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore")
def test_sqlite_storage_round_trip(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'ohgw.db'}"
    sampler = OHGWSampler(
        TPESampler(seed=0, n_startup_trials=2),
        CallLog().probe,
        step=NormalizedStep(FRACTION),
        search_space=SPACE,
        seed=0,
    )
    study = optuna.create_study(storage=url, study_name="s", sampler=sampler)
    study.optimize(mixed_objective, n_trials=4)
    in_process = [ohgw_attrs(t) for t in study.trials]

    loaded = optuna.load_study(study_name="s", storage=url)
    assert len(loaded.trials) == 4
    for trial, expected in zip(loaded.trials, in_process):
        check_warm_started(trial)
        ua = ohgw_attrs(trial)
        assert ua == expected
        assert json.loads(json.dumps(ua)) == ua
        for key, value in ua.items():
            if key.startswith(("ohgw.raw.", "ohgw.nudged.", "ohgw.grad.", "ohgw.step.")):
                assert type(value) is float
    # Works with a second process-style sampler on the same storage (fresh instance).
    sampler2 = OHGWSampler(TPESampler(seed=1), CallLog().probe, search_space=SPACE, seed=1)
    again = optuna.load_study(study_name="s", storage=url, sampler=sampler2)
    again.optimize(mixed_objective, n_trials=1)
    assert (
        optuna.load_study(study_name="s", storage=url).trials[-1].user_attrs[attrs.STATUS] == "ok"
    )


def _open(kind: str, tmp_path) -> Any:
    if kind == "memory":
        return InMemoryStorage()
    if kind == "journal":
        return JournalStorage(JournalFileBackend(str(tmp_path / "s.journal")))
    return f"sqlite:///{tmp_path / 's.db'}"


@pytest.mark.parametrize("kind", ["memory", "journal", "sqlite"])
def test_attrs_written_in_one_batch_per_storage(kind: str, tmp_path) -> None:
    """The batched attr write keeps attrs set earlier in the trial, matches what the public
    one-by-one path would store, survives reloading, and refuses finished trials."""
    storage = _open(kind, tmp_path)
    sampler = OHGWSampler(
        RandomSampler(seed=0), CallLog().probe, step=NormalizedStep(FRACTION), search_space=SPACE
    )
    study = optuna.create_study(storage=storage, study_name="b", sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("mine", "before the warm start")
        value = mixed_objective(trial)
        trial.set_user_attr("after", 1.5)
        return value

    study.optimize(objective, n_trials=3)
    reloaded = optuna.load_study(
        study_name="b", storage=_open(kind, tmp_path) if kind != "memory" else storage
    )
    for trial in reloaded.trials:
        check_warm_started(trial)
        assert trial.user_attrs["mine"] == "before the warm start"
        assert trial.user_attrs["after"] == 1.5
        assert len(ohgw_attrs(trial)) == 6 + 4 * len(NAMES)
    finished = study.trials[0]
    with pytest.raises(UpdateFinishedTrialError):
        _set_user_attrs(study._storage, finished._trial_id, {"ohgw.x": 1.0, "ohgw.y": 2.0})
    assert "ohgw.x" not in optuna.load_study(study_name="b", storage=storage).trials[0].user_attrs


def test_unknown_storage_gets_public_one_by_one_writes() -> None:
    class CountingStorage(InMemoryStorage):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []

        def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
            self.writes.append(key)
            super().set_trial_user_attr(trial_id, key, value)

    storage = CountingStorage()
    sampler = OHGWSampler(RandomSampler(seed=0), CallLog().probe, search_space=SPACE, seed=0)
    study = optuna.create_study(storage=storage, sampler=sampler)
    study.optimize(mixed_objective, n_trials=2)
    assert len(storage.writes) == 2 * (6 + 4 * len(NAMES))
    for trial in study.trials:
        assert trial.user_attrs[attrs.STATUS] == "ok"


# ----- n_steps and seeds -------------------------------------------------------------------


def _const_grad(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    """Loss lr-up, mom-down, wd-up; constant sign so every step moves the same way."""
    return 0.0, {"lr": -1.0 / params["lr"], "mom": 1.0, "wd": -1.0}


def test_n_steps_probes_n_times_and_moves_further() -> None:
    def run(n_steps: int) -> tuple[optuna.Study, CallLog]:
        log = CallLog(_const_grad)
        sampler = OHGWSampler(
            RandomSampler(seed=11),
            log.probe,
            step=NormalizedStep(0.05),
            n_steps=n_steps,
            search_space=SPACE,
            seed=0,
        )
        study = optuna.create_study(sampler=sampler)
        study.optimize(mixed_objective, n_trials=4)
        return study, log

    one, log1 = run(1)
    three, log3 = run(3)
    assert len(log1.calls) == 4 and len(log3.calls) == 12
    for t1, t3, calls in zip(one.trials, three.trials, zip(*[iter(log3.calls)] * 3)):
        assert t3.user_attrs[attrs.N_PROBES] == 3
        # Later probes see the already-moved values.
        assert calls[1]["mom"] == pytest.approx(max(calls[0]["mom"] - 0.05, 0.0))
        for name, dist in SPACE.items():
            raw = t1.user_attrs[attrs.raw(name)]
            assert t3.user_attrs[attrs.raw(name)] == raw  # same base draws
            s1, s3 = t1.user_attrs[attrs.step(name)], t3.user_attrs[attrs.step(name)]
            assert abs(s3) >= abs(s1) - 1e-12
            grad = 1.0 if name == "mom" else -1.0
            assert t3.params[name] == pytest.approx(expected_nudge_k(raw, dist, grad, 3, 0.05))
            if abs(s1) > 0 and dist.low < t3.params[name] < dist.high:
                assert abs(s3) == pytest.approx(3 * abs(s1))


def expected_nudge_k(raw: float, dist: FloatDistribution, g: float, k: int, f: float) -> float:
    value = raw
    for _ in range(k):
        u = internal(value, dist) - f * span(dist) * float(np.sign(g))
        value = math.exp(u) if dist.log else u
        value = min(max(value, dist.low), dist.high)
        if dist.step is not None:
            value = dist.low + round((value - dist.low) / dist.step) * dist.step
    return value


class SeedProbe(BaseProbe):
    """Records the seed each call receives; gradient from the quadratic."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    @property
    def param_names(self) -> Sequence[str]:
        return NAMES

    def __call__(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeResult:
        self.seeds.append(seed)
        value, grads = quad(params)
        return ProbeResult(value=value, grads=grads, seconds=0.0)


def _seeded_run(seed: int, rule: str = "random-sign", n_trials: int = 8):
    probe = SeedProbe()
    sampler = OHGWSampler(
        TPESampler(seed=2, n_startup_trials=3), probe, step=rule, search_space=SPACE, seed=seed
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(mixed_objective, n_trials=n_trials)
    return study, probe


def test_same_seed_same_trials() -> None:
    a, pa = _seeded_run(7)
    b, pb = _seeded_run(7)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    strip = ("ohgw.probe_seconds",)
    assert [{k: v for k, v in ohgw_attrs(t).items() if k not in strip} for t in a.trials] == [
        {k: v for k, v in ohgw_attrs(t).items() if k not in strip} for t in b.trials
    ]
    assert pa.seeds == pb.seeds
    assert len(set(pa.seeds)) == len(pa.seeds)  # a different probe seed per trial
    # A different OHGW seed (same base sampler seed) changes the probe seeds and the signs.
    c, pc = _seeded_run(8)
    assert not set(pc.seeds) & set(pa.seeds)
    startup = range(3)  # TPE's random startup trials draw the same raw values in both runs
    for i in startup:
        for n in NAMES:
            assert c.trials[i].user_attrs[attrs.raw(n)] == a.trials[i].user_attrs[attrs.raw(n)]
    signs_a = [np.sign(a.trials[i].user_attrs[attrs.step(n)]) for i in startup for n in NAMES]
    signs_c = [np.sign(c.trials[i].user_attrs[attrs.step(n)]) for i in startup for n in NAMES]
    assert signs_a != signs_c


def test_random_sign_rule_is_not_always_downhill() -> None:
    study, _ = _seeded_run(3, n_trials=10)
    products = [
        t.user_attrs[attrs.step(n)] * t.user_attrs[attrs.grad(n)]
        for t in study.trials
        for n in ("lr", "mom")
    ]
    assert any(p > 0 for p in products) and any(p < 0 for p in products)


def test_flipped_rule_moves_uphill() -> None:
    study, _ = _seeded_run(3, rule="flipped", n_trials=5)
    for t in study.trials:
        for n in ("lr", "mom"):
            assert t.user_attrs[attrs.step(n)] * t.user_attrs[attrs.grad(n)] >= 0.0


def test_probe_seed_survives_reseed_rng() -> None:
    """n_jobs > 1 makes Optuna call reseed_rng(); per-trial probe seeds must not change."""
    probe = SeedProbe()
    sampler = OHGWSampler(RandomSampler(seed=0), probe, search_space=SPACE, seed=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(mixed_objective, n_trials=2)
    sampler.reseed_rng()
    ref = SeedProbe()
    ref_sampler = OHGWSampler(RandomSampler(seed=0), ref, search_space=SPACE, seed=4)
    ref_study = optuna.create_study(sampler=ref_sampler)
    ref_study.optimize(mixed_objective, n_trials=4)
    study.optimize(mixed_objective, n_trials=2)
    assert probe.seeds == ref.seeds


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="n_steps"):
        OHGWSampler(probe=CallLog().probe, n_steps=0)
    with pytest.raises(ValueError, match="FloatDistribution"):
        OHGWSampler(
            probe=CallLog().probe,
            search_space={"n": optuna.distributions.IntDistribution(1, 3)},
        )
    sampler = OHGWSampler(probe=CallLog().probe, step="flipped", seed=1)
    assert isinstance(sampler.base_sampler, TPESampler)
    assert sampler.step_rule.name == "flipped"
    assert sampler.probe is not None


# ----- EpochObjective ----------------------------------------------------------------------


class AlwaysPrune(BasePruner):
    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return True


class Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    def setup(self, trial: optuna.Trial) -> dict[str, Any]:
        x = trial.suggest_float("x", 0.0, 1.0)
        self.log.append(("setup", trial.number))
        return {"x": x, "trial": trial.number}

    def train(self, state: dict[str, Any], epoch: int) -> float:
        self.log.append(("epoch", epoch))
        return state["x"] + 10.0 * epoch

    def final(self, state: dict[str, Any]) -> dict[str, float]:
        self.log.append(("final", state["trial"]))
        return {"test_acc": np.float32(0.5)}  # numpy scalars are converted to float

    def teardown(self, state: dict[str, Any]) -> None:
        self.log.append(("teardown", state["trial"]))

    def names(self) -> list[str]:
        return [e for e, _ in self.log]


def _objective(ev: Events, max_epochs: int = 3) -> EpochObjective:
    return EpochObjective(
        ev.train, setup=ev.setup, max_epochs=max_epochs, final=ev.final, teardown=ev.teardown
    )


def test_epoch_objective_reports_each_epoch_and_records_attrs() -> None:
    ev = Events()
    study = optuna.create_study(pruner=NopPruner(), sampler=RandomSampler(seed=0))
    study.optimize(_objective(ev, 4), n_trials=2)
    for trial in study.trials:
        x = trial.params["x"]
        assert trial.state == TrialState.COMPLETE
        assert trial.intermediate_values == {e + 1: x + 10.0 * e for e in range(4)}
        assert trial.value == x + 30.0
        ua = trial.user_attrs
        assert ua[attrs.EPOCHS] == 4
        seconds = attrs.unpack_floats(ua[attrs.EPOCH_SECONDS])
        assert len(seconds) == 4
        assert all(type(s) is float and s >= 0 for s in seconds)
        assert ua[attrs.TRAIN_SECONDS] == pytest.approx(sum(seconds))
        assert type(ua[attrs.SETUP_SECONDS]) is float
        assert ua["test_acc"] == 0.5 and type(ua["test_acc"]) is float
    assert ev.names() == ["setup", "epoch", "epoch", "epoch", "epoch", "final", "teardown"] * 2


def test_epoch_objective_prunes_without_final_but_with_teardown() -> None:
    ev = Events()
    study = optuna.create_study(pruner=AlwaysPrune(), sampler=RandomSampler(seed=0))
    study.optimize(_objective(ev, 5), n_trials=2)
    for trial in study.trials:
        assert trial.state == TrialState.PRUNED
        assert list(trial.intermediate_values) == [1]
        assert trial.user_attrs[attrs.EPOCHS] == 1
        assert "test_acc" not in trial.user_attrs
    assert ev.names() == ["setup", "epoch", "teardown"] * 2


def test_epoch_objective_teardown_on_exception() -> None:
    ev = Events()

    def boom(state: dict[str, Any], epoch: int) -> float:
        if epoch == 1:
            raise RuntimeError("CUDA error")
        return ev.train(state, epoch)

    obj = EpochObjective(boom, setup=ev.setup, max_epochs=3, final=ev.final, teardown=ev.teardown)
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    with pytest.raises(RuntimeError, match="CUDA error"):
        study.optimize(obj, n_trials=1)
    assert ev.names() == ["setup", "epoch", "teardown"]
    assert study.trials[0].state == TrialState.FAIL
    assert study.trials[0].user_attrs[attrs.EPOCHS] == 1


def test_epoch_objective_nonfinite_value_fails_trial_and_tears_down() -> None:
    ev = Events()
    obj = EpochObjective(
        lambda s, e: math.nan, setup=ev.setup, max_epochs=3, final=ev.final, teardown=ev.teardown
    )
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(obj, n_trials=1)
    assert study.trials[0].state == TrialState.FAIL
    assert ev.names() == ["setup", "teardown"]


class SkipAndStop(EpochHooks[dict[str, Any]]):
    def __init__(self, first: int, stop_after: int | None) -> None:
        self.first = first
        self.stop_after = stop_after
        self.after: list[tuple[int, float]] = []

    def start(self, trial: optuna.Trial, state: dict[str, Any]) -> int:
        return self.first

    def after_epoch(self, trial, state, epochs_done: int, value: float) -> bool:
        self.after.append((epochs_done, value))
        return self.stop_after is not None and epochs_done >= self.stop_after


def test_epoch_hooks_start_skips_epochs() -> None:
    ev = Events()
    obj = _objective(ev, 5)
    obj.hooks = SkipAndStop(first=3, stop_after=None)
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    study.optimize(obj, n_trials=1)
    trial = study.trials[0]
    x = trial.params["x"]
    assert [e for n, e in ev.log if n == "epoch"] == [3, 4]
    assert trial.intermediate_values == {4: x + 30.0, 5: x + 40.0}
    assert trial.user_attrs[attrs.EPOCHS] == 2  # the resource this run used: epochs trained
    assert len(attrs.unpack_floats(trial.user_attrs[attrs.EPOCH_SECONDS])) == 2
    assert obj.hooks.after == [(4, x + 30.0), (5, x + 40.0)]
    assert ev.names()[-2:] == ["final", "teardown"]


def test_epoch_hooks_after_epoch_stops_early_and_runs_final() -> None:
    ev = Events()
    obj = _objective(ev, 10)
    obj.hooks = SkipAndStop(first=0, stop_after=2)
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    study.optimize(obj, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert trial.value == trial.params["x"] + 10.0
    assert list(trial.intermediate_values) == [1, 2]
    assert ev.names() == ["setup", "epoch", "epoch", "final", "teardown"]


def test_epoch_objective_decorator() -> None:
    ev = Events()

    @epoch_objective(setup=ev.setup, max_epochs=2, final=ev.final, teardown=ev.teardown)
    def my_train(state: dict[str, Any], epoch: int) -> float:
        """Docstring kept."""
        return ev.train(state, epoch)

    assert isinstance(my_train, EpochObjective)
    assert my_train.__name__ == "my_train" and my_train.__doc__ == "Docstring kept."
    assert my_train.max_epochs == 2
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    study.optimize(my_train, n_trials=1)
    assert list(study.trials[0].intermediate_values) == [1, 2]
    assert ev.names() == ["setup", "epoch", "epoch", "final", "teardown"]
    with pytest.raises(ValueError, match="max_epochs"):
        EpochObjective(ev.train, setup=ev.setup, max_epochs=0)


def test_epoch_objective_with_ohgw_and_pruner() -> None:
    """The whole loop: OHGW nudges at setup's first suggest, the pruner stops some trials."""
    log = CallLog()
    sampler = OHGWSampler(
        TPESampler(seed=0, n_startup_trials=2),
        log.probe,
        step=NormalizedStep(FRACTION),
        search_space=SPACE,
        seed=0,
    )
    torn: list[float] = []
    obj = EpochObjective(
        _epoch_train, setup=_epoch_setup, max_epochs=4, teardown=lambda s: torn.append(s["loss"])
    )
    study = optuna.create_study(sampler=sampler, pruner=AlwaysPrune())
    study.optimize(obj, n_trials=3)
    assert len(torn) == 3 and len(log.calls) == 3
    for trial in study.trials:
        assert trial.state == TrialState.PRUNED
        check_warm_started(trial)
        # The trained state uses the nudged values.
        assert torn[trial.number] == pytest.approx(quad(trial.params)[0])


def test_fully_enqueued_trial_is_marked_skipped() -> None:
    probe = FunctionProbe(lambda p: (0.0, {"x": 1.0}), ["x"])
    space = {"x": FloatDistribution(0.0, 1.0)}
    sampler = OHGWSampler(optuna.samplers.RandomSampler(seed=0), probe, search_space=space, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"x": 0.25})
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=2)
    first, second = study.trials
    assert first.params["x"] == 0.25
    assert first.user_attrs[attrs.STATUS].startswith("skipped: every probed parameter is fixed")
    assert second.user_attrs[attrs.STATUS] == "ok"


def test_line_search_through_the_sampler_charges_lookaheads_and_lands_on_the_best_scale() -> None:
    # Quadratic look-ahead loss in log(lr), minimum at lr = 0.01: the chosen value must be the
    # best of the four clipped candidates, found here by brute force.
    names = ["lr"]
    space = {"lr": FloatDistribution(1e-4, 1.0, log=True)}

    def fn(p):  # type: ignore[no-untyped-def]
        u = math.log(p["lr"]) - math.log(0.01)
        return u * u, {"lr": 2.0 * u / p["lr"]}

    probe = FunctionProbe(fn, names)
    sampler = OHGWSampler(
        RandomSampler(seed=3), probe, step="line-search", search_space=space, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    for _ in range(3):
        study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=1)
    span = math.log(1.0) - math.log(1e-4)
    for t in study.trials:
        raw = t.user_attrs[attrs.raw("lr")]
        u0 = math.log(raw) - math.log(0.01)
        sign = math.copysign(1.0, u0)

        def moved(s: float) -> float:
            return min(max(math.log(raw) - sign * s * 0.05 * span, -span), 0.0)  # noqa: B023

        best = min((0.5, 1.0, 2.0, 4.0), key=lambda s: (moved(s) - math.log(0.01)) ** 2)
        expected = math.exp(moved(best))
        assert t.params["lr"] == pytest.approx(expected)
        assert t.user_attrs[attrs.LOOKAHEADS] == 4
        assert t.user_attrs[attrs.N_PROBES] == 1
        assert t.user_attrs[attrs.STATUS] == "ok"


def test_line_search_compares_losses_without_hypergradients() -> None:
    """The look-aheads go through ``probe.loss`` (no hypergradient), the step through one full
    call; a probe that does not override ``loss`` gets the base class's full-call default."""

    def fn(p):  # type: ignore[no-untyped-def]
        u = math.log(p["lr"]) - math.log(0.01)
        return u * u, {"lr": 2.0 * u / p["lr"]}

    class Counting(FunctionProbe):
        def __init__(self) -> None:
            super().__init__(fn, ["lr"])
            self.full = self.alone = 0

        def __call__(self, params, *, seed=0):  # type: ignore[no-untyped-def]
            self.full += 1
            return super().__call__(params, seed=seed)

        def loss(self, params, *, seed=0):  # type: ignore[no-untyped-def]
            self.alone += 1
            return super().loss(params, seed=seed)  # the default: one full call

    probe = Counting()
    space = {"lr": FloatDistribution(1e-4, 1.0, log=True)}
    sampler = OHGWSampler(
        RandomSampler(seed=3), probe, step="line-search", search_space=space, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=2)
    assert probe.alone == 8  # four scales per trial
    assert probe.full == 2 + 8  # one probe per trial, plus the default loss() delegating


def test_toward_middle_runs_no_probe() -> None:
    calls = []

    def fn(p):  # type: ignore[no-untyped-def]
        calls.append(p)
        return 0.0, {"x": 1.0}

    space = {"x": FloatDistribution(0.0, 10.0)}
    sampler = OHGWSampler(
        RandomSampler(seed=0), FunctionProbe(fn, ["x"]), step="toward-middle", search_space=space
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 10.0), n_trials=5)
    assert calls == []
    for t in study.trials:
        raw = t.user_attrs[attrs.raw("x")]
        assert t.params["x"] == pytest.approx(raw + math.copysign(min(0.5, abs(5 - raw)), 5 - raw))
        assert t.user_attrs[attrs.N_PROBES] == 0 and t.user_attrs[attrs.PROBE_SECONDS] == 0.0
        assert attrs.grad("x") not in t.user_attrs
