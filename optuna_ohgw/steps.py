"""Warm-start step rules: how a hypergradient becomes a change of hyperparameters.

All rules work in a distribution's internal coordinates (log(x) for log-scaled floats, x
otherwise) and return the proposed change per parameter; the sampler clips it to the bounds and
snaps it to the step grid. ``span`` is the width of each parameter's range in those coordinates.

``raw`` is the seed's rule. Hypergradients are typically ~1e-3, so ``raw`` with eta=1e-3 moves
log-lr by ~1e-6 (a no-op in practice); ``normalized`` moves a fixed fraction of the range and is
the rule that can change what a scheduler sees. ``none``, ``random-sign`` and ``flipped`` are the
controls that make the evidence honest: same probe cost, no step / random direction / wrong way.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


class BaseStepRule(abc.ABC):
    """Turns hypergradients (internal coordinates) into a proposed change per parameter."""

    name: str = ""

    @abc.abstractmethod
    def __call__(
        self,
        grads: Mapping[str, float],
        spans: Mapping[str, float],
        rng: np.random.Generator,
    ) -> dict[str, float]:
        """Return the change of each parameter in ``grads``, in internal coordinates."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class RawStep(BaseStepRule):
    """The seed's rule: ``psi <- psi - eta * dL/dpsi``."""

    name = "raw"

    def __init__(self, eta: float = 1e-3) -> None:
        if not (eta > 0 and math.isfinite(eta)):
            raise ValueError(f"eta must be a positive finite number, got {eta}.")
        self.eta = eta

    def __call__(
        self,
        grads: Mapping[str, float],
        spans: Mapping[str, float],
        rng: np.random.Generator,
    ) -> dict[str, float]:
        return {name: -self.eta * g for name, g in grads.items()}


class NormalizedStep(BaseStepRule):
    """Move each parameter by ``fraction`` of its range, downhill.

    ``direction="sign"`` moves every parameter with a non-zero gradient by exactly
    ``fraction * span``. ``direction="unit"`` takes the gradient in range-normalised coordinates
    (each axis scaled to [0, 1]), makes it a unit vector and moves ``fraction`` along it, so the
    total move is ``fraction`` of the unit cube and the split follows the gradient.
    """

    name = "normalized"

    def __init__(self, fraction: float = 0.05, direction: str = "sign") -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
        if direction not in ("sign", "unit"):
            raise ValueError(f"direction must be 'sign' or 'unit', got {direction!r}.")
        self.fraction = fraction
        self.direction = direction

    def __call__(
        self,
        grads: Mapping[str, float],
        spans: Mapping[str, float],
        rng: np.random.Generator,
    ) -> dict[str, float]:
        if self.direction == "sign":
            return {n: -self.fraction * spans[n] * float(np.sign(g)) for n, g in grads.items()}
        scaled = {n: g * spans[n] for n, g in grads.items()}
        norm = math.sqrt(sum(v * v for v in scaled.values()))
        if norm == 0.0:
            return {n: 0.0 for n in grads}
        return {n: -self.fraction * spans[n] * v / norm for n, v in scaled.items()}


class NoStep(BaseStepRule):
    """Control: the probe runs (same cost, same attrs) but nothing moves."""

    name = "none"

    def __call__(
        self,
        grads: Mapping[str, float],
        spans: Mapping[str, float],
        rng: np.random.Generator,
    ) -> dict[str, float]:
        return {n: 0.0 for n in grads}


class RandomSignStep(BaseStepRule):
    """Control: the step of ``base`` per coordinate, with a Rademacher random sign."""

    name = "random-sign"

    def __init__(self, base: BaseStepRule) -> None:
        self.base = base

    def __call__(
        self,
        grads: Mapping[str, float],
        spans: Mapping[str, float],
        rng: np.random.Generator,
    ) -> dict[str, float]:
        steps = self.base(grads, spans, rng)
        signs = rng.choice([-1.0, 1.0], size=len(steps))
        return {n: abs(v) * s for (n, v), s in zip(steps.items(), signs)}


class FlippedStep(BaseStepRule):
    """Control: the step of ``base`` in the opposite direction (uphill)."""

    name = "flipped"

    def __init__(self, base: BaseStepRule) -> None:
        self.base = base

    def __call__(
        self,
        grads: Mapping[str, float],
        spans: Mapping[str, float],
        rng: np.random.Generator,
    ) -> dict[str, float]:
        return {n: -v for n, v in self.base(grads, spans, rng).items()}


_BASE_RULES: dict[str, type[BaseStepRule]] = {"raw": RawStep, "normalized": NormalizedStep}


def make_step_rule(name: str, *, base: str = "normalized", **kwargs: Any) -> BaseStepRule:
    """Build a step rule by name: ``raw``, ``normalized``, ``none``, ``random-sign``,
    ``flipped``. The two controls take the rule whose magnitude they copy as ``base`` and pass
    ``kwargs`` (``eta``; ``fraction``, ``direction``) to it.
    """
    if name == "none":
        if kwargs:
            raise ValueError(f"Step rule 'none' takes no options, got {sorted(kwargs)}.")
        return NoStep()
    if name in _BASE_RULES:
        return _BASE_RULES[name](**kwargs)
    controls = {"random-sign": RandomSignStep, "flipped": FlippedStep}
    if name in controls:
        if base not in _BASE_RULES:
            raise ValueError(f"base must be one of {sorted(_BASE_RULES)}, got {base!r}.")
        return controls[name](_BASE_RULES[base](**kwargs))
    raise ValueError(
        f"Unknown step rule {name!r}; choose from raw, normalized, none, random-sign, flipped."
    )
