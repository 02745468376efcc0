"""``torch.optim.SGD``'s update, differentiable in lr, weight decay and momentum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from optuna_ohgw.probes._unrolled_base import _BaseUnrolledOptimizer


class UnrolledSGD(_BaseUnrolledOptimizer):
    """SGD as torch 2.x computes it (``torch/optim/sgd.py``, ``_single_tensor_sgd``).

    ``g <- -g`` if maximize; ``g <- g + wd * w`` (L2, coupled); the momentum buffer starts at the
    first gradient, then ``b <- mu * b + (1 - dampening) * g``; ``g <- g + mu * b`` with
    Nesterov, else ``g <- b``; ``w <- w - lr * g``.

    Without Nesterov, momentum never enters the first step (the buffer is the gradient itself),
    so its gradient is exactly zero at K=1 and it needs K=2. With Nesterov it scales the first
    step (``g + mu * g``) and K=1 suffices.
    """

    roles = ("lr", "weight_decay", "momentum")
    options: ClassVar[Mapping[str, Any]] = {
        "dampening": 0.0,
        "nesterov": False,
        "maximize": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffers: dict[int, torch.Tensor] = {}

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        if options["nesterov"] and float(options["dampening"]) != 0.0:
            raise ValueError("Nesterov momentum requires zero dampening (as torch.optim.SGD).")

    @classmethod
    def steps_needed(cls, tuned: frozenset[str], options: Mapping[str, Any]) -> int:
        return 2 if "momentum" in tuned and not options["nesterov"] else 1

    def start_from(self, states: Sequence[Mapping[str, Any] | None]) -> None:
        """torch's ``momentum_buffer`` (``None`` or absent: the first step starts it)."""
        for i, state in enumerate(states):
            buf = (state or {}).get("momentum_buffer")
            if buf is not None:
                self._buffers[i] = buf

    def step(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor | None],
        values: Mapping[str, torch.Tensor],
    ) -> list[torch.Tensor]:
        lr, wd, mu = values["lr"], values["weight_decay"], values["momentum"]
        use_wd, use_mu = self.active(wd), self.active(mu)
        damp = float(self.opts["dampening"])
        out = []
        for i, (w, g) in enumerate(zip(params, grads)):
            if g is None:
                out.append(w)
                continue
            if self.opts["maximize"]:
                g = -g
            if use_wd:
                g = g + wd * w
            if use_mu:
                buf = self._buffers.get(i)
                if buf is None:
                    buf = g
                elif damp != 0.0:
                    buf = mu * buf + (1.0 - damp) * g
                else:
                    buf = mu * buf + g
                self._buffers[i] = buf
                g = g + mu * buf if self.opts["nesterov"] else buf
            out.append(w - lr * g)
        return out
