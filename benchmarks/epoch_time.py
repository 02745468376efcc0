"""Per-epoch training time of each task on this machine (and on CUDA when available).

CIFAR-10 needs the real dataset for accuracy but not for timing: a CIFAR-shaped random tensor
set of the same size (45k train images) gives the same per-step cost, so this script times
``--cifar-steps`` ResNet-20 steps and scales to a full epoch.

    python benchmarks/epoch_time.py [--device cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from optuna_ohgw.tasks import CIFAR10Task, DigitsTask, MNIST1DTask
from optuna_ohgw.tasks._base import Splits, TrainState

HP = {"lr": 0.05, "weight_decay": 5e-4, "momentum": 0.9, "augment": 1.0, "label_smoothing": 0.1}


def _state(task, splits: Splits) -> TrainState:  # type: ignore[no-untyped-def]
    model = task.model(0)
    opt = torch.optim.SGD(model.parameters(), lr=HP["lr"], momentum=HP["momentum"])
    return TrainState(model, opt, dict(HP), 0, splits)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_epochs(task, splits: Splits, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    state = _state(task, splits)
    times = []
    for epoch in range(repeats + 1):
        _sync(task.device)
        start = time.perf_counter()
        task.train_one_epoch(state, epoch, 10, task.batch_size)
        task.accuracy(state.model, splits.val)
        _sync(task.device)
        times.append(time.perf_counter() - start)
    return times[1:]  # the first epoch warms up kernels and allocators


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cifar-steps", type=int, default=10)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device={device} threads={torch.get_num_threads()}")
    print(f"{'task':<10} {'train':>7} {'epoch s (median)':>17} {'note'}")
    for cls in (DigitsTask, MNIST1DTask):
        task = cls(device=device)
        splits = task.splits(0)
        times = time_epochs(task, splits, args.repeats)
        print(f"{cls.name:<10} {len(splits.train[1]):>7} {statistics.median(times):>17.3f}")
    task = CIFAR10Task(device=device)
    n_train, n_val = 45_000, 5_000
    gen = torch.Generator().manual_seed(0)
    steps = args.cifar_steps
    n = steps * task.batch_size
    x = torch.randn(n, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (n,), generator=gen).to(device)
    small = Splits((x, y), (x[:1000], y[:1000]), (x[:1000], y[:1000]))
    state = _state(task, small)
    task.train_one_epoch(state, 0, 10, task.batch_size)  # warm-up
    _sync(device)
    start = time.perf_counter()
    task.train_one_epoch(state, 1, 10, task.batch_size)
    _sync(device)
    per_step = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    task.accuracy(state.model, small.val)
    _sync(device)
    eval_per_image = (time.perf_counter() - start) / 1000
    epoch = per_step * (n_train / task.batch_size) + eval_per_image * n_val
    note = f"ResNet-20, {steps} steps timed ({per_step:.3f} s/step), scaled to 45k images"
    print(f"{'cifar10':<10} {n_train:>7} {epoch:>17.1f} {note}")


if __name__ == "__main__":
    main()
