"""The update-rule protocol of the look-ahead: one ``torch.optim`` step, differentiably."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch


class _BaseUnrolledOptimizer(abc.ABC):
    """A ``torch.optim`` update rule written out-of-place, so autograd differentiates it.

    A fresh instance carries the optimizer state (momentum buffers, moments, step counts) through
    one look-ahead, exactly as the real optimizer would from a fresh start. A parameter whose
    gradient is ``None`` (frozen, or unused in the forward pass) is left unchanged and its state
    does not advance, as in ``torch.optim``.

    Args:
        hypers: The role values as 0-d tensors (tuned ones require grad).
        options: The optimizer's non-role constructor options (``nesterov``, ``eps``, ...),
            complete: :attr:`options` with the user's values applied.
        tuned: The roles being differentiated: an optimizer applies a term that torch skips at
            a zero value (``weight_decay != 0``) whenever its role is tuned.
    """

    roles: ClassVar[tuple[str, ...]]
    """The hyperparameter roles this rule reads from ``hypers``."""
    options: ClassVar[Mapping[str, Any]]
    """The other constructor options it honours, with torch's defaults."""
    ignored: ClassVar[tuple[str, ...]] = ("foreach", "fused", "differentiable", "capturable")
    """Constructor options that choose an implementation, not the update; accepted and unused."""

    def __init__(
        self,
        hypers: Mapping[str, torch.Tensor],
        options: Mapping[str, Any],
        tuned: frozenset[str],
    ) -> None:
        self.hypers = hypers
        self.opts = dict(options)
        self.tuned = tuned
        self.check_options(self.opts)

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` for option values the rule (or torch) does not accept."""
        return None

    @classmethod
    def steps_needed(cls, tuned: frozenset[str], options: Mapping[str, Any]) -> int:
        """The fewest look-ahead steps after which every tuned role has a gradient."""
        return 1

    def active(self, role: str) -> bool:
        """Whether the term of ``role`` is applied (tuned, or a non-zero fixed value)."""
        return role in self.tuned or float(self.hypers[role]) != 0.0

    @abc.abstractmethod
    def step(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor | None],
        lr: torch.Tensor,
    ) -> list[torch.Tensor]:
        """The parameters after one step at learning rate ``lr`` (the base lr times any
        warm-up factor)."""
