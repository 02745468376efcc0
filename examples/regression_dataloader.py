"""OHGW for a regression model trained with MSE from a DataLoader (scikit-learn's diabetes).

The probe reads batches from the same ``DataLoader`` the trial trains on (its dataset and
collate_fn, with rows drawn from the probe's seed), unrolls real ``torch.optim.SGD`` steps with
Nesterov momentum, and differentiates the held-out MSE with respect to lr, momentum and weight
decay. Each trial builds its network from ``ohgw.trial_seed(trial)``: the probe's start.
"""

import optuna
import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import optuna_ohgw as ohgw

x, y = load_diabetes(return_X_y=True)
x = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
y = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32).unsqueeze(1)
train = DataLoader(TensorDataset(x[:300], y[:300]), batch_size=32, shuffle=True)
val = DataLoader(TensorDataset(x[300:], y[300:]), batch_size=142)


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 1))


def mse(apply, batch, hypers=None) -> torch.Tensor:
    inputs, targets = batch
    return F.mse_loss(apply(inputs), targets)


space = {
    "lr": optuna.distributions.FloatDistribution(1e-3, 0.1, log=True),
    "momentum": optuna.distributions.FloatDistribution(0.0, 0.95),
    "weight_decay": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
}
probe = ohgw.LookaheadProbe(
    make_model,
    train,
    val,
    {n: n for n in space},
    optimizer=torch.optim.SGD,
    optimizer_kwargs={"nesterov": True},
    loss_fn=mse,
    k=2,
)


def objective(trial: optuna.Trial) -> float:
    p = {n: trial.suggest_float(n, d.low, d.high, log=d.log) for n, d in space.items()}
    model = make_model(ohgw.trial_seed(trial))  # the weights the probe started from
    opt = torch.optim.SGD(model.parameters(), nesterov=True, **p)
    torch.manual_seed(trial.number)  # the DataLoader's shuffle
    for _ in range(20):
        for batch in train:
            opt.zero_grad()
            mse(model, batch).backward()
            opt.step()
    with torch.no_grad():
        return mse(model, next(iter(val))).item()


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # max_consecutive_failures=1: a probe that cannot run stops the study instead of logging.
    sampler = ohgw.OHGWSampler(
        optuna.samplers.TPESampler(seed=0),
        probe,
        search_space=space,
        seed=0,
        max_consecutive_failures=1,
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=10)
    for t in study.trials:
        moves = ", ".join(
            f"{n} {t.user_attrs[f'ohgw.raw.{n}']:.3g} -> {t.params[n]:.3g}" for n in space
        )
        print(f"trial {t.number}: val MSE {t.value:.3f}  {moves}  [{t.user_attrs['ohgw.status']}]")
