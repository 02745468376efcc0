"""What the virtual executor costs per event, as a share of a training epoch.

An *event* is one epoch report of one simulated worker: the worker's storage view hands the
baton to the worker with the earliest virtual clock (a condition-variable switch between
threads) and records the report's virtual time. Its cost is measured with an objective that
trains nothing (it only reports), so that nothing but the executor and the storage is timed:

    overhead per event = (time of N virtual workers - time of the same trials in one plain
                          ``study.optimize``) / events

on the same storage kind (a journal file, as the grid uses). The share divides it by the
seconds of one training epoch of each task, measured here (one torch thread, as the grid).

    python benchmarks/virtual_overhead.py [--workers 8] [--trials 200] [--epochs 9]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import tempfile
import time

import optuna
import torch

from optuna_ohgw.virtual import optimize_virtual

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(epochs: int):  # type: ignore[no-untyped-def]
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        for step in range(1, epochs + 1):
            trial.report(step * (1.0 - x * x), step)
        return epochs * (1.0 - x * x)

    return objective


def _study(folder: pathlib.Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / f"{name}.journal"))
    )
    return optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )


def executor_seconds_per_event(workers: int, trials: int, epochs: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        plain = _study(folder, "plain")
        start = time.perf_counter()
        plain.optimize(_objective(epochs), n_trials=trials)
        t_plain = time.perf_counter() - start
        virtual = _study(folder, "virtual")
        start = time.perf_counter()
        baton = optimize_virtual(virtual, _objective(epochs), workers, n_trials=trials)
        t_virtual = time.perf_counter() - start
        n_plain = sum(len(t.intermediate_values) for t in plain.trials)
        events = baton.events
        # Per event: the virtual run's time less the plain run's per report, times its events.
        return (t_virtual - t_plain * events / n_plain) / events, events


def epoch_seconds(task_name: str, repeats: int = 3) -> float:
    from optuna_ohgw.tasks import get_task
    from optuna_ohgw.tasks._base import TrainState

    task = get_task(task_name)()
    splits = task.splits(0)
    model = task.model(0)
    hp = {"lr": 0.05, "weight_decay": 5e-4, "momentum": 0.9, "augment": 1.0}
    hp["label_smoothing"] = 0.1
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    state = TrainState(model, opt, hp, 0, splits)
    times = []
    for epoch in range(repeats):
        start = time.perf_counter()
        task.train_one_epoch(state, epoch, 27, task.batch_size)
        task.accuracy(model, splits.val)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--tasks", default="mnist1d,fashion")
    args = parser.parse_args()
    torch.set_num_threads(1)
    per_event, events = executor_seconds_per_event(args.workers, args.trials, args.epochs)
    print(
        f"executor: {1e3 * per_event:.3f} ms per event ({args.workers} virtual workers, "
        f"{events} events, journal storage)"
    )
    for name in args.tasks.split(","):
        epoch = epoch_seconds(name)
        print(
            f"{name}: one epoch {epoch:.2f} s (1 thread); executor overhead per event "
            f"{100 * per_event / epoch:.4f}% of an epoch"
        )


if __name__ == "__main__":
    main()
