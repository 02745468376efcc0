"""optuna-ohgw: One-Shot Hyper-Gradient Warm-Starts for Optuna samplers.

The public names are imported on first use, so ``import optuna_ohgw`` does not import torch.
"""

from typing import TYPE_CHECKING

from optuna_ohgw import attrs
from optuna_ohgw._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "BaseAugmentation": ".augmentations",
    "GaussianNoise": ".augmentations",
    "RandomTranslate": ".augmentations",
    "EpochHooks": ".objective",
    "EpochObjective": ".objective",
    "epoch_objective": ".objective",
    "BaseProbe": ".probes",
    "FunctionProbe": ".probes",
    "LookaheadProbe": ".probes",
    "ProbeCheck": ".probes",
    "ProbeResult": ".probes",
    "BaseRecipe": ".recipes",
    "RecipeProbe": ".recipes",
    "load_recipe": ".recipes",
    "recipe_objective": ".recipes",
    "OHGWSampler": ".sampler",
    "trial_seed": ".sampler",
    "BaseStepRule": ".steps",
    "FlippedStep": ".steps",
    "NormalizedStep": ".steps",
    "NoStep": ".steps",
    "RandomSignStep": ".steps",
    "RawStep": ".steps",
    "make_step_rule": ".steps",
    "optimize_virtual": ".virtual",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_ohgw.augmentations import BaseAugmentation, GaussianNoise, RandomTranslate
    from optuna_ohgw.objective import EpochHooks, EpochObjective, epoch_objective
    from optuna_ohgw.probes import (
        BaseProbe,
        FunctionProbe,
        LookaheadProbe,
        ProbeCheck,
        ProbeResult,
    )
    from optuna_ohgw.recipes import BaseRecipe, RecipeProbe, load_recipe, recipe_objective
    from optuna_ohgw.sampler import OHGWSampler, trial_seed
    from optuna_ohgw.steps import (
        BaseStepRule,
        FlippedStep,
        NormalizedStep,
        NoStep,
        RandomSignStep,
        RawStep,
        make_step_rule,
    )
    from optuna_ohgw.virtual import optimize_virtual

__all__ = [
    "BaseAugmentation",
    "BaseProbe",
    "BaseRecipe",
    "BaseStepRule",
    "EpochHooks",
    "EpochObjective",
    "FlippedStep",
    "FunctionProbe",
    "GaussianNoise",
    "LookaheadProbe",
    "NoStep",
    "NormalizedStep",
    "OHGWSampler",
    "ProbeCheck",
    "ProbeResult",
    "RandomSignStep",
    "RandomTranslate",
    "RecipeProbe",
    "RawStep",
    "attrs",
    "epoch_objective",
    "load_recipe",
    "make_step_rule",
    "optimize_virtual",
    "recipe_objective",
    "trial_seed",
]
