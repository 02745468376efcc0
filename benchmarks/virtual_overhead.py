"""What the virtual executor costs per event, as a share of a training epoch.

An *event* is one epoch report of one simulated worker: its storage view hands the baton to the
worker with the earliest virtual clock (a condition-variable switch between threads) and
records the report's virtual time. Two figures per event:

* the baton alone: N threads that only take turns (``Baton.step``), no storage, no Optuna;
* a whole virtual run of an objective that trains nothing (it only reports) on a journal file:
  the baton plus everything a real worker pays per report as well (the journal write, the
  pruner, the sampler at each new trial), so an upper bound on what virtual workers add.

Each is divided by the seconds of one training epoch of each task, measured here with one torch
thread, as the grid runs.

    python benchmarks/virtual_overhead.py [--workers 8] [--trials 200] [--epochs 9]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import tempfile
import threading
import time

import optuna
import torch

from optuna_ohgw.virtual import Baton, optimize_virtual

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


def baton_seconds_per_event(workers: int, steps: int) -> float:
    baton = Baton(workers)

    def body(w: int) -> None:
        baton.start(w)
        for _ in range(steps):
            baton.step(w)
        baton.finish(w)

    threads = [threading.Thread(target=body, args=(w,)) for w in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - start) / baton.events


def run_seconds_per_event(workers: int, trials: int, epochs: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        study = _study(pathlib.Path(tmp), "virtual")
        start = time.perf_counter()
        baton = optimize_virtual(study, _objective(epochs), workers, n_trials=trials)
        return (time.perf_counter() - start) / baton.events, baton.events


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
    baton = baton_seconds_per_event(args.workers, 500)
    run, events = run_seconds_per_event(args.workers, args.trials, args.epochs)
    print(f"baton alone: {1e3 * baton:.3f} ms per event ({args.workers} workers)")
    print(
        f"whole virtual run of a no-training objective: {1e3 * run:.3f} ms per event "
        f"({args.workers} workers, {events} events, journal file)"
    )
    for name in args.tasks.split(","):
        epoch = epoch_seconds(name)
        print(
            f"{name}: one epoch {epoch:.2f} s (1 thread); per event the baton is "
            f"{100 * baton / epoch:.4f}% of an epoch, the whole run {100 * run / epoch:.3f}%"
        )


if __name__ == "__main__":
    main()
