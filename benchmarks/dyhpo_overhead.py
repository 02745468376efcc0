"""DyHPO's own cost per decision (surrogate fit + acquisition) next to one MNIST-1D epoch.

For 50, 200 and 500 observed epochs it builds a study of paused configurations (learning curves
of a saturating family over the mnist1d search space, each with its WAITING continuation) and
times the real ``DyHPO.choose``: the first decision fits the GP from scratch, the later ones
refit warm (one new epoch observed before each, as in a run). In the same run it times
one MNIST-1D epoch (train + validation) of the task's own model, and prints the ratios.

    python benchmarks/dyhpo_overhead.py [--threads 1] [--decisions 6]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import optuna
import torch
from optuna.trial import TrialState, create_trial

from optuna_ohgw import lineage
from optuna_ohgw.schedulers import DyHPO
from optuna_ohgw.schedulers.dyhpo import from_unit
from optuna_ohgw.studyfile import load_study_file
from optuna_ohgw.tasks import MNIST1DTask
from optuna_ohgw.tasks._base import TrainState

STUDY = "studies/mnist1d-dyhpo.toml"


def _curve(u: np.ndarray, epochs: int) -> list[float]:
    level = 0.55 + 0.4 * math.exp(-4 * (u[0] - 0.6) ** 2)
    return [level - 0.45 * math.exp(-t * (0.1 + 0.4 * u[2])) for t in range(1, epochs + 1)]


def build_study(space, n_epochs: int, max_epochs: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Configurations with 1..max_epochs-1 epochs each until ``n_epochs`` are observed."""
    rng = np.random.default_rng(seed)
    names = sorted(space)
    study = optuna.create_study(direction="maximize")
    config, observed = 0, 0
    while observed < n_epochs:
        u = rng.random(len(names))
        epochs = int(min(rng.integers(1, max_epochs), n_epochs - observed))
        params = {n: from_unit(float(v), space[n]) for n, v in zip(names, u)}
        curve = _curve(u, epochs)
        number = len(study.trials)
        study.add_trial(
            create_trial(
                value=curve[-1],
                params=params,
                distributions=dict(space),
                intermediate_values={e + 1: v for e, v in enumerate(curve)},
                user_attrs={lineage.CONFIG: number},
            )
        )
        resume = {"config": number, "parent": number, "epoch": epochs, "segment": 1}
        study.add_trial(
            create_trial(
                state=TrialState.WAITING,
                params=params,
                distributions=dict(space),
                system_attrs={lineage.RESUME: resume, "fixed_params": params},
            )
        )
        config, observed = config + 1, observed + epochs
    return study


def time_decisions(config, n_epochs: int, decisions: int) -> tuple[float, list[float], int]:  # type: ignore[no-untyped-def]
    study = build_study(config.space, n_epochs, config.max_epochs)
    scheduler = DyHPO(1, 3, config.max_epochs, config.space, seed=0)
    times = []
    rng = np.random.default_rng(1)
    for _ in range(decisions):
        trials = study.get_trials()
        start = time.perf_counter()
        scheduler.choose(study, trials, allow_new=True)
        times.append(time.perf_counter() - start)
        # One more epoch observed before the next decision, as in a run.
        u = rng.random(len(config.space))
        names = sorted(config.space)
        study.add_trial(
            create_trial(
                value=0.5,
                params={n: from_unit(float(v), config.space[n]) for n, v in zip(names, u)},
                distributions=dict(config.space),
                intermediate_values={1: float(_curve(u, 1)[0])},
            )
        )
    return times[0], times[1:], len(lineage.learning_curves(study.get_trials()))


def epoch_seconds(repeats: int = 3) -> float:
    task = MNIST1DTask()
    splits = task.splits(0)
    model = task.model(0)
    hp = {
        "lr": 0.05,
        "weight_decay": 5e-4,
        "momentum": 0.9,
        "augment": 1.0,
        "label_smoothing": 0.1,
    }
    opt = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"])
    state = TrainState(model, opt, hp, 0, splits)
    times = []
    for epoch in range(repeats + 1):
        start = time.perf_counter()
        task.train_one_epoch(state, epoch, 10, task.batch_size)
        task.accuracy(state.model, splits.val)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--decisions", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_study_file(STUDY)
    epoch = epoch_seconds()
    print(f"threads={torch.get_num_threads()}  one MNIST-1D epoch (train + val): {epoch:.3f} s")
    print(
        f"{'observed epochs':>15} {'configs':>8} {'scratch s':>10} {'warm s (median)':>16} "
        f"{'warm / epoch':>13} {'scratch / epoch':>16}"
    )
    for n in (50, 200, 500):
        scratch, warm, configs = time_decisions(config, n, args.decisions)
        w = statistics.median(warm)
        print(
            f"{n:>15} {configs:>8} {scratch:>10.3f} {w:>16.3f} {w / epoch:>13.2f} "
            f"{scratch / epoch:>16.2f}"
        )


if __name__ == "__main__":
    main()
