"""OHGW on a real model in under 40 lines: digits, a small CNN, TPE + successive halving."""
import optuna, torch
from sklearn.datasets import load_digits
from torch import nn
import optuna_ohgw as ohgw

X, y = load_digits(return_X_y=True)
X, y = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8), torch.tensor(y)
(Xtr, ytr), (Xva, yva) = (X[:1200], y[:1200]), (X[1200:], y[1200:])
def net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(), nn.Linear(1024, 10))
space = {"lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True),
         "weight_decay": optuna.distributions.FloatDistribution(1e-6, 1e-2, log=True),
         "momentum": optuna.distributions.FloatDistribution(0.0, 0.95),
         "label_smoothing": optuna.distributions.FloatDistribution(0.0, 0.3)}
probe = ohgw.LookaheadProbe(net, (Xtr, ytr), (Xva, yva), roles={n: n for n in space}, optimizer=torch.optim.SGD, batch_size=64)
def setup(trial: optuna.Trial) -> dict:
    p = {n: trial.suggest_float(n, d.low, d.high, log=d.log) for n, d in space.items()}
    model = net(ohgw.trial_seed(trial))  # exactly the weights the probe started from
    opt = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=p["momentum"], weight_decay=p["weight_decay"])
    return {"model": model, "opt": opt, "ls": p["label_smoothing"]}
@ohgw.epoch_objective(setup=setup, max_epochs=9)
def objective(s: dict, epoch: int) -> float:
    s["model"].train()
    for idx in torch.randperm(len(Xtr), generator=torch.Generator().manual_seed(epoch)).split(64):
        loss = nn.functional.cross_entropy(s["model"](Xtr[idx]), ytr[idx], label_smoothing=s["ls"])
        s["opt"].zero_grad(); loss.backward(); s["opt"].step()
    s["model"].eval()
    with torch.no_grad():
        return (s["model"](Xva).argmax(1) == yva).float().mean().item()
sampler = ohgw.OHGWSampler(optuna.samplers.TPESampler(seed=0), probe, step="normalized", search_space=space, seed=0)
pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
study.optimize(objective, n_trials=20)
best = study.best_trial
print(f"best val acc {best.value:.4f} with {best.params}")
for t in study.trials[:5]:
    print(f"trial {t.number}: " + ", ".join(f"{n} {t.user_attrs[f'ohgw.raw.{n}']:.3g} -> {t.params[n]:.3g}" for n in space))
