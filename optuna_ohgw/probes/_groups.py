"""The user's optimizer (and scheduler) read into what the look-ahead unrolls.

A plan lists the optimizer's parameter groups: which parameters each trains, the update rule and
options it uses, and at each look-ahead step each role's value (``lr``, ``weight_decay``,
``momentum`` or the betas) as an affine function of the trial's hyperparameters.

The dependence is read from the user's own code, never assumed: ``build(hypers)`` (the user's
``make_optimizer``) is called at the probed values, at each hyperparameter moved on its own and
at all of them moved together; the scheduler, if any, is stepped K times on each of these
optimizers, as the training loop steps it. The slopes come from the single moves and the joint
move must agree with them (to rounding): a dependence that is not affine there (``lr ** 2``,
a product of two hyperparameters, a ``min``) is a ``ValueError``, never a guess. Every value a
real schedule gives is affine in the hyperparameters it scales (``LambdaLR``, ``LinearLR``,
cosine annealing, ``OneCycleLR`` with ``max_lr`` read from the groups), and an affine value is
read exactly: the slopes are exact to rounding and the value at the probed point is the one torch
uses.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from optuna_ohgw.probes._optimizers import group_rule, group_values
from optuna_ohgw.probes._unrolled_base import _BaseUnrolledOptimizer

MakeOptimizer = Callable[[nn.Module, Mapping[str, float]], torch.optim.Optimizer]
"""``make_optimizer(model, hypers) -> optimizer``, hypers keyed by the user's parameter names."""
MakeScheduler = Callable[[torch.optim.Optimizer], Any]
"""``make_scheduler(optimizer) -> torch.optim.lr_scheduler.LRScheduler``."""

_AFFINE_RTOL = 1e-9
_FLOAT32_RTOL = 8 * 2.0**-24
"""A residual within a few float32 roundings of the values: the value went through float32."""


@dataclasses.dataclass(frozen=True)
class Affine:
    """``value + sum(slopes[n] * (h[n] - at[n]))``: a role's value near the probed point.

    Attributes:
        value: The value at the probed point, as torch uses it.
        slopes: d value / d hyperparameter, by name; zero slopes are left out.
    """

    value: float
    slopes: Mapping[str, float]

    def scaled(self, factor: float) -> Affine:
        if factor == 1.0:
            return self
        return Affine(self.value * factor, {n: s * factor for n, s in self.slopes.items()})

    def tensor(
        self, hypers: Mapping[str, torch.Tensor], at: Mapping[str, float], like: torch.Tensor
    ) -> torch.Tensor:
        """The value as a 0-d tensor whose graph reaches ``hypers`` (exactly ``value`` at
        ``at``); a constant when no slope is non-zero."""
        out = torch.tensor(self.value, dtype=like.dtype, device=like.device)
        for name, slope in self.slopes.items():
            out = out + slope * (hypers[name] - at[name])
        return out


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    """One parameter group as the look-ahead unrolls it.

    Attributes:
        indices: Positions of the group's parameters in ``model.parameters()``.
        rule: The update rule.
        options: The rule's options (``eps``, ``nesterov``, ...), as the group has them.
        steps: Per look-ahead step, each role's value.
    """

    indices: tuple[int, ...]
    rule: type[_BaseUnrolledOptimizer]
    options: Mapping[str, Any]
    steps: tuple[Mapping[str, Affine], ...]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The optimizer's groups, and which hyperparameters its scheduler overrides.

    Attributes:
        groups: The parameter groups (parameters in none stay fixed, as in training).
        overridden: Names the optimizer reads but that no look-ahead step depends on, because
            the scheduler sets the value they set (OneCycleLR's ``cycle_momentum``), with the
            role each set.
        scheduler: The scheduler's class name; empty without one.
        reads: The names the optimizer's values depend on before any scheduler.
    """

    groups: tuple[GroupPlan, ...]
    overridden: Mapping[str, str] = dataclasses.field(default_factory=dict)
    scheduler: str = ""
    reads: frozenset[str] = frozenset()


def single_group_plan(
    rule: type[_BaseUnrolledOptimizer],
    options: Mapping[str, Any],
    values: Mapping[str, float],
    names: Mapping[str, str],
    n_params: int,
    lr_factors: Sequence[float],
) -> Plan:
    """The class form: every parameter in one group; ``names`` maps tuned roles to names."""
    base = {
        role: Affine(value, {names[role]: 1.0} if role in names else {})
        for role, value in values.items()
        if role in rule.roles
    }
    steps = tuple({**base, "lr": base["lr"].scaled(f)} for f in lr_factors)
    return Plan((GroupPlan(tuple(range(n_params)), rule, dict(options), steps),))


@dataclasses.dataclass(frozen=True)
class _Reading:
    """What one call of ``build`` gave: the groups' structure and values before the scheduler
    (``bare``) and at each step under it."""

    structure: tuple[tuple[tuple[int, ...], type[_BaseUnrolledOptimizer], tuple[Any, ...]], ...]
    bare: tuple[dict[str, float], ...]
    steps: tuple[tuple[dict[str, float], ...], ...]
    scheduler: str
    rounded: Mapping[tuple[int, str], str] = dataclasses.field(default_factory=dict)
    """(group, role) whose value the factory gave as a tensor below float64: its dtype."""


def read_plan(
    model: nn.Module,
    build: MakeOptimizer,
    make_scheduler: MakeScheduler | None,
    at: Mapping[str, float],
    k: int,
    lr_factors: Sequence[float],
    *,
    step_scheduler: bool = True,
) -> Plan:
    """Read ``build`` (and the scheduler, stepped after each of the K steps, or with
    ``step_scheduler=False`` only built: a per-epoch scheduler, whose first epoch holds the K
    steps) into a plan around ``at``; ``lr_factors`` multiply each step's lr."""
    index = {id(p): i for i, p in enumerate(model.parameters())}
    names = list(at)

    def read(hypers: Mapping[str, float]) -> _Reading:
        return _read(model, build, make_scheduler, hypers, k, index, step_scheduler)

    base = read(at)
    moved: list[_Reading] = []
    deltas: list[float] = []
    for name in names:
        point = dict(at)
        point[name] = _moved(at[name], 0.75)
        deltas.append(point[name] - at[name])
        moved.append(read(point))
    joint = {n: _moved(v, 0.5) for n, v in at.items()}
    check = read(joint)
    for reading in (*moved, check):
        if reading.structure != base.structure:
            raise ValueError(
                "make_optimizer builds different parameter groups (or options such as eps, "
                "nesterov, amsgrad) for different hyperparameter values; the look-ahead "
                "differentiates lr, weight_decay, momentum and the betas only."
            )

    def affine(get: Callable[[_Reading], float], where: str, key: tuple[int, str]) -> Affine:
        value = get(base)
        slopes = {
            n: (get(r) - value) / d for n, r, d in zip(names, moved, deltas) if get(r) != value
        }
        predicted = value + sum(s * (joint[n] - at[n]) for n, s in slopes.items())
        actual = get(check)
        scale = max(abs(value), abs(actual), *(abs(get(r)) for r in moved))
        residual = abs(predicted - actual)
        if residual <= _AFFINE_RTOL * scale + 1e-300:
            return Affine(value, slopes)
        if key in base.rounded or residual <= _FLOAT32_RTOL * scale:
            dtype = base.rounded.get(key)
            cause = f"is a {dtype} tensor" if dtype else "is rounded to float32 somewhere"
            raise ValueError(
                f"{where} {cause}, so it is affine in the hyperparameters {names} only up to "
                f"that rounding (read at moved values: {actual!r}, expected {predicted!r}); "
                "pass a Python float (or a float64 tensor) to the optimizer."
            )
        raise ValueError(
            f"{where} is not an affine function of the hyperparameters {names} near "
            f"{dict(at)} (read at moved values: {actual!r}, expected {predicted!r}); the "
            "probe cannot recover its derivative: make it a multiple of one hyperparameter "
            "plus a constant (e.g. 0.1 * hypers['lr'])."
        )

    def at_step(t: int, g: int, role: str) -> Callable[[_Reading], float]:
        factor = lr_factors[t] if role == "lr" else 1.0
        return lambda r: r.steps[t][g][role] * factor

    groups = []
    for g, (indices, rule, options) in enumerate(base.structure):
        steps = tuple(
            {
                role: affine(
                    at_step(t, g, role),
                    f"param group {g}'s {role} at look-ahead step {t}",
                    (g, role),
                )
                for role in base.steps[t][g]
            }
            for t in range(k)
        )
        groups.append(GroupPlan(indices, rule, dict(options), steps))
    bare = {
        (g, role): affine(
            lambda r, g=g, role=role: r.bare[g][role], f"param group {g}'s {role}", (g, role)
        )
        for g in range(len(base.bare))
        for role in base.bare[g]
    }
    reads = {n for a in bare.values() for n in a.slopes}
    stepped = {
        n for group in groups for step in group.steps for a in step.values() for n in a.slopes
    }
    overridden = {
        name: next(role for (_, role), a in bare.items() if name in a.slopes)
        for name in sorted(reads - stepped)
    }
    return Plan(tuple(groups), overridden, base.scheduler, frozenset(reads))


def _moved(value: float, factor: float) -> float:
    """A second point to read at: a fraction of the value (stays a valid lr, beta, momentum)."""
    return value * factor if value != 0.0 else 0.1 * (1.0 - factor)


def _read(
    model: nn.Module,
    build: MakeOptimizer,
    make_scheduler: MakeScheduler | None,
    hypers: Mapping[str, float],
    k: int,
    index: Mapping[int, int],
    step_scheduler: bool,
) -> _Reading:
    try:
        optimizer = build(model, dict(hypers))
    except KeyError as error:
        raise ValueError(
            f"make_optimizer read hypers[{error.args[0]!r}], which is not one of the probe's "
            f"parameters {sorted(hypers)}: map it to a role, or fix its value in make_optimizer."
        ) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(
            f"make_optimizer returned a {type(optimizer).__name__}, not a torch.optim optimizer."
        )
    structure = []
    for g, group in enumerate(optimizer.param_groups):
        try:
            indices = tuple(index[id(p)] for p in group["params"])
        except KeyError:
            raise ValueError(
                f"make_optimizer's param group {g} holds a tensor that is not a parameter of the "
                "model it was given; build the groups from that model's parameters."
            ) from None
        rule, options = group_rule(optimizer, group)
        structure.append((indices, rule, tuple(sorted(options.items()))))
    rules = [rule for _, rule, _ in structure]

    def values() -> tuple[dict[str, float], ...]:
        return tuple(group_values(r, g) for r, g in zip(rules, optimizer.param_groups))

    bare = values()
    rounded = {
        (g, role): str(value.dtype).removeprefix("torch.")
        for g, group in enumerate(optimizer.param_groups)
        for role in bare[g]
        for value in [group["betas"][role == "beta2"] if "beta" in role else group[role]]
        if isinstance(value, torch.Tensor) and value.dtype != torch.float64
    }
    if make_scheduler is None:
        return _Reading(tuple(structure), bare, (bare,) * k, "", rounded)
    with warnings.catch_warnings():
        # The schedule is read without training: torch warns that optimizer.step() was not
        # called first, which is what the look-ahead does (optimizer.step(), then this).
        warnings.filterwarnings(
            "ignore", message=r".*lr_scheduler\.step\(\)", category=UserWarning
        )
        scheduler = make_scheduler(optimizer)
        _check_scheduler(scheduler)
        steps = []
        for _ in range(k):
            steps.append(values())
            if step_scheduler:
                scheduler.step()
    return _Reading(tuple(structure), bare, tuple(steps), type(scheduler).__name__, rounded)


def _check_scheduler(scheduler: Any) -> None:
    from torch.optim import lr_scheduler

    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        raise ValueError(
            "ReduceLROnPlateau changes the lr on a validation metric, never within the "
            "look-ahead's K steps: leave scheduler= out."
        )
    if not isinstance(scheduler, lr_scheduler.LRScheduler):
        raise ValueError(
            f"make_scheduler returned a {type(scheduler).__name__}, not a "
            "torch.optim.lr_scheduler.LRScheduler."
        )
