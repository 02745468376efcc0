"""A float distribution's internal coordinates: ``log(x)`` for log-scaled floats, ``x`` else.

The warm-start step (:mod:`optuna_ohgw.sampler`) moves values in these coordinates and DyHPO's
surrogate (:mod:`optuna_ohgw.schedulers.dyhpo`) scales them to ``[0, 1]``.
"""

from __future__ import annotations

import math

from optuna.distributions import FloatDistribution


def to_internal(value: float, dist: FloatDistribution) -> float:
    return math.log(value) if dist.log else value


def to_external(coord: float, dist: FloatDistribution) -> float:
    """Map an internal coordinate back to a value inside ``dist`` (clipped, on its grid)."""
    low, high = dist.low, dist.high
    value = math.exp(coord) if dist.log else coord
    value = min(max(value, low), high)
    if dist.step is not None:
        value = low + round((value - low) / dist.step) * dist.step
        value = min(max(value, low), high)
    return float(value)


def to_unit(value: float, dist: FloatDistribution) -> float:
    """A value in ``[0, 1]`` internal coordinates (0.5 for a one-point distribution)."""
    low, high = to_internal(dist.low, dist), to_internal(dist.high, dist)
    v = to_internal(value, dist)
    return 0.5 if high == low else min(1.0, max(0.0, (v - low) / (high - low)))


def from_unit(u: float, dist: FloatDistribution) -> float:
    """The inverse of :func:`to_unit`: a value inside ``dist``, on its grid."""
    low, high = to_internal(dist.low, dist), to_internal(dist.high, dist)
    return to_external(low + u * (high - low), dist)
