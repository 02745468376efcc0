"""The look-ahead probe's self-check: the probe against the real training loop it stands for.

:meth:`LookaheadProbe.check` runs K steps of the real ``torch.optim`` optimizer that the probe's
``optimizer=`` builds, with its scheduler and clipping, on the probe's own batches (same draws,
augmentation seeds and dropout masks) and compares

(a) the held-out loss after them with the probe's, at the precision of the dtype, and
(b) finite differences of that real loss with the probe's directional derivative (its gradient
    dotted with the direction) along two directions in the hyperparameters: a seeded random
    one, and one along the probe's signs in which every parameter weighs as much as the most
    influential (down to :data:`BALANCE_FLOOR` of it), so that a derivative that is wrong only
    for a parameter that barely matters next to the lr is caught too.

Both run in float64 copies of the model and batches where possible (a model that cannot be
copied to float64 is checked in its own dtype, at that dtype's tolerances), without autocast.

**Why a ladder of steps.** The look-ahead loss of a ReLU or max-pool network is piecewise smooth
with jumps: after the first step, a training gradient switches where a pre-activation (or the
argmax of a pool) crosses zero, so the weights after K steps, and the held-out loss, jump there
(issue 24 measured a jump of 9e-4 over a move of 1e-6 in ``augment`` on Fashion-MNIST). The
probe's gradient is exact for the smooth piece the point lies on; a central difference whose
interval straddles a jump is off by ``jump / (2 t)``, at any precision. So each direction is
differenced at a ladder of relative moves ``eps ** (1/3) * 10 ** -j`` (6e-5 down to 6e-9 in
float64: the smaller the step, the rarer a straddled jump), evaluated in the order
:data:`LADDER_ORDER` and stopped as soon as the evidence decides:

- ``ok``: the central differences at two neighbouring steps agree with each other and each
  with the probe's derivative, within ``eps ** (1/3)`` (6e-6) of the larger plus the rounding
  (:data:`NOISE` ``* eps * |loss| / t``); or one step agrees where the rounding is itself below
  ``eps ** (1/3)`` of the derivative (an agreement inside the noise proves nothing). A wrong
  derivative cannot agree this closely by chance.
- ``mismatch``: at two neighbouring steps of the ladder the differences agree with each other
  (within the same tolerance) and both miss the probe's derivative by more than
  :data:`SEPARATION` times it: a converged finite difference that disagrees. A straddled jump
  cannot fake this: its error ``jump / (2 t)`` changes tenfold between neighbouring steps, so
  the two differences would not agree. A loss that differs at the point itself (a) is a
  mismatch too.
- ``ok`` too, once every step is tried: the one-sided differences on one side converge (at
  two neighbouring steps) to the probe's derivative, where the point lies closer to a jump on
  the other side than the finest step.
- ``inconclusive``: neither, at every step (jumps straddled at every scale, or a derivative
  below the rounding). The warm start stays on; the message names the jump when there is one
  (the one-sided differences locate it) and gives the figures.

Costs: the probe call and one real run at the point, then two real runs (K plain steps each) per
step tried per direction: 5 real runs when the first step decides, as it does at most points.
On every supported configuration of the tests the derivatives agree to 1e-8 in float64; the
stop-gradients measured in issue 17 are off by 8%, a custom layer whose backward is not twice
differentiable by 1e-4 to 1e-2, consistently at every step.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Mapping

import torch
from torch import nn

from optuna_ohgw.probes._base import ProbeCheck

BALANCE_FLOOR = 1e-3
"""The second direction counts a parameter whose influence (``|dL/dp * p|``) is below this
share of the largest as that share, not as much as the largest."""
LADDER_ORDER = (1, 0, 2, 3, -1)
"""The steps ``eps ** (1/3) * 10 ** -j`` in the order they are tried (``j``): 6e-7 first, where
a jump is ten times rarer than at 6e-6 and the rounding is still far below the tolerance; then
6e-6 (a neighbour to converge with), the smaller 6e-8 and 6e-9 (rarer jumps still), and 6e-5 for
a direction whose derivative is small next to the rounding."""
SEPARATION = 4.0
"""How far (in tolerances) two agreeing differences must miss the probe to call a mismatch."""
NOISE = 30.0
"""A bound on the rounding of a held-out loss after K training steps, in units of
``eps * |loss|``: the second differences of the real loop's loss at moves of 1e-13 measure 1 to
4 on the built-in tasks (digits, MNIST-1D, Fashion-MNIST)."""
ProbeAt = Callable[[], tuple[float, Mapping[str, float]]]
"""The probe's (loss, gradient) at the checked point."""
RealAt = Callable[[Mapping[str, float]], float]
"""The real training's held-out loss at a point."""


@dataclasses.dataclass(frozen=True)
class _Step:
    """The finite differences at one step of the ladder along one direction."""

    relative: float
    t: float
    central: float
    forward: float
    backward: float
    noise: float


@dataclasses.dataclass(frozen=True)
class _Verdict:
    """What one direction's ladder decided."""

    kind: str
    direction: dict[str, float]
    probe: float
    fd: float
    steps: tuple[_Step, ...]


def _tolerance(a: float, b: float, noise: float, rtol: float) -> float:
    return rtol * max(abs(a), abs(b)) + noise


def _judge(
    probe_d: float,
    direction: dict[str, float],
    differences: Callable[[float], _Step],
    eps: float,
) -> _Verdict:
    """Try the ladder's steps along ``direction`` until the evidence decides (module docstring)."""
    rtol = eps ** (1 / 3)
    done: dict[int, _Step] = {}

    def near(step: _Step) -> bool:
        return abs(step.central - probe_d) <= _tolerance(step.central, probe_d, step.noise, rtol)

    def apart(step: _Step) -> bool:
        limit = SEPARATION * _tolerance(step.central, probe_d, step.noise, rtol)
        return abs(step.central - probe_d) > limit

    for j in LADDER_ORDER:
        step = done[j] = differences(eps ** (1 / 3) * 10.0**-j)
        # One step whose rounding leaves the comparison as sharp as rtol decides alone.
        if near(step) and step.noise <= rtol * max(abs(step.central), abs(probe_d)):
            return _Verdict("ok", direction, probe_d, step.central, (step,))
        for i in (j - 1, j + 1):
            other = done.get(i)
            if other is None:
                continue
            pair = (other, step) if i < j else (step, other)
            converged = abs(other.central - step.central) <= _tolerance(
                other.central, step.central, other.noise + step.noise, rtol
            )
            if converged and near(other) and near(step):
                return _Verdict("ok", direction, probe_d, pair[1].central, pair)
            if converged and apart(other) and apart(step):
                return _Verdict("mismatch", direction, probe_d, pair[1].central, pair)
    ordered = tuple(done[j] for j in sorted(done))
    # A jump on one side only (the point lies closer to it than the finest step): the other
    # side's one-sided differences converge, to the probe's derivative if the probe is right.
    for side in ("forward", "backward"):
        for coarse, fine in zip(ordered, ordered[1:]):
            a, b = getattr(coarse, side), getattr(fine, side)
            noise = 2 * (coarse.noise + fine.noise)
            converged = abs(a - b) <= _tolerance(a, b, noise, rtol)
            if converged and all(
                abs(v - probe_d) <= _tolerance(v, probe_d, 2 * s.noise, rtol)
                for v, s in ((a, coarse), (b, fine))
            ):
                return _Verdict("ok", direction, probe_d, b, (coarse, fine))
    return _Verdict("inconclusive", direction, probe_d, ordered[-1].central, ordered)


def _describe(verdict: _Verdict) -> str:
    """The figures of an inconclusive direction, naming a jump where the one-sided differences
    locate one."""
    jumps = []
    for s in verdict.steps:
        # A smooth piece on both sides: both one-sided differences near the probe's derivative,
        # up to the curvature. A jump on one side: that side's difference is off by jump / t.
        sides = {"above": s.forward, "below": s.backward}
        side, value = max(sides.items(), key=lambda kv: abs(kv[1] - verdict.probe))
        jump = (value - verdict.probe) * s.t
        if abs(jump) > 2 * s.noise * s.t:  # beyond the loss's rounding
            jumps.append(f"{jump:+.2g} {side} at a move of {s.relative:.0e}")
    figures = ", ".join(f"{s.central:.6g} at {s.relative:.0e}" for s in verdict.steps)
    if jumps:
        return (
            f"the look-ahead loss jumps within the finite differences' steps ({'; '.join(jumps)}; "
            "a ReLU or max-pool network's training gradient switches where a pre-activation "
            "crosses zero), so the real loop's central differences ({figures}) do not converge "
            f"to compare with the probe's derivative {verdict.probe:.6g}, the derivative of the "
            "smooth piece the point lies on"
        )
    return (
        f"the real loop's central differences ({figures}) neither agree with the probe's "
        f"derivative {verdict.probe:.6g} nor converge to another value"
    )


def compare(
    probe_at: ProbeAt,
    real_at: RealAt,
    point: Mapping[str, float],
    *,
    k: int,
    dtype: torch.dtype,
    seed: int,
    start: float,
) -> ProbeCheck:
    """Compare the probe with the real training at ``point`` (see the module docstring)."""
    value, grads = probe_at()
    real = real_at(point)
    eps = torch.finfo(dtype).eps
    names = [n for n in point if point[n] != 0.0]
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(len(names), generator=gen, dtype=torch.float64).tolist()

    def judge(moves: Mapping[str, float]) -> _Verdict:
        length = math.sqrt(sum(m * m for m in moves.values())) or 1.0
        direction = {n: moves.get(n, 0.0) / length for n in point}
        relative = max((abs(m) / abs(point[n]) for n, m in moves.items()), default=0.0)

        def differences(r: float) -> _Step:
            t = r * length / (relative or 1.0)
            up = real_at({n: point[n] + t * direction[n] for n in point})
            down = real_at({n: point[n] - t * direction[n] for n in point})
            noise = NOISE * eps * max(abs(real), abs(value)) / t
            return _Step(r, t, (up - down) / (2 * t), (up - real) / t, (real - down) / t, noise)

        probe_d = sum(grads[n] * direction[n] for n in point)
        return _judge(probe_d, direction, differences, eps)

    verdicts = [judge({n: zi * abs(point[n]) for n, zi in zip(names, z)})]
    # Each parameter weighted so that it adds as much to the probe's derivative as the most
    # influential one (down to BALANCE_FLOOR of it), along the probe's own signs: a derivative
    # that is wrong for a parameter that barely matters next to the lr shows here.
    sensitivity = {n: abs(grads[n] * point[n]) for n in names}
    top = max(sensitivity.values(), default=0.0)
    ways = [""]
    loss_tol = math.sqrt(eps)
    loss_error = abs(value - real) / max(abs(real), 1e-12)
    balanced = {
        n: math.copysign(
            abs(point[n]) * top / max(sensitivity[n], BALANCE_FLOOR * top), grads[n] or 1.0
        )
        for n in names
        if top > 0.0
    }
    if len(names) > 1 and any(balanced.values()) and verdicts[0].kind != "mismatch":
        ways.append("every parameter weighted alike, ")
        verdicts.append(judge(balanced))

    problems = []
    if not loss_error <= loss_tol:
        problems.append(
            f"the probe's held-out loss {value:.6g} is not the real training's {real:.6g} after "
            f"the same {k} steps (relative difference {loss_error:.1e} > {loss_tol:.0e}): "
            "look for a forward that writes module state (a buffer or attribute), or an "
            "optimizer, scheduler or clipping the probe was not given"
        )
    shown = verdicts[0]
    for way, verdict in zip(ways, verdicts):
        if verdict.kind != "mismatch":
            continue
        shown = verdict
        relative = abs(verdict.probe - verdict.fd) / max(abs(verdict.fd), abs(verdict.probe))
        flipped = ", the sign flipped" if verdict.probe * verdict.fd < 0 else ""
        steps = " and ".join(
            f"{s.central:.6g} at a move of {s.relative:.0e}" for s in verdict.steps
        )
        problems.append(
            f"the probe's derivative {verdict.probe:.6g} is not the real training's finite "
            f"difference {verdict.fd:.6g} (relative error {relative:.1e}{flipped}; the real loop "
            f"gives {steps}, consistently) along ({way}"
            f"{', '.join(f'{n} {v:+.2g}' for n, v in verdict.direction.items())}): look for a "
            "stop-gradient in the loss (.detach(), .item(), float()), a custom autograd layer "
            "or a weight_norm/spectral_norm parametrization"
        )
        break  # one derivative problem is enough to say
    if problems:
        kind, message = "mismatch", "; ".join(problems)
    elif all(v.kind == "ok" for v in verdicts):
        kind, message = "ok", ""
    else:
        kind = "inconclusive"
        shown = next(v for v in verdicts if v.kind == "inconclusive")
        way = ways[verdicts.index(shown)]
        message = (
            f"inconclusive along ({way}"
            f"{', '.join(f'{n} {v:+.2g}' for n, v in shown.direction.items())}): "
            f"{_describe(shown)}; the held-out losses agree ({value:.6g}), so the warm start "
            "stays on"
        )
    return ProbeCheck(
        ok=kind == "ok",
        probe_loss=value,
        real_loss=real,
        directional=shown.probe,
        finite_difference=shown.fd,
        direction=shown.direction,
        seconds=time.perf_counter() - start,
        message=f"self-check ({dtype}): {message}." if message else "",
        verdict=kind,
    )


def float64_copy(model: nn.Module) -> nn.Module | None:
    """A float64 copy of ``model``, or ``None`` where it cannot be made."""
    try:
        return copy.deepcopy(model).to(torch.float64)
    except (RuntimeError, TypeError):
        return None
