"""The update-rule protocol of the look-ahead: one ``torch.optim`` step, differentiably."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch


class _BaseUnrolledOptimizer(abc.ABC):
    """A ``torch.optim`` update rule written out-of-place, so autograd differentiates it.

    A fresh instance carries the optimizer state (momentum buffers, moments, step counts) through
    one look-ahead of one parameter group, exactly as the real optimizer would from a fresh
    start. A parameter whose gradient is ``None`` (frozen, or unused in the forward pass) is left
    unchanged and its state does not advance, as in ``torch.optim``.

    Args:
        options: The group's non-role options (``nesterov``, ``eps``, ...), complete:
            :attr:`options` with the user's values applied.
    """

    roles: ClassVar[tuple[str, ...]]
    """The hyperparameter roles this rule reads from ``hypers``."""
    options: ClassVar[Mapping[str, Any]]
    """The other constructor options it honours, with torch's defaults."""
    ignored: ClassVar[tuple[str, ...]] = ("foreach", "fused", "differentiable", "capturable")
    """Constructor options that choose an implementation, not the update; accepted and unused."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.opts = dict(options)
        self.check_options(self.opts)

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` for option values the rule (or torch) does not accept."""
        return None

    @classmethod
    def steps_needed(cls, tuned: frozenset[str], options: Mapping[str, Any]) -> int:
        """The fewest look-ahead steps after which every tuned role has a gradient."""
        return 1

    def start_from(self, states: Sequence[Mapping[str, Any] | None]) -> None:
        """Continue from ``torch.optim``'s per-parameter state (a resumed trial's moments, step
        counts, momentum buffers), one entry per parameter of :meth:`step` in order, ``None``
        or empty for a parameter the optimizer has not stepped. Its tensors are constants of
        the look-ahead, already in the weights' dtype and device. A rule that cannot continue
        from a state raises ``ValueError``, never starts silently from zero."""
        if any(states):
            raise ValueError(
                f"{type(self).__name__} cannot start from an optimizer's state; the look-ahead "
                "would unroll it from zero moments while the trial continues from its own."
            )

    @staticmethod
    def active(value: torch.Tensor) -> bool:
        """Whether a term that torch skips at a zero value (``weight_decay != 0``) is applied:
        when the value is non-zero, or depends on a hyperparameter being differentiated."""
        return value.requires_grad or float(value) != 0.0

    @abc.abstractmethod
    def step(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor | None],
        values: Mapping[str, torch.Tensor],
    ) -> list[torch.Tensor]:
        """The parameters after one step with this step's role values (``lr`` included, as a
        scheduler or warm-up factor set it), 0-d tensors."""
