"""Optuna's own sampler contract suite with samplers wrapped by OHGWSampler.

The probe nudges every float the suite suggests (a constant gradient of 1 per parameter), so the
warm start is exercised on every distribution the suite uses: bounds, log scale, ``step`` grids,
single-point ranges, relative and independent sampling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from optuna.samplers import BaseSampler, CmaEsSampler, QMCSampler, RandomSampler, TPESampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase

from optuna_ohgw import OHGWSampler
from optuna_ohgw.probes import FunctionProbe

NAMES = ("x", "y", "z", "a", "b", "c", "d", "e", "f", "param-0", "param-1", "param-2")


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
