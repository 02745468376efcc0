"""What each hyperparameter of a recipe's ``[space]`` is to the probe, read from the recipe."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_ohgw.probes._roles import ROLES
from optuna_ohgw.recipes._base import BaseRecipe, RecipeError

HELD = "held"
"""The role of a float the base sampler tunes and the probe holds fixed."""
_FIELDS = ("lr", "weight_decay", "momentum", "beta1", "beta2")


@dataclasses.dataclass(frozen=True)
class RecipePlan:
    """A recipe's ``[space]`` split into what the probe differentiates and what it holds.

    Attributes:
        space: Every hyperparameter of the study, by name.
        roles: The probed floats and their roles (``lr``, ``weight_decay``, ``loss``, ...).
        held: The other names, suggested first (ints, categoricals, held floats).
    """

    space: Mapping[str, BaseDistribution]
    roles: Mapping[str, str]
    held: tuple[str, ...]

    @property
    def probed_space(self) -> dict[str, FloatDistribution]:
        return {n: self.space[n] for n in self.roles}  # type: ignore[misc]


def typical(space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """A point of ``space`` to read the recipe at: the middle of floats (geometric for log
    scales), the lowest int, the first choice."""
    point: dict[str, Any] = {}
    for name, d in space.items():
        if isinstance(d, FloatDistribution):
            point[name] = math.sqrt(d.low * d.high) if d.log else (d.low + d.high) / 2
        elif isinstance(d, IntDistribution):
            point[name] = d.low
        elif isinstance(d, CategoricalDistribution):
            point[name] = d.choices[0]
        else:
            raise RecipeError(f"{name}: unsupported distribution {type(d).__name__}")
    return point


def build_model(recipe: BaseRecipe, seed: int, hypers: Mapping[str, Any]) -> torch.nn.Module:
    """``recipe.build_model`` with the global RNG seeded by ``seed`` (the caller's restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = recipe.build_model(seed, dict(hypers))
    if not isinstance(model, torch.nn.Module):
        raise RecipeError(
            f"{recipe.where}: build_model returned a {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _call(recipe: BaseRecipe, what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except RecipeError:
        raise
    except Exception as err:  # noqa: BLE001 - the user's code, any failure, one line
        message = str(err).splitlines()[0] if str(err) else ""
        raise RecipeError(
            f"{recipe.where}: {what} raised {type(err).__name__}: {message}"
        ) from None


def optimizer_values(recipe: BaseRecipe, optimizer: Any) -> list[dict[str, float]]:
    """Each group's lr, weight decay, momentum and betas; :class:`RecipeError` for an optimizer
    the probe cannot unroll."""
    from optuna_ohgw.probes._optimizers import group_rule, group_values

    if not isinstance(optimizer, torch.optim.Optimizer):
        raise RecipeError(
            f"{recipe.where}: make_optimizer returned a {type(optimizer).__name__}, not a "
            "torch.optim optimizer"
        )
    out = []
    for group in optimizer.param_groups:
        try:
            rule, _ = group_rule(optimizer, group)
        except ValueError as err:
            raise RecipeError(f"{recipe.where}: the probe cannot unroll it: {err}") from None
        out.append(group_values(rule, group))
    return out


def plan_recipe(recipe: BaseRecipe, space: Mapping[str, BaseDistribution]) -> RecipePlan:
    """Read each float's role from the recipe at a typical point of ``space``.

    A float whose change moves a value of ``make_optimizer``'s groups takes that value's role;
    ``label_smoothing`` (default loss) and ``augment`` (with an augmentation) are theirs by
    name; a float ``loss_fn`` differentiates is role ``loss``; any other float is held. The
    recipe's ``roles`` overrides. :class:`RecipeError` for a recipe that cannot be probed.
    """
    point = typical(space)
    model = _call(recipe, "build_model", build_model, recipe, 0, point)
    opt = _call(recipe, "make_optimizer", recipe.make_optimizer, model, dict(point))
    base = optimizer_values(recipe, opt)
    declared = dict(recipe.roles or {})
    for name, role in declared.items():
        if name not in space:
            raise RecipeError(f"{recipe.where}: roles names {name!r}, which is not in [space]")
        if role != HELD and role not in ROLES:
            raise RecipeError(
                f"{recipe.where}: roles[{name!r}] = {role!r}; choose from {', '.join(ROLES)}, held"
            )
    roles: dict[str, str] = {}
    floats = [n for n, d in space.items() if isinstance(d, FloatDistribution)]
    undecided = []
    for name in floats:
        if name in declared:
            roles[name] = declared[name]
            continue
        moved = dict(point)
        moved[name] = point[name] * 0.75 if point[name] else 0.05
        other = _call(recipe, "make_optimizer", recipe.make_optimizer, model, moved)
        values = optimizer_values(recipe, other)
        changed = [f for a, b in zip(base, values) for f in _FIELDS if a.get(f) != b.get(f)]
        if changed:
            roles[name] = changed[0]
        elif name == "label_smoothing" and not recipe.has_loss_fn:
            roles[name] = "label_smoothing"
        elif name == "augment" and recipe.augmentation is not None:
            roles[name] = "augment"
        else:
            undecided.append(name)
    if undecided and recipe.has_loss_fn:
        for name in _loss_reads(recipe, model, point, undecided):
            roles[name] = "loss"
    probed = {n: r for n, r in roles.items() if r != HELD}
    held = tuple(n for n in space if n not in probed)
    return RecipePlan(dict(space), probed, held)


def _loss_reads(
    recipe: BaseRecipe, model: torch.nn.Module, point: Mapping[str, Any], names: list[str]
) -> list[str]:
    """The names among ``names`` that ``loss_fn`` differentiably depends on (one batch)."""
    from optuna_ohgw.probes._data import make_draw
    from optuna_ohgw.recipes._data import recipe_data

    try:
        draw, _ = make_draw(recipe_data(recipe, "train_data"), 8, 8, "train_data")
    except ValueError as err:
        raise RecipeError(f"{recipe.where}: {err}") from None
    batch = draw(torch.Generator().manual_seed(0))
    leaves = {n: torch.tensor(float(point[n]), requires_grad=True) for n in names}
    hypers = {**{n: v for n, v in point.items() if n not in leaves}, **leaves}
    loss = _call(recipe, "loss_fn", recipe.loss_fn, model, batch, hypers)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise RecipeError(f"{recipe.where}: loss_fn must return a 0-d tensor")
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return [n for n, g in zip(leaves, grads) if g is not None]


def check_metric(recipe: BaseRecipe, model: torch.nn.Module) -> float:
    """``recipe.evaluate(model)`` as a float; :class:`RecipeError` if it is not one."""
    value = _call(recipe, "evaluate", recipe.evaluate, model)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RecipeError(
            f"{recipe.where}: evaluate(model) returned a {type(value).__name__}, not a float "
            "(return e.g. float(accuracy))"
        )
    return float(value)
