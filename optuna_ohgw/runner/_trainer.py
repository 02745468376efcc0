"""What a study trains, as a recipe: the user's (``recipe = ...``) or a built-in task written as
one (:class:`~optuna_ohgw.tasks._recipe.TaskRecipe`). Both take the same path: the probe, the
objective, the checkpoint and the epoch loop all come from :mod:`optuna_ohgw.recipes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.distributions import BaseDistribution, FloatDistribution

from optuna_ohgw.studyfile import StudyConfig, StudyFileError


class RecipeTrainer:
    """A study's objective and probe, built once per worker from its recipe.

    Args:
        recipe: The :class:`~optuna_ohgw.recipes.BaseRecipe`.
        space: The study's ``[space]``.
        device: Where trials train and the probe runs.
    """

    def __init__(
        self, recipe: Any, space: Mapping[str, BaseDistribution], *, device: str = "cpu"
    ) -> None:
        from optuna_ohgw.recipes import plan_recipe

        self.recipe = recipe
        self.plan = plan_recipe(recipe, space)
        self.device = device

    @property
    def probed_space(self) -> dict[str, FloatDistribution]:
        """The floats the probe moves (a task's whole ``[space]``)."""
        return self.plan.probed_space

    def make_objective(self, seed: int, max_epochs: int, batch_size: int | None = None) -> Any:
        """The :class:`~optuna_ohgw.EpochObjective` every worker runs."""
        from optuna_ohgw.recipes import recipe_objective

        return recipe_objective(
            self.recipe,
            self.plan,
            seed=seed,
            max_epochs=max_epochs,
            device=self.device,
            batch_size=batch_size,
        )

    def make_probe(
        self,
        *,
        k: int | None = None,
        n_pairs: int = 1,
        batch_size: int = 128,
        model: Any = None,
        held: Mapping[str, Any] | None = None,
        resumed: Any = None,
    ) -> Any:
        """The warm start's probe; with ``resumed`` (a resumed trial's
        :class:`~optuna_ohgw.recipes.RecipeState`) the re-probe's, which continues that trial:
        its weights, held values, optimizer state and scheduler position. ``model`` and
        ``held`` alone start from the weights only (fresh moments, the schedule's step 0)."""
        from optuna_ohgw.recipes import RecipeProbe

        return RecipeProbe(
            self.recipe,
            self.plan,
            k=k,
            n_pairs=n_pairs,
            batch_size=batch_size,
            device=self.device,
            model=model,
            context=held,
            resumed=resumed,
        )


def open_trainer(
    config: StudyConfig,
    *,
    device: str,
    data_dir: str | None = None,
    download: bool = False,
) -> RecipeTrainer:
    """The recipe of ``config``, its data loaded (a missing dataset or a broken recipe fails
    here, before any trial starts)."""
    from optuna_ohgw.recipes import RecipeError, load_recipe

    try:
        if config.recipe:
            recipe = load_recipe(config.recipe)
        else:
            from optuna_ohgw.tasks import get_task
            from optuna_ohgw.tasks._recipe import TaskRecipe

            task = get_task(config.task)(device=device, data_dir=data_dir, download=download)
            recipe = TaskRecipe(
                task,
                seed=config.seed,
                max_epochs=config.max_epochs,
                fixed=config.fixed,
                batch_size=config.batch_size or None,
            )
        return RecipeTrainer(recipe, config.space, device=device)
    except RecipeError as err:
        raise StudyFileError(str(err)) from None


def check_trainer(config: StudyConfig, *, data_dir: str | None, download: bool) -> None:
    """Before any worker starts: a task's dataset is where it reads it; a recipe loads, its
    optimizer is one the probe unrolls, one look-ahead runs and its metric is a float.
    :class:`~optuna_ohgw.studyfile.StudyFileError`, one line, otherwise."""
    if not config.recipe:
        from optuna_ohgw.tasks import get_task

        get_task(config.task)(data_dir=data_dir, download=download).check_data()
        return
    from optuna_ohgw.recipes import RecipeError, load_recipe, validate_recipe

    try:
        recipe = load_recipe(config.recipe)
        validate_recipe(
            recipe,
            config.space,
            probe=config.ohgw.enabled,
            k=config.ohgw.k or None,
            batch_size=config.ohgw.batch_size,
        )
    except RecipeError as err:
        raise StudyFileError(str(err)) from None
