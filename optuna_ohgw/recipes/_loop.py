"""The default epoch loop: the steps the probe unrolls, taken for a whole epoch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from optuna_ohgw.probes._data import move
from optuna_ohgw.recipes._data import epoch_batches, on_device
from optuna_ohgw.recipes._state import RecipeState
from optuna_ohgw.seeding import trial_seed

if TYPE_CHECKING:  # _base calls this loop at run time, so it is imported for types only
    from optuna_ohgw.recipes._base import BaseRecipe


def role_value(state: RecipeState, role: str, default: float) -> float:
    """The value of the probed float with ``role`` (``augment``, ``label_smoothing``)."""
    for name, r in state.roles.items():
        if r == role:
            return float(state.hyperparameters[name])
    return default


def loss_hypers(
    held: Mapping[str, Any], values: Mapping[str, Any], roles: Mapping[str, str], like: Any
) -> dict[str, Any]:
    """What ``loss_fn`` receives: the held values, and each ``loss`` float as a 0-d tensor."""
    out = dict(held)
    for name, role in roles.items():
        if role == "loss":
            out[name] = torch.tensor(float(values[name]), dtype=like.dtype, device=like.device)
    return out


def clipped_parameters(recipe: BaseRecipe, model: nn.Module, optimizer: Any) -> list[Any]:
    """The parameters the clipping covers: the trained ones, or every one."""
    if recipe.clip_over == "all":
        return list(model.parameters())
    return [p for group in optimizer.param_groups for p in group["params"]]


def clip_(recipe: BaseRecipe, params: list[Any]) -> None:
    if recipe.clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, recipe.clip_grad_norm, norm_type=recipe.norm_type)
    if recipe.clip_grad_value is not None:
        torch.nn.utils.clip_grad_value_(params, recipe.clip_grad_value)


def default_train_epoch(recipe: BaseRecipe, state: RecipeState, epoch: int) -> None:
    """One pass over ``train_data`` in a seeded order: augmentation, the loss (``loss_fn`` or
    label-smoothed cross entropy), backward, clipping, the optimizer step, and the scheduler
    after every step (or after the epoch, ``scheduler_interval = "epoch"``)."""
    device = state.device
    source = on_device(recipe, "train_data", device)
    gen = torch.Generator().manual_seed(trial_seed(state.seed, epoch))
    magnitude = role_value(state, "augment", float(recipe.augment))
    smoothing = role_value(state, "label_smoothing", float(recipe.label_smoothing))
    trained = clipped_parameters(recipe, state.model, state.optimizer)
    first = next(state.model.parameters())
    hypers = loss_hypers(state.held(), state.hyperparameters, state.roles, first)
    per_step = state.scheduler is not None and recipe.scheduler_interval == "step"
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.default_generator.manual_seed(trial_seed(state.seed, epoch, 1))  # dropout
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(trial_seed(state.seed, epoch, 1))
        state.model.train()
        for batch in epoch_batches(source, state.batch_size, gen, recipe.where):
            batch = move(batch, device, None, "train_data")
            if recipe.augmentation is not None:
                x = recipe.augmentation(batch[0], magnitude, gen)
                batch = (x, *batch[1:])
            # Every gradient, not only the trained ones: a parameter no group trains would
            # otherwise pile up gradients across steps, in the norm clip_over='all' clips by.
            state.model.zero_grad(set_to_none=True)
            if recipe.has_loss_fn:
                loss = recipe.loss_fn(state.model, batch, hypers)
            else:
                loss = F.cross_entropy(state.model(batch[0]), batch[1], label_smoothing=smoothing)
            loss.backward()
            clip_(recipe, trained)
            state.optimizer.step()
            if per_step:
                state.scheduler.step()
            state.steps += 1
    if state.scheduler is not None and recipe.scheduler_interval == "epoch":
        state.scheduler.step()


@torch.no_grad()
def test_accuracy(recipe: BaseRecipe, model: nn.Module, chunk: int = 1000) -> dict[str, float]:
    """``{"test_accuracy": ...}`` on ``test_data`` given as ``(inputs, targets)`` tensors."""
    if recipe.test_data is None:
        return {}
    first = next(model.parameters())
    data = on_device(recipe, "test_data", first.device)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        return {}
    model.eval()
    x, y = data
    correct = sum(
        int((model(xb).argmax(-1) == yb).sum()) for xb, yb in zip(x.split(chunk), y.split(chunk))
    )
    return {"test_accuracy": correct / len(y)}
