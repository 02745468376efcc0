"""``LookaheadProbe.check``: the probe against the real training loop it stands for.

It must pass on every configuration the probe supports (no false alarms: each optimizer case of
``test_probe_optimizers.py`` and each training setup of ``test_probe_training_setup.py``) and
fail, with one line naming both numbers, on what no rule of the probe names: a stop-gradient in
the loss and a custom autograd layer whose backward is not differentiable as written.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from optuna_ohgw.augmentations import GaussianNoise
from optuna_ohgw.probes import LookaheadProbe, ProbeCheck, _check
from tests import test_probe_optimizers as optimizers
from tests import test_probe_training_setup as setup
from tests.test_probe_optimizers import _one_thread  # noqa: F401 (fixture: one thread)

SEED = 3


@pytest.mark.parametrize("case", list(optimizers.CASES))
def test_no_false_alarm_on_any_optimizer_case(case: str) -> None:
    optimizer, options, optimizer_values = optimizers.CASES[case]
    values = {**optimizer_values, **optimizers.COMMON}
    batches, val = optimizers._data()
    for batch_norm in (False, True):
        for k in (1, 2):
            probe = LookaheadProbe(
                optimizers._mlp(batch_norm),
                optimizers._Fixed(batches[:k]),
                optimizers._Fixed([val]),
                {name: name for name in values},
                optimizer=optimizer,
                optimizer_kwargs=options,
                k=k,
                augmentation=GaussianNoise(),
            )
            check = probe.check(values, seed=SEED)
            assert check.ok, (batch_norm, k, check.message)
            assert check.message == ""
            assert check.real_loss == pytest.approx(check.probe_loss, rel=1e-10)
            assert check.directional == pytest.approx(check.finite_difference, rel=1e-6)


@pytest.mark.parametrize("name", [*setup.CASES, "one-cycle"])
def test_no_false_alarm_on_any_training_setup(name: str) -> None:
    case = setup.CASES.get(name) or {
        "optimizer": setup.adamw,
        "values": {"lr": 0.01, "wd": 0.1, "b1": 0.8},
        "scheduler": setup.one_cycle,
    }
    batches, val = optimizers._data()
    probe = setup.make_probe(case, 2, batches, val)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one-cycle: beta1 is overridden (tested elsewhere)
        check = probe.check(case["values"], seed=SEED)
    assert check.ok, check.message
    assert set(check.direction) == set(case["values"])
    assert sum(d * d for d in check.direction.values()) == pytest.approx(1.0)
    assert check.seconds > 0


def _mlp_data() -> tuple[nn.Module, Any, Any]:
    batches, val = optimizers._data()
    return optimizers._mlp(False), optimizers._Fixed(batches), optimizers._Fixed([val])


def _stop_gradient_loss(apply: Callable[..., Any], batch: Any, hypers: Any) -> torch.Tensor:
    """Cross entropy plus a consistency term against the model's own detached prediction
    (mean-teacher style): zero, with a zero gradient, in real training; its derivative through
    the look-ahead's second-order terms is not."""
    logits = apply(batch[0])
    p = logits.softmax(-1)
    return F.cross_entropy(logits, batch[1]) + 5.0 * (p - p.detach()).pow(2).sum(-1).mean()


def _assert_caught(check: ProbeCheck, what: str) -> None:
    assert not check.ok
    assert "\n" not in check.message
    assert what in check.message
    assert f"{check.directional:.6g}" in check.message
    assert f"{check.finite_difference:.6g}" in check.message


def test_catches_a_stop_gradient_in_the_loss() -> None:
    model, train, val = _mlp_data()
    values = {"lr": 0.3, "wd": 0.02}
    probe = LookaheadProbe(
        model,
        train,
        val,
        {"lr": "lr", "wd": "weight_decay"},
        optimizer=torch.optim.SGD,
        loss_fn=_stop_gradient_loss,
        val_loss_fn=lambda apply, b: F.cross_entropy(apply(b[0]), b[1]),
        k=2,
    )
    check = probe.check(values, seed=SEED)
    _assert_caught(check, "stop-gradient")
    assert check.real_loss == pytest.approx(check.probe_loss, rel=1e-10)  # the loss agrees


class _Tanh(torch.autograd.Function):
    """tanh with a hand-written backward that keeps its output as a constant: right first
    derivatives, so training is unaffected, but no second derivative through it."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = x.tanh()
        ctx.y = y.detach()
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad * (1 - ctx.y**2)


class _CustomTanh(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Tanh.apply(x)


def test_catches_a_custom_layer() -> None:
    _, train, val = _mlp_data()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), _CustomTanh(), nn.Linear(8, 3)).double()
        model[0].weight.data.mul_(3.0)  # into tanh's curved part
    probe = LookaheadProbe(
        model,
        train,
        val,
        {"lr": "lr", "wd": "weight_decay", "mu": "momentum"},
        optimizer=torch.optim.SGD,
        k=2,
    )
    _assert_caught(probe.check({"lr": 0.3, "wd": 0.02, "mu": 0.8}, seed=SEED), "custom")


def test_float32_model_is_checked_in_float64_and_left_alone() -> None:
    batches, val = optimizers._data()
    model = optimizers._mlp(True).float()
    probe = LookaheadProbe(
        model,
        (torch.cat([b[0] for b in batches]).float(), torch.cat([b[1] for b in batches])),
        (val[0].float(), val[1]),
        {"lr": "lr", "wd": "weight_decay", "b1": "beta1"},
        optimizer=setup.adamw,
        batch_size=16,
        clip_grad_norm=0.05,
    )
    before = {n: p.clone() for n, p in model.state_dict().items()}
    check = probe.check({"lr": 0.01, "wd": 0.1, "b1": 0.8}, seed=1)
    assert check.ok, check.message
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())
    # The check's loss is the float64 probe's; a float32 call agrees to float32 precision.
    assert probe({"lr": 0.01, "wd": 0.1, "b1": 0.8}, seed=1).value == pytest.approx(
        check.probe_loss, rel=1e-5
    )


def test_check_needs_every_value() -> None:
    model, train, val = _mlp_data()
    probe = LookaheadProbe(model, train, val, {"lr": "lr"}, optimizer=torch.optim.SGD)
    with pytest.raises(KeyError, match="needs values"):
        probe.check({})


def test_no_false_alarm_with_dropout_a_loss_role_warmup_factors_and_two_pairs() -> None:
    """Dropout masks, a ``loss`` hyperparameter, ``lr_factors`` and ``n_pairs=2``: the real loop
    replays the probe's draws, masks and per-step learning rates."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (128,), generator=gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(6, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 3)
        ).double()

    def loss_fn(apply: Callable[..., Any], batch: Any, hypers: Any) -> torch.Tensor:
        logits = apply(batch[0])
        return F.cross_entropy(logits, batch[1]) + hypers["z"] * logits.pow(2).mean()

    probe = LookaheadProbe(
        model,
        (x[:96], y[:96]),
        (x[96:], y[96:]),
        {"lr": "lr", "mu": "momentum", "z": "loss"},
        optimizer=torch.optim.SGD,
        loss_fn=loss_fn,
        lr_factors=[0.5, 1.0],
        n_pairs=2,
        batch_size=16,
    )
    check = probe.check({"lr": 0.3, "mu": 0.8, "z": 0.05}, seed=2)
    assert check.ok, check.message
    assert check.real_loss == pytest.approx(check.probe_loss, rel=1e-10)


@pytest.mark.parametrize("scheduler", [None, setup.warmup])
def test_class_form_with_fixed_betas_in_optimizer_kwargs(scheduler: Any) -> None:
    """The real optimizer the class form builds takes the fixed values from optimizer_kwargs."""
    model, train, val = _mlp_data()
    probe = LookaheadProbe(
        model,
        train,
        val,
        {"lr": "lr", "wd": "weight_decay"},
        optimizer=torch.optim.Adam,
        optimizer_kwargs={"betas": (0.8, 0.95), "eps": 1e-3},
        scheduler=scheduler,
        k=2,
    )
    check = probe.check({"lr": 0.01, "wd": 0.05}, seed=SEED)
    assert check.ok, check.message


class _ScaleCutForX(torch.autograd.Function):
    """``x * w`` whose backward to ``x`` uses ``w`` as a constant: first derivatives right, so
    training is unchanged, but the look-ahead's derivative through ``w`` is lost."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        x, w = ctx.saved_tensors
        return grad * w.detach(), (grad * x).sum().reshape(w.shape)


def test_catches_a_wrong_derivative_of_a_parameter_that_barely_matters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The user's penalty weight ``pen`` enters through a layer whose backward cuts its
    second-order path: the probe's d/d pen is 0. Its influence is about 1e-6 of the lr's, so the
    random direction's derivative agrees within 6e-6; the weighted direction does not."""
    model, train, val = _mlp_data()

    def loss_fn(apply: Callable[..., Any], batch: Any, hypers: Any) -> torch.Tensor:
        logits = apply(batch[0])
        penalty = logits.pow(2).mean()
        return F.cross_entropy(logits, batch[1]) + _ScaleCutForX.apply(penalty, hypers["pen"])

    values = {"lr": 0.3, "wd": 0.02, "pen": 1e-6}
    probe = LookaheadProbe(
        model,
        train,
        val,
        {"lr": "lr", "wd": "weight_decay", "pen": "loss"},
        optimizer=torch.optim.SGD,
        loss_fn=loss_fn,
        val_loss_fn=lambda apply, b: F.cross_entropy(apply(b[0]), b[1]),
        k=2,
    )
    result = probe(values, seed=SEED)
    assert result.grads["pen"] == 0.0  # the probe sees no derivative for pen
    with monkeypatch.context() as m:  # the weighted direction made empty: the random one alone
        m.setattr(_check, "BALANCE_FLOOR", math.inf)
        assert probe.check(values, seed=SEED).ok
    check = probe.check(values, seed=SEED)
    _assert_caught(check, "custom")
    assert "every parameter weighted alike" in check.message
    assert check.real_loss == pytest.approx(check.probe_loss, rel=1e-10)
