"""Where the look-ahead's batches come from, and how they reach the probe's device.

A source is turned into ``draw(generator) -> batch``, and every draw takes its randomness from the
probe's seeded generator only, so the same seed gives the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

BatchSource = Any
"""Tensors (a tuple/list, or a dict, of equally long tensors), a ``Dataset``, a ``DataLoader``
or a callable ``generator -> batch``."""

Draw = Callable[[torch.Generator], Any]

_PLAIN = (int, float, bool, str, bytes, type(None))


def make_draw(
    source: BatchSource, batch_size: int | None, default: int, what: str
) -> tuple[Draw, int | None]:
    """``(draw, batch size)`` for ``source``; ``ValueError`` for a source the probe cannot read.

    Tensors, a ``Dataset`` and a ``DataLoader``'s dataset are sampled without replacement with
    ``torch.randperm(n, generator=generator)`` (``batch_size`` rows, else ``default``); a
    ``DataLoader`` contributes its dataset, its ``collate_fn`` and (unless ``batch_size`` is
    given) its batch size, never its own sampler, shuffling or workers. A callable receives the
    generator and must draw from it alone.
    """
    if isinstance(source, DataLoader):
        dataset, collate = source.dataset, source.collate_fn
        size = batch_size or source.batch_size
        if size is None:
            raise ValueError(
                f"{what}: the DataLoader has batch_size=None; pass batch_size= to the probe."
            )
        return _dataset_draw(dataset, collate, size, what), size
    if isinstance(source, Dataset):
        size = batch_size or default
        return _dataset_draw(source, default_collate, size, what), size
    if isinstance(source, (tuple, list, Mapping)) and _all_tensors(source):
        size = batch_size or default
        return _tensor_draw(source, size, what), size
    if callable(source):
        return source, batch_size
    raise ValueError(
        f"{what} is a {type(source).__name__}; pass tensors (a tuple or dict of tensors with one "
        "row per example), a torch Dataset, a DataLoader or a callable generator -> batch."
    )


def _all_tensors(source: Sequence[Any] | Mapping[str, Any]) -> bool:
    values = list(source.values()) if isinstance(source, Mapping) else list(source)
    return bool(values) and all(isinstance(v, torch.Tensor) for v in values)


def _tensor_draw(
    source: Sequence[torch.Tensor] | Mapping[str, torch.Tensor], size: int, what: str
) -> Draw:
    values = list(source.values()) if isinstance(source, Mapping) else list(source)
    lengths = {len(v) for v in values}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(
            f"{what}: the tensors need the same, non-zero length; got {sorted(lengths)}."
        )
    (n,) = lengths

    def draw(generator: torch.Generator) -> Any:
        idx = torch.randperm(n, generator=generator)[:size]
        picked = [v[idx.to(v.device)] for v in values]
        if isinstance(source, Mapping):
            return dict(zip(source.keys(), picked))
        return type(source)(picked) if isinstance(source, list) else tuple(picked)

    return draw


def _dataset_draw(
    dataset: Dataset, collate: Callable[[list[Any]], Any], size: int, what: str
) -> Draw:
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        raise ValueError(
            f"{what}: an IterableDataset (or a Dataset without __len__) cannot be sampled "
            "reproducibly; pass a callable generator -> batch instead."
        )
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError(f"{what}: the dataset is empty.")
    check_movable(collate([dataset[0]]), what)

    def draw(generator: torch.Generator) -> Any:
        idx = torch.randperm(n, generator=generator)[:size].tolist()
        return collate([dataset[i] for i in idx])

    return draw


def check_movable(batch: Any, what: str) -> None:
    """Raise ``TypeError`` if :func:`move` cannot move ``batch``."""
    move(batch, None, None, what)


def move(batch: Any, device: torch.device | None, dtype: torch.dtype | None, what: str) -> Any:
    """``batch`` with every tensor on ``device`` and every floating-point tensor in ``dtype``.

    Tensors may be nested in dicts, lists and tuples (named tuples keep their type); numbers,
    strings and ``None`` pass unchanged. Anything else (a NumPy array, a custom object) is a
    ``TypeError`` naming it.
    """
    if isinstance(batch, torch.Tensor):
        if device is None:
            return batch
        float_dtype = dtype if batch.is_floating_point() and dtype is not None else batch.dtype
        return batch.to(device=device, dtype=float_dtype)
    if isinstance(batch, Mapping):
        return {k: move(v, device, dtype, what) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move(v, device, dtype, what) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(move(v, device, dtype, what) for v in batch)
    if isinstance(batch, _PLAIN):
        return batch
    raise TypeError(
        f"{what}: a batch holds a {type(batch).__module__}.{type(batch).__qualname__}, which the "
        "probe cannot move to its device; batches must be tensors, or dicts/lists/tuples of "
        "tensors (numbers and strings pass as they are). Convert it, e.g. with torch.as_tensor."
    )
