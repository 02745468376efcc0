"""The look-ahead probe's self-check: the probe against the real training loop it stands for.

:meth:`LookaheadProbe.check` runs K steps of the real ``torch.optim`` optimizer that the probe's
``optimizer=`` builds, with its scheduler and clipping, on the probe's own batches (same draws,
augmentation seeds and dropout masks) and compares

(a) the held-out loss after them with the probe's, at the precision of the dtype, and
(b) a central finite difference of that real loss with the probe's directional derivative (its
    gradient dotted with the direction) along two directions in the hyperparameters: a seeded
    random one, and one along the probe's signs in which every parameter weighs as much as the
    most influential (down to :data:`BALANCE_FLOOR` of it), so that a derivative that is wrong
    only for a parameter that barely matters next to the lr is caught too (the normalized step
    moves every parameter by the same share of its range, whatever its influence).

Both run in float64 copies of the model and batches where possible (a model that cannot be
copied to float64 is checked in its own dtype, at that dtype's tolerances), without autocast:
the check asks whether the look-ahead follows the training, not how bfloat16 rounds. (a) catches
what the probe does not see at all (a forward that writes module state, an optimizer, scheduler
or clipping it was not given); (b) what it differentiates wrongly (a stop-gradient in the loss, a
custom autograd layer, a parametrization whose second derivative torch gets wrong).

Each direction moves each parameter in proportion to its own value (a parameter at exactly 0 is
not moved: ``momentum=0`` cannot go below), by a relative ``eps ** (1/3)`` at most (6e-6 in
float64, the central difference's best step); the derivatives agree when their difference is
within ``eps ** (1/3)`` (6e-6 in float64, 5e-3 in float32) of the larger plus the finite
difference's rounding (``1e3 * eps * |loss| / step``). On every supported configuration of the
tests the two agree to 2e-8 in float64; the stop-gradients measured in issue 17 are off by 8%,
a custom layer whose backward is not twice differentiable by 1e-4 to 1e-2.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping

import torch
from torch import nn

from optuna_ohgw.probes._base import ProbeCheck

BALANCE_FLOOR = 1e-3
"""The second direction counts a parameter whose influence (``|dL/dp * p|``) is below this
share of the largest as that share, not as much as the largest."""
ProbeAt = Callable[[], tuple[float, Mapping[str, float]]]
"""The probe's (loss, gradient) at the checked point."""
RealAt = Callable[[Mapping[str, float]], float]
"""The real training's held-out loss at a point."""


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

    def along(moves: Mapping[str, float]) -> tuple[dict[str, float], float, float, float]:
        """Unit direction, probe's derivative, finite difference, step along ``moves``."""
        length = math.sqrt(sum(m * m for m in moves.values())) or 1.0
        direction = {n: moves.get(n, 0.0) / length for n in point}
        relative = max((abs(m) / abs(point[n]) for n, m in moves.items()), default=0.0)
        t = eps ** (1 / 3) * length / (relative or 1.0)
        up = {n: point[n] + t * direction[n] for n in point}
        down = {n: point[n] - t * direction[n] for n in point}
        fd = (real_at(up) - real_at(down)) / (2 * t)
        return direction, sum(grads[n] * direction[n] for n in point), fd, t

    direction, directional, fd, t = along({n: zi * abs(point[n]) for n, zi in zip(names, z)})
    # Each parameter weighted so that it adds as much to the probe's derivative as the most
    # influential one (down to BALANCE_FLOOR of it), along the probe's own signs: a derivative
    # that is wrong for a parameter that barely matters next to the lr shows here.
    sensitivity = {n: abs(grads[n] * point[n]) for n in names}
    top = max(sensitivity.values(), default=0.0)
    balanced = None
    if len(names) > 1 and top > 0.0:
        balanced = along(
            {
                n: math.copysign(
                    abs(point[n]) * top / max(sensitivity[n], BALANCE_FLOOR * top), grads[n] or 1.0
                )
                for n in names
            }
        )

    problems = []
    loss_tol = math.sqrt(eps)
    loss_error = abs(value - real) / max(abs(real), 1e-12)
    if not loss_error <= loss_tol:
        problems.append(
            f"the probe's held-out loss {value:.6g} is not the real training's {real:.6g} after "
            f"the same {k} steps (relative difference {loss_error:.1e} > {loss_tol:.0e}): "
            "look for a forward that writes module state (a buffer or attribute), or an "
            "optimizer, scheduler or clipping the probe was not given"
        )
    rtol = eps ** (1 / 3)
    ways = [("", (direction, directional, fd, t))]
    if balanced is not None:
        ways.append(("every parameter weighted alike, ", balanced))
    for way, (d, probe_d, real_d, step) in ways:
        noise = 1e3 * eps * max(abs(real), abs(value)) / step
        error = abs(probe_d - real_d)
        if error <= rtol * max(abs(real_d), abs(probe_d)) + noise:
            continue
        relative = error / max(abs(real_d), abs(probe_d), 1e-300)
        flipped = ", the sign flipped" if probe_d * real_d < 0 else ""
        problems.append(
            f"the probe's derivative {probe_d:.6g} is not the real training's finite "
            f"difference {real_d:.6g} (relative error {relative:.1e} > {rtol:.0e}{flipped}) "
            f"along ({way}{', '.join(f'{n} {v:+.2g}' for n, v in d.items())}): look for a "
            "stop-gradient in the loss (.detach(), .item(), float()), a custom autograd layer "
            "or a weight_norm/spectral_norm parametrization"
        )
        direction, directional, fd = d, probe_d, real_d  # the numbers that disagreed
        break  # one derivative problem is enough to say
    message = "; ".join(problems)
    return ProbeCheck(
        ok=not problems,
        probe_loss=value,
        real_loss=real,
        directional=directional,
        finite_difference=fd,
        direction=direction,
        seconds=time.perf_counter() - start,
        message=f"self-check ({dtype}): {message}." if message else "",
    )


def float64_copy(model: nn.Module) -> nn.Module | None:
    """A float64 copy of ``model``, or ``None`` where it cannot be made."""
    try:
        return copy.deepcopy(model).to(torch.float64)
    except (RuntimeError, TypeError):
        return None
