"""A recipe's data: resolved once per process, ordered per epoch by the trial's seed."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from optuna_ohgw.recipes._base import BaseRecipe, RecipeError


def _is_factory(value: Any) -> bool:
    if isinstance(value, (Dataset, DataLoader, torch.Tensor)) or not callable(value):
        return False
    try:
        inspect.signature(value).bind()
    except (TypeError, ValueError):
        return False
    return True


def recipe_data(recipe: BaseRecipe, key: str) -> Any:
    """``recipe.<key>`` (``train_data``, ``val_data``, ``test_data``), a function of no
    arguments called once and its result kept on the recipe."""
    cache = recipe.__dict__.setdefault("_ohgw_data", {})
    if key not in cache:
        value = getattr(recipe, key)
        if _is_factory(value):
            try:
                value = value()
            except Exception as err:  # noqa: BLE001 - the user's loader, any failure
                raise RecipeError(
                    f"{recipe.where}: {key}() raised {type(err).__name__}: {err}"
                ) from None
        cache[key] = value
    return cache[key]


def on_device(recipe: BaseRecipe, key: str, device: torch.device) -> Any:
    """:func:`recipe_data`, with tensor data moved to ``device`` once (other forms as they are:
    their batches are moved as they are drawn)."""
    cache = recipe.__dict__.setdefault("_ohgw_device_data", {})
    if (key, str(device)) not in cache:
        value = recipe_data(recipe, key)
        if (
            isinstance(value, (tuple, list))
            and value
            and all(isinstance(v, torch.Tensor) for v in value)
        ):
            value = type(value)(v.to(device) for v in value)
        elif isinstance(value, Mapping) and all(
            isinstance(v, torch.Tensor) for v in value.values()
        ):
            value = {k: v.to(device) for k, v in value.items()}
        cache[(key, str(device))] = value
    return cache[(key, str(device))]


def epoch_batches(
    source: Any, batch_size: int, generator: torch.Generator, where: str
) -> Iterator[Any]:
    """One epoch of ``source`` in the order ``torch.randperm(n, generator=generator)``, in
    batches of ``batch_size`` rows (a ``DataLoader``: its dataset and collate function)."""
    if isinstance(source, DataLoader):
        source, collate = source.dataset, source.collate_fn
    else:
        collate = default_collate
    if isinstance(source, Dataset) and hasattr(source, "__len__"):
        order = torch.randperm(len(source), generator=generator)  # type: ignore[arg-type]
        for idx in order.split(batch_size):
            yield collate([source[i] for i in idx.tolist()])
        return
    if isinstance(source, Mapping):
        n = len(next(iter(source.values())))
        order = torch.randperm(n, generator=generator)
        for idx in order.split(batch_size):
            yield {k: v[idx.to(v.device)] for k, v in source.items()}
        return
    if isinstance(source, (tuple, list)) and all(isinstance(v, torch.Tensor) for v in source):
        order = torch.randperm(len(source[0]), generator=generator)
        for idx in order.split(batch_size):
            yield tuple(v[idx.to(v.device)] for v in source)
        return
    raise RecipeError(
        f"{where}: the default epoch loop reads train_data as tensors, a Dataset or a "
        f"DataLoader, not a {type(source).__name__}; give one of those or your own train_epoch"
    )
