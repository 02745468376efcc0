"""Warm-start step rules: how a hypergradient becomes a change of hyperparameters.

All rules work in a distribution's internal coordinates (log(x) for log-scaled floats, x
otherwise) and return the proposed change per parameter; the sampler clips it to the bounds and
snaps it to the step grid. ``span`` is the width of each parameter's range in those coordinates.

``raw`` is the seed's rule. Hypergradients are typically ~1e-3, so ``raw`` with eta=1e-3 moves
log-lr by ~1e-6 (a no-op in practice); ``normalized`` moves a fixed fraction of the range and is
the rule that can change what a scheduler sees. ``none``, ``random-sign`` and ``flipped`` are the
controls that make the evidence honest: same probe cost, no step / random direction / wrong way.

Two rules look beyond the gradient, through a :class:`StepContext` the sampler passes:
``line-search`` tries a few multiples of the normalized step and keeps the one whose look-ahead
loss is lowest (a few look-ahead losses, no extra hypergradient), and ``toward-middle`` is the
control that needs no probe at all: it moves each parameter toward the middle of its range by the
normalized step's size, to tell apart "a hypergradient helps" from "moving inward helps".
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class StepContext:
    """What a rule may read besides the gradient (all in internal coordinates).

    Attributes:
        coords: The current value of each parameter.
        lows: The lower bound of each parameter.
        highs: The upper bound of each parameter.
        lookahead: ``delta -> loss``: the probe's held-out loss after moving by ``delta`` (the
            sampler clips and snaps the moved values as it would for the real step, and charges
            the call's seconds to the trial); ``None`` where no probe is available.
    """

    coords: Mapping[str, float]
    lows: Mapping[str, float]
    highs: Mapping[str, float]
    lookahead: Callable[[Mapping[str, float]], float] | None = None


class BaseStepRule(abc.ABC):
    """Turns hypergradients (internal coordinates) into a proposed change per parameter.

    ``needs_probe`` is False for a rule that ignores the gradient: the sampler then runs no
    probe and passes zero gradients.
    """

    name: str = ""
    needs_probe: bool = True

    @abc.abstractmethod
    def __call__(
        self,
        grads: Mapping[str, float],
        spans: Mapping[str, float],
        rng: np.random.Generator,
        context: StepContext | None = None,
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
        context: StepContext | None = None,
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
        context: StepContext | None = None,
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
        context: StepContext | None = None,
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
        context: StepContext | None = None,
    ) -> dict[str, float]:
        steps = self.base(grads, spans, rng, context)
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
        context: StepContext | None = None,
    ) -> dict[str, float]:
        return {n: -v for n, v in self.base(grads, spans, rng, context).items()}


class LineSearchStep(BaseStepRule):
    """The step of ``base`` scaled by whichever of ``scales`` gives the lowest look-ahead loss.

    Each scale costs one look-ahead loss at the moved values (the probe's
    :meth:`~optuna_ohgw.probes.BaseProbe.loss`: for :class:`~optuna_ohgw.probes.LookaheadProbe`
    the K first-order steps and the held-out forward, with no hypergradient). Ties go to the
    earlier scale; scales whose loss is not finite are skipped, and when no loss is finite the
    step raises ``FloatingPointError`` (the sampler records a failed probe, ``error: ...``, and
    the trial keeps the base sampler's values).

    Args:
        base: The rule whose step is scaled (``NormalizedStep()`` by default).
        scales: The multiples of the base step to try.
    """

    name = "line-search"

    def __init__(
        self, base: BaseStepRule | None = None, scales: Sequence[float] = (0.5, 1.0, 2.0, 4.0)
    ) -> None:
        scales = tuple(float(s) for s in scales)
        if not scales or not all(s > 0 and math.isfinite(s) for s in scales):
            raise ValueError(f"scales must be positive finite numbers, got {scales}.")
        self.base = base if base is not None else NormalizedStep()
        self.scales = scales

    def __call__(
        self,
        grads: Mapping[str, float],
        spans: Mapping[str, float],
        rng: np.random.Generator,
        context: StepContext | None = None,
    ) -> dict[str, float]:
        if context is None or context.lookahead is None:
            raise ValueError("line-search needs a look-ahead loss (run it inside OHGWSampler).")
        step = self.base(grads, spans, rng, context)
        best: tuple[float, dict[str, float]] | None = None
        losses = []
        for scale in self.scales:
            delta = {n: scale * v for n, v in step.items()}
            losses.append(float(context.lookahead(delta)))
            if math.isfinite(losses[-1]) and (best is None or losses[-1] < best[0]):
                best = (losses[-1], delta)
        if best is None:
            raise FloatingPointError(
                f"line-search: no look-ahead loss is finite (scales {list(self.scales)}: "
                f"{losses}); check the probe's model and data, or narrow the search space"
            )
        return best[1]


class TowardMiddleStep(BaseStepRule):
    """Control without a probe: move each parameter ``fraction`` of its range toward the middle
    of the range (stopping at the middle), in internal coordinates.

    Same size as ``NormalizedStep(fraction)``, no hypergradient: if this control does as well as
    the warm start, the gain comes from moving extreme configurations inward, not from the
    gradient.
    """

    name = "toward-middle"
    needs_probe = False

    def __init__(self, fraction: float = 0.05) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
        self.fraction = fraction

    def __call__(
        self,
        grads: Mapping[str, float],
        spans: Mapping[str, float],
        rng: np.random.Generator,
        context: StepContext | None = None,
    ) -> dict[str, float]:
        if context is None:
            raise ValueError("toward-middle needs the current values and bounds (a StepContext).")
        out = {}
        for n in grads:
            gap = 0.5 * (context.lows[n] + context.highs[n]) - context.coords[n]
            out[n] = math.copysign(min(self.fraction * spans[n], abs(gap)), gap) if gap else 0.0
        return out


_BASE_RULES: dict[str, type[BaseStepRule]] = {"raw": RawStep, "normalized": NormalizedStep}
STEP_RULES = (
    "raw",
    "normalized",
    "none",
    "random-sign",
    "flipped",
    "line-search",
    "toward-middle",
)
"""Every rule :func:`make_step_rule` builds."""


def make_step_rule(name: str, *, base: str = "normalized", **kwargs: Any) -> BaseStepRule:
    """Build a step rule by name (one of :data:`STEP_RULES`). ``random-sign``, ``flipped`` and
    ``line-search`` take the rule whose step they change as ``base`` and pass ``kwargs``
    (``eta``; ``fraction``, ``direction``) to it; ``toward-middle`` takes ``fraction``.
    """
    if name == "none":
        if kwargs:
            raise ValueError(f"Step rule 'none' takes no options, got {sorted(kwargs)}.")
        return NoStep()
    if name in _BASE_RULES:
        return _BASE_RULES[name](**kwargs)
    if name == "toward-middle":
        return TowardMiddleStep(**kwargs)
    wrappers: dict[str, Callable[[BaseStepRule], BaseStepRule]] = {
        "random-sign": RandomSignStep,
        "flipped": FlippedStep,
        "line-search": LineSearchStep,
    }
    if name in wrappers:
        if base not in _BASE_RULES:
            raise ValueError(f"base must be one of {sorted(_BASE_RULES)}, got {base!r}.")
        return wrappers[name](_BASE_RULES[base](**kwargs))
    raise ValueError(f"Unknown step rule {name!r}; choose from {', '.join(STEP_RULES)}.")
