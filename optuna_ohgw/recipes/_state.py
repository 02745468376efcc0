"""A trial's training state under a recipe, and what a pause keeps of it."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from optuna_ohgw.recipes._base import BaseRecipe


@dataclasses.dataclass
class RecipeState:
    """What a trial trains: built by the recipe's objective, advanced one epoch at a time.

    Every epoch's data order, augmentation draws and dropout masks derive from ``seed`` and
    the epoch, so a checkpoint needs no RNG state to resume bit for bit.

    Attributes:
        recipe: The recipe.
        model: The network.
        optimizer: ``recipe.make_optimizer(model, hyperparameters)``.
        scheduler: ``recipe.make_scheduler(optimizer, ...)`` or ``None``.
        hyperparameters: The trial's values of the study's ``[space]``.
        roles: The probed floats' roles (``lr``, ``loss``, ...); the others are held.
        seed: The trial's seed (the probe built the same initial weights from it).
        batch_size: Rows per step.
        device: Where the model and the data live.
        steps: Optimizer steps taken so far.
    """

    recipe: BaseRecipe
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    hyperparameters: dict[str, Any]
    roles: Mapping[str, str]
    seed: int
    batch_size: int
    device: torch.device
    steps: int = 0

    def held(self) -> dict[str, Any]:
        """The values the probe holds fixed (everything but the probed floats)."""
        return {n: v for n, v in self.hyperparameters.items() if n not in self.roles}

    def state_dict(self) -> dict[str, Any]:
        """Weights and buffers, the optimizer's and the scheduler's state, the step count, the
        seed and the hyperparameters."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "steps": self.steps,
            "seed": self.seed,
            "hyperparameters": dict(self.hyperparameters),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "steps" not in state:
            raise ValueError(
                "this checkpoint was written before training recipes (no scheduler state or "
                "step count): finish that study with the optuna-ohgw that paused it"
            )
        self.hyperparameters = dict(state["hyperparameters"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.steps = int(state["steps"])
        self.seed = int(state["seed"])

    def set_hyperparameters(self, values: Mapping[str, float]) -> None:
        """Change probed floats between epochs (the re-probe at a promotion): every group's
        options are rebuilt with ``make_optimizer`` at the new values, the optimizer's state
        (moments) kept; a scheduler keeps its position and takes the schedule of the new values
        there: a closed-form one (``LambdaLR``, ``closed_form = True``) from its ``get_lr`` at
        the new base learning rates; any other from a fresh ``make_scheduler`` on the new
        values stepped as often as the trial's (its state loaded into the trial's). Both are
        the values the re-probe's look-ahead reads (``RecipeProbe(resumed=...)``)."""
        self.hyperparameters.update({k: float(v) for k, v in values.items()})
        fresh = self.recipe.make_optimizer(self.model, dict(self.hyperparameters))
        if self.scheduler is not None and not _closed_form(self.scheduler):
            position = int(getattr(self.scheduler, "last_epoch", 0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # step() before optimizer.step()
                schedule = self.recipe.make_scheduler(fresh, self.held())
                for _ in range(position):
                    schedule.step()
            self.scheduler.load_state_dict(schedule.state_dict())
            for group, new in zip(self.optimizer.param_groups, fresh.param_groups):
                group.update({k: v for k, v in new.items() if k != "params"})
            return
        for group, new in zip(self.optimizer.param_groups, fresh.param_groups):
            for key, value in new.items():
                if key not in ("params", "lr", "initial_lr"):
                    group[key] = value
            if self.scheduler is not None:
                group["initial_lr"] = new["lr"]
            group["lr"] = new["lr"]
        if self.scheduler is not None and hasattr(self.scheduler, "base_lrs"):
            self.scheduler.base_lrs = [g["initial_lr"] for g in self.optimizer.param_groups]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # get_lr outside step()
                lrs = self.scheduler.get_lr()
            for group, lr in zip(self.optimizer.param_groups, lrs):
                group["lr"] = lr


def _closed_form(scheduler: Any) -> bool:
    """Whether ``get_lr()`` computes the value from the base learning rates and the position
    alone (``LambdaLR``, or a scheduler that says ``closed_form = True``)."""
    lambda_lr = torch.optim.lr_scheduler.LambdaLR
    return isinstance(scheduler, lambda_lr) or bool(getattr(scheduler, "closed_form", False))
