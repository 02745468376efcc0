"""A probe backed by a plain Python function (analytic objectives, tests, custom frameworks)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from optuna_ohgw.probes._base import BaseProbe, ProbeResult

GradFn = Callable[[Mapping[str, float]], tuple[float, Mapping[str, float]]]


class FunctionProbe(BaseProbe):
    """Wrap ``fn(params) -> (loss, grads)`` as a probe.

    Use it to plug in a hypergradient computed outside PyTorch (JAX, an analytic model) or a
    zero-cost stand-in when measuring the wrapper's own overhead.
    """

    def __init__(self, fn: GradFn, param_names: Sequence[str]) -> None:
        self._fn = fn
        self._names = tuple(param_names)

    @property
    def param_names(self) -> Sequence[str]:
        return self._names

    def __call__(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeResult:
        start = time.perf_counter()
        value, grads = self._fn(params)
        return ProbeResult(
            value=float(value),
            grads={name: float(grads[name]) for name in self._names},
            seconds=time.perf_counter() - start,
        )
