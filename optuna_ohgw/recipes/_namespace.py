"""A recipe written as plain names: a module's top level, or any object's attributes."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from optuna_ohgw.recipes._base import BaseRecipe, RecipeError

REQUIRED = {
    "build_model": ("seed", "hypers"),
    "make_optimizer": ("model", "hypers"),
    "evaluate": ("model",),
}
"""Required functions and the arguments each is called with."""
OPTIONAL = {
    "loss_fn": ("apply", "batch", "hypers"),
    "train_epoch": ("state", "epoch"),
    "final_metrics": ("model",),
}
SETTINGS = (
    "train_data",
    "val_data",
    "test_data",
    "batch_size",
    "scheduler_interval",
    "clip_grad_norm",
    "clip_grad_value",
    "norm_type",
    "clip_over",
    "label_smoothing",
    "augmentation",
    "augment",
    "roles",
)


def _takes(fn: Callable[..., Any], n: int) -> bool:
    """Whether ``fn`` can be called with ``n`` positional arguments."""
    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): trust it
        return True
    return True


class NamespaceRecipe(BaseRecipe):
    """The recipe ``namespace`` spells out by name (see :class:`BaseRecipe` for the names).

    ``make_scheduler`` may take ``(optimizer)`` or ``(optimizer, hypers)``. A missing required
    name or a function with the wrong arguments is a :class:`RecipeError` naming ``where``.

    Args:
        namespace: A module or an object with the recipe's names as attributes.
        where: The recipe's file (and name), for error messages.
    """

    def __init__(self, namespace: Any, *, where: str) -> None:
        self._where = where
        self._ns = namespace
        for name, args in {**REQUIRED, **OPTIONAL}.items():
            fn = getattr(namespace, name, None)
            if fn is None:
                if name in REQUIRED:
                    raise RecipeError(f"{where}: missing {name}({', '.join(args)})")
                continue
            if not callable(fn) or not _takes(fn, len(args)):
                raise RecipeError(f"{where}: {name} must be a function {name}({', '.join(args)})")
        scheduler = getattr(namespace, "make_scheduler", None)
        self._scheduler_args = 0
        if scheduler is not None:
            if not callable(scheduler):
                raise RecipeError(f"{where}: make_scheduler must be a function")
            self._scheduler_args = 2 if _takes(scheduler, 2) else 1 if _takes(scheduler, 1) else 0
            if not self._scheduler_args:
                raise RecipeError(
                    f"{where}: make_scheduler must be a function make_scheduler(optimizer) or "
                    "make_scheduler(optimizer, hypers)"
                )
        for key in SETTINGS:
            if hasattr(namespace, key):
                setattr(self, key, getattr(namespace, key))
        self.check()

    @property
    def where(self) -> str:
        return self._where

    @property
    def has_scheduler(self) -> bool:
        return self._scheduler_args > 0

    @property
    def has_loss_fn(self) -> bool:
        return getattr(self._ns, "loss_fn", None) is not None

    def build_model(self, seed: int, hypers: Mapping[str, Any]) -> Any:
        return self._ns.build_model(seed, hypers)

    def make_optimizer(self, model: Any, hypers: Mapping[str, Any]) -> Any:
        return self._ns.make_optimizer(model, hypers)

    def evaluate(self, model: Any) -> float:
        return self._ns.evaluate(model)

    def make_scheduler(self, optimizer: Any, hypers: Mapping[str, Any]) -> Any:
        if self._scheduler_args == 2:
            return self._ns.make_scheduler(optimizer, hypers)
        if self._scheduler_args == 1:
            return self._ns.make_scheduler(optimizer)
        return None

    def loss_fn(self, apply: Any, batch: Any, hypers: Mapping[str, Any]) -> Any:
        fn = getattr(self._ns, "loss_fn", None)
        return None if fn is None else fn(apply, batch, hypers)

    def train_epoch(self, state: Any, epoch: int) -> None:
        fn = getattr(self._ns, "train_epoch", None)
        if fn is None:
            super().train_epoch(state, epoch)
        else:
            fn(state, epoch)

    def final_metrics(self, model: Any) -> Mapping[str, float]:
        fn = getattr(self._ns, "final_metrics", None)
        return super().final_metrics(model) if fn is None else fn(model)
