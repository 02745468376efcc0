"""A built-in task written as a recipe (``TaskRecipe``) trains bit for bit as the task's own
objective, and its probe gives the task probe's loss and hypergradient, also bit for bit."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution

from optuna_ohgw.recipes import RecipeProbe, plan_recipe, recipe_objective
from optuna_ohgw.tasks import DigitsTask, MNIST1DTask
from optuna_ohgw.tasks._recipe import TaskRecipe

SPACE = {
    "lr": FloatDistribution(0.01, 0.5, log=True),
    "momentum": FloatDistribution(0.0, 0.95),
    "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
    "augment": FloatDistribution(0.0, 2.0),
    "label_smoothing": FloatDistribution(0.0, 0.2),
}
POINT = {"lr": 0.1, "momentum": 0.8, "weight_decay": 1e-4, "augment": 1.0, "label_smoothing": 0.1}


def _run(objective, params) -> optuna.trial.FrozenTrial:  # type: ignore[no-untyped-def]
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(params)
    study.optimize(objective, n_trials=1)
    return study.trials[0]


@pytest.mark.parametrize("kind", [DigitsTask, MNIST1DTask])
def test_a_task_as_a_recipe_trains_bit_for_bit(kind: type, torch_one_thread) -> None:
    task = kind()
    space = {n: SPACE[n] for n in ("lr", "momentum", "augment")}
    fixed = {"label_smoothing": 0.05, "weight_decay": 5e-4}
    params = {n: POINT[n] for n in space}
    old = _run(task.make_objective(3, space, 3, fixed=fixed), params)
    recipe = TaskRecipe(task, seed=3, max_epochs=3, fixed=fixed)
    plan = plan_recipe(recipe, space)
    assert plan.roles == {"lr": "lr", "momentum": "momentum", "augment": "augment"}
    new = _run(recipe_objective(recipe, plan, seed=3, max_epochs=3), params)
    assert new.intermediate_values == old.intermediate_values  # bit for bit
    assert new.user_attrs["test_accuracy"] == old.user_attrs["test_accuracy"]


def test_a_task_recipes_probe_agrees_with_the_tasks_probe(torch_one_thread) -> None:
    task = DigitsTask()
    recipe = TaskRecipe(task, seed=0, max_epochs=9)
    plan = plan_recipe(recipe, SPACE)
    assert plan.roles == {n: n for n in SPACE}
    old = task.make_probe(0, SPACE)(POINT, seed=4)
    new = RecipeProbe(recipe, plan, batch_size=128)(POINT, seed=4)  # the task probe's
    assert new.value == old.value  # bit for bit
    for name in SPACE:
        assert new.grads[name] == old.grads[name]
