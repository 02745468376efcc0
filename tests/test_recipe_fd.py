"""The probe of a recipe is exact against finite differences of the recipe's own epoch loop.

The loop is fed the very batches the probe draws (arranged so that the loop's seeded epoch
order yields them), so one epoch of the loop is the probe's K look-ahead steps, and the
held-out loss after it, differentiated by central finite differences in float64, must equal
the probe's hypergradient. Two recipes: two learning rates (one per parameter group, both role
``lr``); a scheduler stepped per epoch (``LookaheadProbe(scheduler_interval=...)`` from issue
24 where it exists, else the recipe probe holds the schedule at its first epoch); and clipping
over more parameters than the optimizer trains (needs ``LookaheadProbe(clip_over=...)`` from
issue 24, branch i24c: skipped, saying so, until it is merged).
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
import torch.nn.functional as F
from optuna.distributions import FloatDistribution
from torch import nn

from optuna_ohgw.probes import LookaheadProbe
from optuna_ohgw.recipes import BaseRecipe, RecipeProbe, make_state, plan_recipe
from optuna_ohgw.seeding import trial_seed

K, B, SEED, PROBE_SEED = 2, 16, 11, 5


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen, dtype=torch.float64)
    return x, (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()


class TwoLearningRates(BaseRecipe):
    """An MLP whose body and head train at their own learning rates (AdamW)."""

    train_data = _data(64, 0)
    val_data = _data(B, 1)
    batch_size = B
    clip_grad_norm = 0.5

    def build_model(self, seed, hypers):  # type: ignore[no-untyped-def]
        return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3)).double()

    def make_optimizer(self, model, hypers):  # type: ignore[no-untyped-def]
        body, head = model[0].parameters(), model[2].parameters()
        groups = [{"params": body, "lr": hypers["lr_body"]}, {"params": head}]
        return torch.optim.AdamW(groups, lr=hypers["lr_head"], weight_decay=0.01)

    def evaluate(self, model):  # type: ignore[no-untyped-def]
        return 0.0


class PerEpochSchedule(TwoLearningRates):
    """SGD with momentum and a schedule stepped once per epoch (constant within epoch 0)."""

    scheduler_interval = "epoch"
    clip_grad_norm = None

    def make_optimizer(self, model, hypers):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(model.parameters(), lr=hypers["lr"], momentum=hypers["momentum"])

    def make_scheduler(self, optimizer, hypers):  # type: ignore[no-untyped-def]
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: (epoch + 1) / 3)


class ClipOverAll(TwoLearningRates):
    """Clipping over every parameter while the optimizer trains only the head: the frozen
    body's gradients still count in the norm."""

    clip_over = "all"
    clip_grad_norm = 0.05

    def make_optimizer(self, model, hypers):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(model[2].parameters(), lr=hypers["lr"])


LOG = FloatDistribution(1e-3, 1.0, log=True)
CASES = {
    "two-lr": (
        TwoLearningRates,
        {"lr_body": LOG, "lr_head": LOG},
        {"lr_body": 0.05, "lr_head": 0.02},
    ),
    "per-epoch": (
        PerEpochSchedule,
        {"lr": LOG, "momentum": FloatDistribution(0.0, 0.95)},
        {"lr": 0.3, "momentum": 0.8},
    ),
    "clip-over-all": (ClipOverAll, {"lr": LOG}, {"lr": 0.5}),
}
PROBE_ARGS = inspect.signature(LookaheadProbe).parameters


def fed_probe_batches(
    recipe: BaseRecipe, loop_seed: int, epoch: int
) -> tuple[BaseRecipe, torch.Tensor]:
    """A copy of ``recipe`` whose ``train_data``, visited in the loop's seeded order of
    ``epoch`` for a trial of seed ``loop_seed``, is the probe's K batches (drawn with
    ``PROBE_SEED``), and the rows of ``val_data`` the probe holds out."""
    gen = torch.Generator().manual_seed(PROBE_SEED)  # the probe's draws, in its order
    x, y = recipe.train_data
    rows = torch.cat([torch.randperm(len(y), generator=gen)[:B] for _ in range(K)])
    val = torch.randperm(len(recipe.val_data[1]), generator=gen)[:B]
    order = torch.randperm(
        K * B, generator=torch.Generator().manual_seed(trial_seed(loop_seed, epoch))
    )
    arranged = torch.empty_like(rows)
    arranged[order] = rows  # the loop visits arranged[order[i]] = rows[i]
    mine = copy.copy(recipe)
    mine.__dict__.pop("_ohgw_data", None)
    mine.__dict__.pop("_ohgw_device_data", None)
    mine.train_data = (x[arranged], y[arranged])
    return mine, val


def _loop_loss(recipe: BaseRecipe, plan, hypers) -> float:  # type: ignore[no-untyped-def]
    """One epoch of the recipe's own loop on the probe's K batches; the held-out loss."""
    mine, val = fed_probe_batches(recipe, PROBE_SEED, 0)
    state = make_state(mine, plan, hypers, PROBE_SEED)
    mine.train_epoch(state, 0)
    assert state.steps == K
    vx, vy = recipe.val_data
    with torch.no_grad():
        return float(F.cross_entropy(state.model(vx[val]), vy[val]))


@pytest.mark.parametrize("case", list(CASES))
def test_probe_equals_finite_differences_of_the_recipes_loop(case: str) -> None:
    kind, space, point = CASES[case]
    if kind.clip_over != "trained" and "clip_over" not in PROBE_ARGS:
        pytest.skip("needs LookaheadProbe(clip_over=...) from branch i24c (issue 24)")
    recipe = kind()
    plan = plan_recipe(recipe, space)
    assert plan.held == ()
    if case == "two-lr":
        assert plan.roles == {"lr_body": "lr", "lr_head": "lr"}
    result = RecipeProbe(recipe, plan, k=K, batch_size=B)(point, seed=PROBE_SEED)
    assert result.value == pytest.approx(_loop_loss(recipe, plan, point), rel=1e-12)
    for name, value in point.items():
        h = value * 1e-5
        up = _loop_loss(recipe, plan, {**point, name: value + h})
        down = _loop_loss(recipe, plan, {**point, name: value - h})
        assert result.grads[name] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)
