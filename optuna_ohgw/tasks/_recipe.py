"""A built-in task as a training recipe: the same data, network, SGD, augmentation, label
smoothing and cosine schedule, on the public recipe interface."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from optuna_ohgw.recipes import BaseRecipe
from optuna_ohgw.tasks._base import BaseTask


class CosineByEpoch(torch.optim.lr_scheduler.LRScheduler):
    """The tasks' schedule, stepped per epoch: ``lr * 0.5 * (1 + cos(pi * epoch / max_epochs))``
    (the same floating-point operations as :meth:`BaseTask.train_one_epoch`)."""

    closed_form = True
    """``get_lr`` reads only the base learning rates and the epoch (see ``RecipeState``)."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_epochs: int) -> None:
        self.max_epochs = max_epochs
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        angle = math.pi * self.last_epoch / self.max_epochs
        return [base * 0.5 * (1.0 + math.cos(angle)) for base in self.base_lrs]


class TaskRecipe(BaseRecipe):
    """``task`` trained as :class:`BaseTask` trains it, written as a recipe.

    Args:
        task: The built-in task (its device is where data and models live).
        seed: The study seed: the data split.
        max_epochs: The cosine schedule's length.
        fixed: Values for the five roles a study does not tune (``[fixed]``; defaults else).
        batch_size: Rows per step (the task's default when ``None``).
    """

    scheduler_interval = "epoch"

    def __init__(
        self,
        task: BaseTask,
        *,
        seed: int,
        max_epochs: int,
        fixed: Mapping[str, float] | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.task = task
        splits = task.splits(seed)
        self.train_data, self.val_data, self.test_data = splits.train, splits.val, splits.test
        self.values = task.hyperparameters(fixed)
        self.max_epochs = max_epochs
        self.batch_size = batch_size or task.batch_size
        self.label_smoothing = self.values["label_smoothing"]
        self.augment = self.values["augment"]
        self.augmentation = task.augmentation

    @property
    def where(self) -> str:
        return f"task {self.task.name}"

    def build_model(self, seed: int, hypers: Mapping[str, Any]) -> nn.Module:
        return self.task.build_model(seed)

    def make_optimizer(self, model: nn.Module, hypers: Mapping[str, Any]) -> torch.optim.SGD:
        v = {**self.values, **hypers}
        return torch.optim.SGD(
            model.parameters(), lr=v["lr"], momentum=v["momentum"], weight_decay=v["weight_decay"]
        )

    def make_scheduler(self, optimizer: torch.optim.Optimizer, hypers: Mapping[str, Any]) -> Any:
        return CosineByEpoch(optimizer, self.max_epochs)

    def evaluate(self, model: nn.Module) -> float:
        return self.task.accuracy(model, self.val_data)

    def final_metrics(self, model: nn.Module) -> Mapping[str, float]:
        return {"test_accuracy": self.task.accuracy(model, self.test_data)}
