"""The self-check's three verdicts (issue 24): ``ok``, ``mismatch`` only on consistent evidence,
``inconclusive`` where the look-ahead loss is not smooth at the finite differences' scale.

First on functions whose answer is known (``_check.compare`` with a hand-made "real loop"), then
on real models: a pre-LN transformer with a tuned penalty weight (smooth: must pass), and what
must stay caught (a straight-through estimator, BatchNorm's eval-mode loss at K=2).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from optuna_ohgw.probes import LookaheadProbe, _check
from tests import test_probe_optimizers as optimizers
from tests.test_probe_optimizers import _one_thread  # noqa: F401 (fixture: one thread)

POINT = {"a": 0.3, "b": 1.7}


def _smooth(p: Mapping[str, float]) -> float:
    return math.sin(3 * p["a"]) + p["a"] * p["b"] ** 2 + 2.0


def _smooth_grad(p: Mapping[str, float]) -> dict[str, float]:
    return {"a": 3 * math.cos(3 * p["a"]) + p["b"] ** 2, "b": 2 * p["a"] * p["b"]}


def _compare(real: Callable[[Mapping[str, float]], float], grads: Mapping[str, float]) -> Any:
    return _check.compare(
        lambda: (real(POINT), dict(grads)),
        real,
        POINT,
        k=2,
        dtype=torch.float64,
        seed=0,
        start=time.perf_counter(),
    )


def test_a_smooth_function_with_its_gradient_is_ok() -> None:
    check = _compare(_smooth, _smooth_grad(POINT))
    assert check.verdict == "ok" and check.ok and check.message == ""
    assert check.directional == pytest.approx(check.finite_difference, rel=1e-6)


def test_a_gradient_off_by_a_thousandth_is_a_mismatch() -> None:
    grads = _smooth_grad(POINT)
    grads = {"a": grads["a"] * 1.001, "b": grads["b"]}
    check = _compare(_smooth, grads)
    assert check.verdict == "mismatch" and not check.ok
    assert "consistently" in check.message and "\n" not in check.message


def test_a_jump_just_beside_the_point_does_not_raise_an_alarm() -> None:
    """A jump of 1e-3 at a relative distance of 3e-7 (inside the first two steps' intervals,
    outside the finer ones): the ladder finds the smooth piece the probe describes."""

    def real(p: Mapping[str, float]) -> float:
        return _smooth(p) + (1e-3 if p["a"] > POINT["a"] * (1 + 3e-7) else 0.0)

    check = _compare(real, _smooth_grad(POINT))
    assert check.verdict == "ok", check.message


def test_jumps_at_every_scale_are_inconclusive_and_named() -> None:
    """A staircase whose steps are finer than every step of the ladder: no finite difference
    converges. The verdict says so, names the jump, and does not blame the probe."""

    def real(p: Mapping[str, float]) -> float:
        return _smooth(p) + 1e-6 * math.floor(p["a"] * 1e10)

    check = _compare(real, _smooth_grad(POINT))
    assert check.verdict == "inconclusive" and not check.ok
    assert "jumps" in check.message and "smooth piece" in check.message
    assert "stop-gradient" not in check.message and "\n" not in check.message


class _PreLN(nn.Module):
    """A tiny pre-LN transformer classifier (GELU, learned positions)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 8)
        self.pos = nn.Parameter(torch.randn(2, 8) * 0.1)
        self.block = nn.TransformerEncoderLayer(
            8, 2, 16, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.embed(x.view(-1, 2, 3)) + self.pos)
        return self.head(self.norm(h).mean(1))


def _hf_adamw(model: nn.Module, h: Mapping[str, float]) -> torch.optim.Optimizer:
    """Hugging Face's grouping: no decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": h["wd"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=h["lr"],
        betas=(h["b1"], 0.999),
    )


def _penalized(apply: Callable[..., Any], batch: Any, hypers: Any) -> torch.Tensor:
    logits = apply(batch[0])
    return F.cross_entropy(logits, batch[1]) + hypers["pen"] * logits.pow(2).mean()


@pytest.mark.parametrize("k", [1, 2])
def test_a_pre_ln_transformer_with_a_tuned_penalty_passes(k: int) -> None:
    """Issue 24's false alarm on a smooth model: the fixed step of the old check reported
    relative errors of 3e-4 and 4e-3; the ladder agrees."""
    batches, val = optimizers._data()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _PreLN().double()
    probe = LookaheadProbe(
        model,
        optimizers._Fixed(batches[:k]),
        optimizers._Fixed([val]),
        {"lr": "lr", "wd": "weight_decay", "b1": "beta1", "pen": "loss"},
        optimizer=_hf_adamw,
        loss_fn=_penalized,
        val_loss_fn=lambda apply, b: F.cross_entropy(apply(b[0]), b[1]),
        clip_grad_norm=1.0,
        k=k,
    )
    check = probe.check({"lr": 3e-3, "wd": 0.05, "b1": 0.9, "pen": 0.01}, seed=1)
    assert check.verdict == "ok", check.message


class _RoundSTE(nn.Module):
    """Rounding with a straight-through estimator: the forward rounds, the backward passes the
    gradient through as if it did not. Training runs; the look-ahead's derivative through the
    rounding is the estimator's, not the real loop's (which is flat between the steps)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (torch.round(x * 4) / 4 - x).detach()


def test_a_straight_through_estimator_is_caught() -> None:
    batches, val = optimizers._data()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), _RoundSTE(), nn.Linear(8, 3)).double()
    probe = LookaheadProbe(
        model,
        optimizers._Fixed(batches),
        optimizers._Fixed([val]),
        {"lr": "lr", "wd": "weight_decay"},
        optimizer=torch.optim.SGD,
        k=2,
    )
    check = probe.check({"lr": 0.3, "wd": 0.02}, seed=1)
    assert check.verdict == "mismatch", check.message


def test_batch_norm_in_eval_mode_at_k2_is_caught() -> None:
    """``val_mode="eval"`` with BatchNorm and K=2: the held-out loss uses running statistics
    that torch updates outside autograd, so the probe's derivative leaves out how they depend on
    the hyperparameters (documented); the check must see it."""
    batches, val = optimizers._data()
    probe = LookaheadProbe(
        optimizers._mlp(True),
        optimizers._Fixed(batches),
        optimizers._Fixed([val]),
        {"lr": "lr", "wd": "weight_decay", "mu": "momentum"},
        optimizer=torch.optim.SGD,
        val_mode="eval",
        k=2,
    )
    check = probe.check({"lr": 0.3, "wd": 0.02, "mu": 0.8}, seed=1)
    assert check.verdict == "mismatch", check.message
