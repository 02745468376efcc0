"""Training recipes: one definition of a model's training from which the probe, the trial's
epoch loop, its checkpoint and the objective are derived (imported on first use)."""

from typing import TYPE_CHECKING

from optuna_ohgw._lazy import lazy_exports

_EXPORTS = {
    "BaseRecipe": "._base",
    "RecipeError": "._base",
    "NamespaceRecipe": "._namespace",
    "load_recipe": "._loader",
    "resolve_spec": "._loader",
    "RecipePlan": "._plan",
    "plan_recipe": "._plan",
    "RecipeProbe": "._probe",
    "RecipeState": "._state",
    "make_state": "._objective",
    "recipe_objective": "._objective",
    "validate_recipe": "._objective",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_ohgw.recipes._base import BaseRecipe, RecipeError
    from optuna_ohgw.recipes._loader import load_recipe, resolve_spec
    from optuna_ohgw.recipes._namespace import NamespaceRecipe
    from optuna_ohgw.recipes._objective import make_state, recipe_objective, validate_recipe
    from optuna_ohgw.recipes._plan import RecipePlan, plan_recipe
    from optuna_ohgw.recipes._probe import RecipeProbe
    from optuna_ohgw.recipes._state import RecipeState

__all__ = [
    "BaseRecipe",
    "NamespaceRecipe",
    "RecipeError",
    "RecipePlan",
    "RecipeProbe",
    "RecipeState",
    "load_recipe",
    "make_state",
    "plan_recipe",
    "recipe_objective",
    "resolve_spec",
    "validate_recipe",
]
