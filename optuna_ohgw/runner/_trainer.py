"""What a study trains: a built-in task, or the user's recipe in the same shape.

The rest of the runner asks the object for ``make_objective`` and ``make_probe`` and never
branches on which one it holds, except for the probe's float space (:func:`probe_space`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.distributions import FloatDistribution

from optuna_ohgw.studyfile import StudyConfig, StudyFileError


class RecipeTrainer:
    """A recipe study's objective and probe, built once per worker from ``config.recipe``.

    Args:
        config: The study (``config.recipe`` set).
        device: Where trials train and the probe runs.
    """

    def __init__(self, config: StudyConfig, *, device: str = "cpu") -> None:
        from optuna_ohgw.recipes import load_recipe, plan_recipe

        self.recipe = load_recipe(config.recipe)
        self.plan = plan_recipe(self.recipe, config.space)
        self.device = device

    @property
    def probed_space(self) -> dict[str, FloatDistribution]:
        return self.plan.probed_space

    def make_objective(
        self,
        seed: int,
        space: Mapping[str, Any],
        max_epochs: int,
        fixed: Mapping[str, float] | None = None,
        batch_size: int | None = None,
    ) -> Any:
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
        seed: int,
        space: Mapping[str, Any],
        fixed: Mapping[str, float] | None = None,
        *,
        k: int | None = None,
        n_pairs: int = 1,
        batch_size: int = 128,
        model: Any = None,
        held: Mapping[str, Any] | None = None,
    ) -> Any:
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
        )


def probe_space(config: StudyConfig, trainer: Any) -> Mapping[str, FloatDistribution]:
    """The floats the probe moves: a task's whole ``[space]``, a recipe's probed floats."""
    return trainer.probed_space if config.recipe else config.space  # type: ignore[return-value]


def open_trainer(
    config: StudyConfig,
    *,
    device: str,
    data_dir: str | None = None,
    download: bool = False,
) -> Any:
    """The task or the recipe of ``config``, its data loaded (a missing dataset or a broken
    recipe fails here, before any trial starts)."""
    if config.recipe:
        from optuna_ohgw.recipes import RecipeError

        try:
            return RecipeTrainer(config, device=device)
        except RecipeError as err:
            raise StudyFileError(str(err)) from None
    from optuna_ohgw.tasks import get_task

    task = get_task(config.task)(device=device, data_dir=data_dir, download=download)
    task.splits(config.seed)
    return task


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
