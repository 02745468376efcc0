"""``torch.optim.Adam`` and ``AdamW`` updates, differentiable in lr, weight decay and the betas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from optuna_ohgw.probes._unrolled_base import _BaseUnrolledOptimizer


def _safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    """``sqrt(v)`` with a zero (not NaN) gradient where ``v == 0``.

    A weight whose gradient is exactly zero (a padding embedding row, a dead unit) has ``v = 0``;
    ``sqrt``'s derivative there is infinite and ``inf * 0`` would make every hypergradient NaN.
    """
    positive = v > 0
    return torch.where(positive, torch.where(positive, v, torch.ones_like(v)).sqrt(), 0.0)


class UnrolledAdam(_BaseUnrolledOptimizer):
    """Adam as torch 2.x computes it (``torch/optim/adam.py``, ``_single_tensor_adam``).

    Per parameter at step ``t``: ``g <- -g`` if maximize; L2 weight decay ``g <- g + wd * w``
    (Adam) or decoupled ``w <- w * (1 - lr * wd)`` (AdamW); ``m <- m + (1 - b1) (g - m)``,
    ``v <- b2 v + (1 - b2) g^2`` (with AMSGrad, the running maximum of ``v`` is used below);
    ``w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.

    The betas need K=2: at the first step the bias corrections cancel them exactly,
    ``m / (1 - b1) = g`` and ``v / (1 - b2) = g^2``, so the update ``lr * g / (|g| + eps)`` does
    not depend on either beta. In floating point the autograd derivative of that cancellation is
    rounding noise (below 1e-12 of the lr gradient in the tests), not an exact zero; the finite
    difference through ``torch.optim.Adam`` is zero or noise of the same order.
    """

    roles = ("lr", "weight_decay", "beta1", "beta2")
    options: ClassVar[Mapping[str, Any]] = {
        "eps": 1e-8,
        "amsgrad": False,
        "maximize": False,
        "decoupled_weight_decay": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._steps: dict[int, int] = {}
        self._m: dict[int, torch.Tensor] = {}
        self._v: dict[int, torch.Tensor] = {}
        self._vmax: dict[int, torch.Tensor] = {}

    @classmethod
    def steps_needed(cls, tuned: frozenset[str], options: Mapping[str, Any]) -> int:
        return 2 if tuned & {"beta1", "beta2"} else 1

    def start_from(self, states: Sequence[Mapping[str, Any] | None]) -> None:
        """torch's ``step``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``)."""
        for i, state in enumerate(states):
            if not state:
                continue
            self._steps[i] = int(float(state["step"]))
            self._m[i], self._v[i] = state["exp_avg"], state["exp_avg_sq"]
            if self.opts["amsgrad"]:
                self._vmax[i] = state["max_exp_avg_sq"]

    def step(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor | None],
        values: Mapping[str, torch.Tensor],
    ) -> list[torch.Tensor]:
        lr, wd = values["lr"], values["weight_decay"]
        b1, b2 = values["beta1"], values["beta2"]
        use_wd = self.active(wd)
        decoupled = bool(self.opts["decoupled_weight_decay"])
        eps = float(self.opts["eps"])
        out = []
        for i, (w, g) in enumerate(zip(params, grads)):
            if g is None:
                out.append(w)
                continue
            if self.opts["maximize"]:
                g = -g
            if use_wd:
                if decoupled:
                    w = w * (1 - lr * wd)
                else:
                    g = g + wd * w
            t = self._steps.get(i, 0) + 1
            self._steps[i] = t
            m_prev = self._m.get(i)
            m = (1 - b1) * g if m_prev is None else m_prev + (1 - b1) * (g - m_prev)
            v_prev = self._v.get(i)
            v = (1 - b2) * (g * g) if v_prev is None else v_prev * b2 + (1 - b2) * (g * g)
            self._m[i], self._v[i] = m, v
            if self.opts["amsgrad"]:
                vmax_prev = self._vmax.get(i)
                v = v if vmax_prev is None else torch.maximum(vmax_prev, v)
                self._vmax[i] = v
            step_size = lr / (1 - b1**t)
            denom = _safe_sqrt(v) / (1 - b2**t).sqrt() + eps
            out.append(w - step_size * (m / denom))
        return out


class UnrolledAdamW(UnrolledAdam):
    """AdamW: Adam with decoupled weight decay (torch's ``AdamW`` is ``Adam`` with
    ``decoupled_weight_decay=True``)."""

    options: ClassVar[Mapping[str, Any]] = {
        "eps": 1e-8,
        "amsgrad": False,
        "maximize": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opts["decoupled_weight_decay"] = True
