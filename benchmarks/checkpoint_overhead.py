"""Seconds per pause/resume (checkpoint save + load through CheckpointStore) per task, as a
fraction of one training epoch of that task on this machine.

    python benchmarks/checkpoint_overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from optuna_ohgw.checkpoint import CheckpointStore
from optuna_ohgw.tasks import CIFAR10Task, DigitsTask, MNIST1DTask
from optuna_ohgw.tasks._base import Splits, TrainState

HP = {"lr": 0.05, "weight_decay": 5e-4, "momentum": 0.9, "augment": 1.0, "label_smoothing": 0.1}


def _state(task, splits: Splits) -> TrainState:  # type: ignore[no-untyped-def]
    model = task.model(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    return TrainState(model, opt, dict(HP), 0, splits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cifar-steps", type=int, default=5)
    args = parser.parse_args()
    print(f"threads={torch.get_num_threads()}")
    print(f"{'task':<8} {'ckpt KB':>8} {'save+load s':>11} {'epoch s':>8} {'fraction':>9}")
    folder = tempfile.mkdtemp(prefix="ohgw-ckpt-")
    for cls in (DigitsTask, MNIST1DTask, CIFAR10Task):
        task = cls()
        if cls is CIFAR10Task:
            gen = torch.Generator().manual_seed(0)
            n = args.cifar_steps * task.batch_size
            x, y = torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,))
            splits = Splits((x, y), (x[:256], y[:256]), (x[:256], y[:256]))
        else:
            splits = task.splits(0)
        state = _state(task, splits)
        task.train_one_epoch(state, 0, 10, task.batch_size)  # fills momentum buffers
        start = time.perf_counter()
        task.train_one_epoch(state, 1, 10, task.batch_size)
        epoch = time.perf_counter() - start
        if cls is CIFAR10Task:  # scale the timed steps to a 45k-image epoch
            epoch *= 45_000 / n
        store = CheckpointStore(folder, cls.name)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            store.save(0, {"epoch": 1, "state": state.state_dict()})
            state.load_state_dict(store.load(0)["state"])
            times.append(time.perf_counter() - start)
        size = store.path(0).stat().st_size / 1024
        pause = statistics.median(times)
        print(f"{cls.name:<8} {size:>8.0f} {pause:>11.4f} {epoch:>8.2f} {pause / epoch:>9.2%}")


if __name__ == "__main__":
    main()
