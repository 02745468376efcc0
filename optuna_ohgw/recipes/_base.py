"""The training recipe: one definition from which the probe, the trial's training, its
checkpoint and the objective are all derived, so the look-ahead and the trial agree."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from optuna_ohgw.augmentations import BaseAugmentation

SCHEDULER_INTERVALS = ("step", "epoch")
CLIP_OVER = ("trained", "all")


class RecipeError(ValueError):
    """A recipe that cannot be used: one line naming its file and what is wrong."""


class BaseRecipe(abc.ABC):
    """What a model's training is made of, by the names a study file's ``recipe`` reads.

    Subclass it, or write the same names at the top level of a ``train.py`` (see
    :func:`~optuna_ohgw.recipes.load_recipe`). ``hypers`` maps the study's ``[space]`` names to
    the trial's values (floats, ints, categoricals). The library derives from these pieces:

    - the probe: a :class:`~optuna_ohgw.LookaheadProbe` with ``make_optimizer``,
      ``make_scheduler``, the clipping, ``loss_fn`` and the augmentation; each float's role is
      read from how ``make_optimizer`` uses it (the group value it moves), ``loss_fn``'s floats
      are role ``loss``, and a float nothing differentiable reads (a warm-up fraction) is
      sampled by the base sampler and held fixed by the probe (:attr:`roles` overrides);
    - the trial's state and its default epoch loop, with exactly the same pieces;
    - the checkpoint a paused trial keeps (model, optimizer, scheduler, step count);
    - the objective: :meth:`evaluate` after each epoch is the metric the pruner sees.

    Attributes:
        train_data: Training data: a tuple or dict of equally long tensors, a ``Dataset``, a
            ``DataLoader`` (its dataset and collate function; the loop draws its own order), or
            a function of no arguments that returns one.
        val_data: The held-out data the probe's look-ahead loss is measured on (the same
            forms). :meth:`evaluate` reads whatever it likes.
        test_data: Optional data for a final test accuracy (``(inputs, targets)`` tensors).
        batch_size: Rows per training step (a ``batch_size`` in ``[space]`` overrides it).
        scheduler_interval: ``"step"`` or ``"epoch"``: when ``make_scheduler``'s scheduler is
            stepped.
        clip_grad_norm: ``max_norm`` of ``torch.nn.utils.clip_grad_norm_`` before each step.
        clip_grad_value: ``clip_value`` of ``torch.nn.utils.clip_grad_value_``.
        norm_type: The clipping norm.
        clip_over: ``"trained"`` (the parameters the optimizer trains) or ``"all"`` (every
            parameter of the model).
        label_smoothing: The default cross entropy's smoothing when ``[space]`` does not tune
            ``label_smoothing``.
        augmentation: A :class:`~optuna_ohgw.BaseAugmentation` applied to training inputs with
            the ``augment`` hyperparameter (or :attr:`augment`) as its magnitude.
        augment: The augmentation's magnitude when ``[space]`` does not tune ``augment``.
        roles: Optional ``{name: role}`` overriding the inferred roles (a role of
            :data:`~optuna_ohgw.probes.ROLES`, or ``"held"``).
    """

    train_data: Any = None
    val_data: Any = None
    test_data: Any = None
    batch_size: int = 128
    scheduler_interval: str = "step"
    clip_grad_norm: float | None = None
    clip_grad_value: float | None = None
    norm_type: float = 2.0
    clip_over: str = "trained"
    label_smoothing: float = 0.0
    augmentation: BaseAugmentation | None = None
    augment: float = 0.0
    roles: Mapping[str, str] | None = None

    @property
    def where(self) -> str:
        """What error messages call the recipe (its file)."""
        return type(self).__qualname__

    @abc.abstractmethod
    def build_model(self, seed: int, hypers: Mapping[str, Any]) -> nn.Module:
        """A freshly initialised network (the global torch RNG is seeded with ``seed``)."""

    @abc.abstractmethod
    def make_optimizer(self, model: nn.Module, hypers: Mapping[str, Any]) -> torch.optim.Optimizer:
        """The trial's optimizer (``torch.optim.SGD``, ``Adam`` or ``AdamW``; any groups)."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module) -> float:
        """The metric the pruner and the study see (the study file gives its direction)."""

    def make_scheduler(self, optimizer: torch.optim.Optimizer, hypers: Mapping[str, Any]) -> Any:
        """The learning-rate scheduler, or ``None`` (the default). ``hypers`` holds the values
        the probe keeps fixed (ints, categoricals, held floats), never the probed ones: a
        schedule reads its learning rates from the optimizer's groups."""
        return None

    def loss_fn(self, apply: Any, batch: Any, hypers: Mapping[str, Any]) -> torch.Tensor | None:
        """``loss_fn(apply, batch, hypers)``: ``None`` (the default) means cross entropy on
        ``(inputs, targets)`` batches with :attr:`label_smoothing`. A float of ``[space]`` the
        loss reads reaches it as a 0-d tensor and must be used differentiably."""
        return None

    @property
    def has_loss_fn(self) -> bool:
        """Whether the recipe has its own ``loss_fn``."""
        return type(self).loss_fn is not BaseRecipe.loss_fn

    @property
    def has_scheduler(self) -> bool:
        """Whether the recipe has a ``make_scheduler``."""
        return type(self).make_scheduler is not BaseRecipe.make_scheduler

    def train_epoch(self, state: Any, epoch: int) -> None:
        """Train one epoch of ``state`` (a :class:`~optuna_ohgw.recipes.RecipeState`); the
        default loop uses exactly the pieces above. Override it for a loop of your own: the
        probe still comes from the shared pieces, and the self-check compares them."""
        from optuna_ohgw.recipes._loop import default_train_epoch

        default_train_epoch(self, state, epoch)

    def final_metrics(self, model: nn.Module) -> Mapping[str, float]:
        """Figures recorded when a trial ends unpruned: test accuracy on :attr:`test_data`
        when it is ``(inputs, targets)`` tensors, else none."""
        from optuna_ohgw.recipes._loop import test_accuracy

        return test_accuracy(self, model)

    def check(self) -> None:
        """Raise :class:`RecipeError` for settings out of range (called when loading)."""
        if self.scheduler_interval not in SCHEDULER_INTERVALS:
            raise RecipeError(
                f"{self.where}: scheduler_interval must be 'step' or 'epoch', got "
                f"{self.scheduler_interval!r}"
            )
        if self.clip_over not in CLIP_OVER:
            raise RecipeError(
                f"{self.where}: clip_over must be 'trained' or 'all', got {self.clip_over!r}"
            )
        for key in ("train_data", "val_data"):
            if getattr(self, key) is None:
                raise RecipeError(f"{self.where}: missing {key}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise RecipeError(f"{self.where}: batch_size must be an int >= 1")
