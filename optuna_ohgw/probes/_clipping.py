"""Gradient clipping as ``torch.nn.utils`` computes it, out of place for autograd."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

import torch


@dataclasses.dataclass(frozen=True)
class Clipping:
    """What the training loop does to the gradients between ``backward()`` and ``step()``.

    Attributes:
        max_norm: ``clip_grad_norm_(params, max_norm, norm_type)``, or ``None``.
        norm_type: The norm's order (``math.inf`` for the largest magnitude).
        max_value: ``clip_grad_value_(params, max_value)``, or ``None``.
    """

    max_norm: float | None = None
    norm_type: float = 2.0
    max_value: float | None = None

    def __post_init__(self) -> None:
        if self.max_norm is not None and self.max_value is not None:
            raise ValueError("Pass clip_grad_norm= or clip_grad_value=, not both.")
        for name, value in (
            ("clip_grad_norm", self.max_norm),
            ("clip_grad_value", self.max_value),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}.")

    @property
    def active(self) -> bool:
        return self.max_norm is not None or self.max_value is not None

    def __call__(self, grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """The clipped gradients (``None`` stays ``None``: torch skips parameters without one).

        Norm clipping multiplies every gradient by ``min(max_norm / (total + 1e-6), 1)``, where
        ``total`` is the norm of the per-tensor norms, as ``torch.nn.utils.clip_grad_norm_``."""
        out = list(grads)
        present = [g for g in out if g is not None]
        if self.max_norm is not None and present:
            norms = [torch.linalg.vector_norm(g, self.norm_type) for g in present]
            total = torch.linalg.vector_norm(torch.stack(norms), self.norm_type)
            coef = torch.clamp(self.max_norm / (total + 1e-6), max=1.0)
            out = [None if g is None else g * coef for g in out]
        if self.max_value is not None:
            v = self.max_value
            out = [None if g is None else g.clamp(-v, v) for g in out]
        return out

    def apply_(self, parameters: Iterable[torch.Tensor]) -> None:
        """Clip ``.grad`` in place with torch's own functions (the real training loop)."""
        params = list(parameters)
        if self.max_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.max_norm, norm_type=self.norm_type)
        if self.max_value is not None:
            torch.nn.utils.clip_grad_value_(params, self.max_value)


def norm_order(norm_type: float | str) -> float:
    """``norm_type`` as a float (``"inf"`` accepted, as torch does)."""
    value = float(norm_type)
    if not (value > 0 or math.isinf(value)):
        raise ValueError(f"norm_type must be positive or inf, got {norm_type!r}.")
    return value
