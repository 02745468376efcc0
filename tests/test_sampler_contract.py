"""Optuna's own sampler contract suite with samplers wrapped by OHGWSampler.

The probe differentiates ``x`` (a constant gradient of 1), the float most of the suite's cases
suggest, so the warm start is exercised on the distributions those cases give ``x``: bounds, log
scale, ``step`` grids, single-point ranges, relative and independent sampling. (A probe over
names a study never suggests is skipped for every trial, with a status saying so: the probe needs
a value for each of its parameters.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from optuna.samplers import BaseSampler, CmaEsSampler, QMCSampler, RandomSampler, TPESampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase

from optuna_ohgw import OHGWSampler
from optuna_ohgw.probes import FunctionProbe

NAMES = ("x",)


def _unit(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    return 0.0, {name: 1.0 for name in params}


def _wrapped(base: Callable[[], BaseSampler]) -> Callable[[], BaseSampler]:
    return lambda: OHGWSampler(base(), FunctionProbe(_unit, NAMES), seed=0)


class TestWrappedRandom(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return _wrapped(RandomSampler)


class TestWrappedTPE(BasicSamplerTestCase, RelativeSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return _wrapped(lambda: TPESampler(multivariate=True, n_startup_trials=0))


class TestWrappedCmaEs(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return _wrapped(CmaEsSampler)


class TestWrappedQMC(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return _wrapped(QMCSampler)


def test_the_wrapped_samplers_really_nudge() -> None:
    """The contract suite above is only meaningful if the wrapper moves the values it serves."""
    import optuna

    from optuna_ohgw import attrs

    study = optuna.create_study(sampler=_wrapped(RandomSampler)())
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3)
    for trial in study.trials:
        assert trial.user_attrs[attrs.STATUS] == "ok"
        raw, nudged = trial.user_attrs[attrs.raw("x")], trial.user_attrs[attrs.nudged("x")]
        assert nudged < raw or raw == 0.0  # a gradient of +1 moves x down (clipped at 0)
        assert trial.params["x"] == nudged
