"""The objective a recipe study runs, and the checks a recipe passes before any worker."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna
import torch
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_ohgw.objective import EpochObjective
from optuna_ohgw.recipes._base import BaseRecipe, RecipeError
from optuna_ohgw.recipes._plan import RecipePlan, build_model, check_metric, plan_recipe, typical
from optuna_ohgw.recipes._state import RecipeState
from optuna_ohgw.seeding import trial_seed


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """``trial.suggest_*`` for ``dist``."""
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise TypeError(f"{name}: unsupported distribution {type(dist).__name__}")


def make_state(
    recipe: BaseRecipe,
    plan: RecipePlan,
    hypers: Mapping[str, Any],
    seed: int,
    *,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
) -> RecipeState:
    """The training state of a trial at ``hypers`` whose weights derive from ``seed``: the
    model the probe starts from, the optimizer and scheduler the probe unrolls."""
    device = torch.device(device)
    model = build_model(recipe, seed, hypers).to(device)
    optimizer = recipe.make_optimizer(model, dict(hypers))
    held = {n: v for n, v in hypers.items() if n not in plan.roles}
    scheduler = recipe.make_scheduler(optimizer, held) if recipe.has_scheduler else None
    size = int(hypers.get("batch_size", 0)) or batch_size or recipe.batch_size
    return RecipeState(
        recipe, model, optimizer, scheduler, dict(hypers), dict(plan.roles), seed, size, device
    )


def recipe_objective(
    recipe: BaseRecipe,
    plan: RecipePlan,
    *,
    seed: int,
    max_epochs: int,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
) -> EpochObjective[RecipeState]:
    """The :class:`~optuna_ohgw.EpochObjective` of a recipe study.

    Each trial suggests the held names first (ints, categoricals, held floats: the probe needs
    them as constants), then the probed floats; builds its model from
    ``trial_seed(seed, trial.number)`` (the weights the probe starts from, with
    ``OHGWSampler(seed=seed)``); trains with ``recipe.train_epoch`` and reports
    ``recipe.evaluate`` after every epoch.
    """

    def setup(trial: optuna.Trial) -> RecipeState:
        hypers = {n: suggest(trial, n, plan.space[n]) for n in plan.held}
        hypers.update({n: suggest(trial, n, plan.space[n]) for n in plan.roles})
        hypers = {n: hypers[n] for n in plan.space}  # the study file's order
        return make_state(
            recipe,
            plan,
            hypers,
            trial_seed(seed, trial.number),
            device=device,
            batch_size=batch_size,
        )

    def train_epoch(state: RecipeState, epoch: int) -> float:
        recipe.train_epoch(state, epoch)
        value = recipe.evaluate(state.model)
        return float(value) if isinstance(value, (int, float)) else float(value)

    def final(state: RecipeState) -> Mapping[str, float]:
        return recipe.final_metrics(state.model)

    return EpochObjective(train_epoch, setup=setup, max_epochs=max_epochs, final=final)


def validate_recipe(
    recipe: BaseRecipe,
    space: Mapping[str, BaseDistribution],
    *,
    probe: bool = True,
    k: int | None = None,
    batch_size: int | None = None,
) -> RecipePlan:
    """Everything a study checks of a recipe before any worker starts, at a typical point of
    ``space``: the plan (model, optimizer the probe unrolls, roles), the scheduler, one
    look-ahead of the probe (``probe=True``) and the metric of the untrained model, which must
    be a float. Raises :class:`RecipeError`, one line."""
    from optuna_ohgw.recipes._plan import _call
    from optuna_ohgw.recipes._probe import RecipeProbe

    plan = plan_recipe(recipe, space)
    point = typical(space)
    state = _call(recipe, "the trial's setup", make_state, recipe, plan, point, 0)
    value = check_metric(recipe, state.model)
    if math.isnan(value):
        raise RecipeError(f"{recipe.where}: evaluate(model) returned nan")
    if probe and plan.roles:
        look = RecipeProbe(recipe, plan, k=k, batch_size=batch_size)
        try:
            look.loss(point)
        except (TypeError, ValueError) as err:
            raise RecipeError(f"{recipe.where}: the probe cannot unroll it: {err}") from None
    return plan
