"""Benchmark tasks: data, models, augmentation and probes."""

from __future__ import annotations

from optuna_ohgw.tasks._base import BaseTask, Splits, TrainState
from optuna_ohgw.tasks.cifar10 import CIFAR10Task, DatasetMissingError
from optuna_ohgw.tasks.digits import DigitsTask
from optuna_ohgw.tasks.fashion import FashionMNISTTask
from optuna_ohgw.tasks.mnist1d import MNIST1DTask

TASKS: dict[str, type[BaseTask]] = {
    DigitsTask.name: DigitsTask,
    MNIST1DTask.name: MNIST1DTask,
    CIFAR10Task.name: CIFAR10Task,
    FashionMNISTTask.name: FashionMNISTTask,
}


def get_task(name: str) -> type[BaseTask]:
    """The task class registered under ``name``."""
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; choose from {sorted(TASKS)}.")
    return TASKS[name]


__all__ = [
    "TASKS",
    "BaseTask",
    "CIFAR10Task",
    "DatasetMissingError",
    "DigitsTask",
    "FashionMNISTTask",
    "MNIST1DTask",
    "Splits",
    "TrainState",
    "get_task",
]
