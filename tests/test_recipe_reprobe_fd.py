"""The re-probe of a resumed trial is exact against finite differences of the recipe's own loop
continued from the trial's checkpoint.

A trial trains two epochs and is checkpointed (model, Adam moments or momentum buffers and step
counts, scheduler position). The re-probe (``RecipeProbe(resumed=state)``, what
``[ohgw] reprobe = true`` builds at every promotion) takes the hypergradient of K look-ahead
steps from there. The reference is the recipe's own loop resumed from that checkpoint, its
values set with ``set_hyperparameters`` (as the promotion does), fed the probe's K batches as one
epoch; its held-out loss is differentiated by central finite differences in float64. Before the
fix the re-probe read the schedule from step 0 and unrolled the optimizer from zero moments:
the last test shows that this reference sees the difference.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from optuna.distributions import FloatDistribution

from optuna_ohgw.recipes import BaseRecipe, RecipeProbe, make_state, plan_recipe
from tests.test_recipe_fd import (
    LOG,
    PROBE_SEED,
    B,
    K,
    PerEpochSchedule,
    TwoLearningRates,
    fed_probe_batches,
)

SEED, EPOCHS = 11, 2


def _warmup_cosine(step: int) -> float:
    warm, total = 3, 40
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))


class WarmupCosineTwoLr(TwoLearningRates):
    """AdamW with a learning rate per group, a per-step warm-up then cosine, clipping."""

    def make_scheduler(self, optimizer, hypers):  # type: ignore[no-untyped-def]
        return torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine)


class SequentialWarmupCosine(TwoLearningRates):
    """torch's chainable schedulers (``LinearLR`` then ``CosineAnnealingLR`` with a floor): a
    value that is not proportional to the base learning rate, so a resumed trial must take the
    schedule of its new values (``set_hyperparameters``), not rescale its current lr."""

    def make_scheduler(self, optimizer, hypers):  # type: ignore[no-untyped-def]
        lr_scheduler = torch.optim.lr_scheduler
        warm = lr_scheduler.LinearLR(optimizer, 0.1, 1.0, 3)
        cosine = lr_scheduler.CosineAnnealingLR(optimizer, 37, eta_min=1e-2)
        return lr_scheduler.SequentialLR(optimizer, [warm, cosine], [3])


class WarmupCosineBetas(WarmupCosineTwoLr):
    """Adam's betas tuned: their hypergradient runs through the resumed moments."""

    clip_grad_norm = None

    def make_optimizer(self, model, hypers):  # type: ignore[no-untyped-def]
        betas = (hypers["beta1"], hypers["beta2"])
        return torch.optim.AdamW(model.parameters(), lr=hypers["lr"], betas=betas)


CASES: dict[str, tuple[type[BaseRecipe], dict[str, Any], dict[str, float]]] = {
    "adamw-two-lr-warmup-cosine": (
        WarmupCosineTwoLr,
        {"lr_body": LOG, "lr_head": LOG},
        {"lr_body": 0.05, "lr_head": 0.02},
    ),
    "adamw-two-lr-sequential-lr": (
        SequentialWarmupCosine,
        {"lr_body": LOG, "lr_head": LOG},
        {"lr_body": 0.05, "lr_head": 0.02},
    ),
    "adamw-betas-warmup-cosine": (
        WarmupCosineBetas,
        {
            "lr": LOG,
            "beta1": FloatDistribution(0.5, 0.99),
            "beta2": FloatDistribution(0.9, 0.9999),
        },
        {"lr": 0.03, "beta1": 0.8, "beta2": 0.95},
    ),
    "sgd-momentum-per-epoch": (
        PerEpochSchedule,  # SGD with momentum; epoch 2's lr is 3x epoch 0's
        {"lr": LOG, "momentum": FloatDistribution(0.0, 0.95)},
        {"lr": 0.1, "momentum": 0.8},
    ),
}


def _checkpoint(recipe: BaseRecipe, plan: Any, hypers: dict[str, float]) -> dict[str, Any]:
    """The trial after ``EPOCHS`` epochs of its own loop, as a pause saves it."""
    state = make_state(recipe, plan, hypers, SEED)
    for epoch in range(EPOCHS):
        recipe.train_epoch(state, epoch)
    return copy.deepcopy(state.state_dict())


def _resumed(recipe: BaseRecipe, plan: Any, ckpt: dict[str, Any]) -> Any:
    state = make_state(recipe, plan, ckpt["hyperparameters"], SEED)
    state.load_state_dict(copy.deepcopy(ckpt))
    return state


def _loop_loss(recipe: BaseRecipe, plan: Any, ckpt: dict[str, Any], hypers: Any) -> float:
    """The recipe's loop resumed from ``ckpt`` at ``hypers`` for one epoch made of the probe's K
    batches; the held-out loss on the probe's held-out batch."""
    mine, val = fed_probe_batches(recipe, SEED, EPOCHS)
    state = _resumed(mine, plan, ckpt)
    steps = state.steps
    state.set_hyperparameters(hypers)  # as the promotion does after the re-probe
    mine.train_epoch(state, EPOCHS)
    assert state.steps == steps + K
    vx, vy = recipe.val_data
    with torch.no_grad():
        return float(F.cross_entropy(state.model(vx[val]), vy[val]))


def _fd(recipe: BaseRecipe, plan: Any, ckpt: dict[str, Any], point: dict[str, float]) -> dict:
    grads = {}
    for name, value in point.items():
        h = value * 1e-5
        up = _loop_loss(recipe, plan, ckpt, {**point, name: value + h})
        down = _loop_loss(recipe, plan, ckpt, {**point, name: value - h})
        grads[name] = (up - down) / (2 * h)
    return grads


def _setup(case: str) -> tuple[BaseRecipe, Any, dict[str, float], dict[str, Any], Any]:
    """The case's recipe, plan, point, checkpoint after ``EPOCHS`` and the state resumed."""
    kind, space, point = CASES[case]
    recipe = kind()
    plan = plan_recipe(recipe, space)
    ckpt = _checkpoint(recipe, plan, point)
    return recipe, plan, point, ckpt, _resumed(recipe, plan, ckpt)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


@pytest.mark.parametrize("case", list(CASES))
def test_reprobe_equals_finite_differences_of_the_resumed_loop(case: str) -> None:
    recipe, plan, point, ckpt, state = _setup(case)
    assert state.steps == EPOCHS * 4 and state.optimizer.state  # moments are not zero
    probe = RecipeProbe(recipe, plan, k=K, batch_size=B, resumed=state)
    expected = EPOCHS if recipe.scheduler_interval == "epoch" else EPOCHS * 4
    assert probe.scheduler_steps == expected
    result = probe(point, seed=PROBE_SEED)
    assert result.value == pytest.approx(_loop_loss(recipe, plan, ckpt, point), rel=1e-12)
    fd = _fd(recipe, plan, ckpt, point)
    for name in point:
        assert result.grads[name] == pytest.approx(fd[name], rel=1e-5, abs=1e-9), name
    # The trial's own state is untouched by the probe.
    again = _resumed(recipe, plan, ckpt)
    for p, q in zip(state.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("case", list(CASES))
def test_a_reprobe_from_step_zero_is_what_the_reference_catches(case: str) -> None:
    """The old re-probe (the resumed weights only: the schedule from step 0, fresh moments)."""
    recipe, plan, point, ckpt, state = _setup(case)
    old = RecipeProbe(recipe, plan, k=K, batch_size=B, model=state.model, context=state.held())
    result = old(point, seed=PROBE_SEED)
    fd = _fd(recipe, plan, ckpt, point)
    assert max(_rel(result.grads[n], fd[n]) for n in point) > 1e-2


def test_check_loads_the_resumed_optimizer_state() -> None:
    """``check`` compares the probe with the real optimizer continued from the same state."""
    recipe, plan, point, _, state = _setup("adamw-betas-warmup-cosine")
    checked = RecipeProbe(recipe, plan, k=K, batch_size=B, resumed=state).check(
        point, seed=PROBE_SEED
    )
    assert checked is not None and checked.ok, checked


def test_the_runners_reprobe_continues_the_resumed_trial() -> None:
    """``[ohgw] reprobe = true`` builds this probe: ``build_resume_probe`` hands the resumed
    state to ``RecipeTrainer.make_probe(resumed=...)``; the nudge follows the exact gradient."""
    import types

    import optuna

    from optuna_ohgw import attrs
    from optuna_ohgw.runner._build import build_resume_probe
    from optuna_ohgw.runner._trainer import RecipeTrainer
    from optuna_ohgw.studyfile import OHGWConfig

    kind, space, point = CASES["adamw-two-lr-warmup-cosine"]
    recipe = kind()
    trainer = RecipeTrainer(recipe, space)
    config = types.SimpleNamespace(
        ohgw=OHGWConfig(enabled=True, reprobe=True, k=K, batch_size=B), seed=0
    )
    made: list[Any] = []
    reprobe = build_resume_probe(config, trainer)  # type: ignore[arg-type]
    inner = reprobe.make_probe
    reprobe.make_probe = lambda state: made.append(inner(state)) or made[-1]
    state = _resumed(recipe, trainer.plan, _checkpoint(recipe, trainer.plan, point))
    trial = optuna.create_study().ask()
    new = reprobe(trial, state)
    assert trial.user_attrs[attrs.REPROBE_STATUS] == "ok"
    assert made[0].scheduler_steps == EPOCHS * 4 and made[0].optimizer_state
    assert new != point and state.hyperparameters == {**point, **new}


def test_a_scheduler_whose_position_is_unknown_is_refused_in_one_line() -> None:
    """Never read from step 0 silently: a warning, ``ohgw.reprobe.status``, values unchanged."""
    import optuna

    from optuna_ohgw import attrs
    from optuna_ohgw.schedulers import ResumeProbe
    from optuna_ohgw.steps import NormalizedStep

    recipe, plan, point, _, state = _setup("adamw-two-lr-warmup-cosine")
    space = CASES["adamw-two-lr-warmup-cosine"][1]
    state.scheduler.last_epoch = -1  # a position the re-probe cannot read

    def make_probe(resumed: Any) -> Any:
        return RecipeProbe(recipe, plan, k=K, batch_size=B, resumed=resumed)

    trial = optuna.create_study().ask()
    reprobe = ResumeProbe(make_probe, space, step=NormalizedStep(0.1), seed=0)
    with pytest.warns(UserWarning, match="re-probe of trial 0 refused: .*last_epoch"):
        new = reprobe(trial, state)
    assert new == point
    assert trial.user_attrs[attrs.REPROBE_STATUS].startswith("error: ValueError")
