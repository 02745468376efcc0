"""optuna-ohgw: One-Shot Hyper-Gradient Warm-Starts for Optuna samplers."""

from optuna_ohgw import attrs
from optuna_ohgw.augmentations import BaseAugmentation, GaussianNoise, RandomTranslate
from optuna_ohgw.objective import EpochHooks, EpochObjective, epoch_objective
from optuna_ohgw.probes import BaseProbe, FunctionProbe, LookaheadProbe, ProbeResult
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

__version__ = "0.1.0"

__all__ = [
    "BaseAugmentation",
    "BaseProbe",
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
    "ProbeResult",
    "RandomSignStep",
    "RandomTranslate",
    "RawStep",
    "attrs",
    "epoch_objective",
    "make_step_rule",
    "trial_seed",
]
