"""Cost of the look-ahead probe in units of one plain SGD training step, on this machine.

For each task network, times one plain ``torch.optim.SGD`` step (zero_grad, forward, backward,
step) on a fixed batch and the :class:`~optuna_ohgw.probes.LookaheadProbe` in two configurations,
as the tasks build it (augmentation applied; tuned in the second), all in fp32 with the same
batch size and thread count, interleaved in one run; it prints median times and the ratios
probe / step, and the same for the probe's loss alone (``probe.loss``) and for the
``line-search`` rule's warm start built from them (one call and four losses, against five full
calls before the probe had ``loss``). Inputs are random tensors of the real shapes (8x8 digits,
MNIST-1D signals of length 40, 3x32x32 CIFAR images): the cost does not depend on the pixel
values.

Usage::

    python benchmarks/probe_cost.py               # all models, default repeats
    python benchmarks/probe_cost.py --models resnet20 --resnet-repeats 3
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from _ratios import print_header, print_load, print_rows
from torch import nn

from optuna_ohgw.augmentations import RandomTranslate
from optuna_ohgw.probes import LookaheadProbe
from optuna_ohgw.tasks.models import ResNet20, SmallCNN1d, SmallCNN2d

TARGETS = {"K=1 lr+wd+ls": 2.5, "K=2 all five": 5.0}
"""Maximum acceptable probe / SGD-step ratio per configuration."""
LINE_SEARCH_SCALES = 4
"""``LineSearchStep``'s default scales (0.5, 1, 2, 4): one look-ahead loss each."""


@dataclass(frozen=True)
class Task:
    name: str
    build: Callable[[], nn.Module]
    shape: tuple[int, ...]
    flip: bool


TASKS = {
    "digits-cnn": Task(
        "digits SmallCNN2d",
        functools.partial(SmallCNN2d, width=16, batch_norm=True),
        (1, 8, 8),
        flip=False,
    ),
    "mnist1d-cnn": Task(
        "MNIST-1D SmallCNN1d",
        functools.partial(SmallCNN1d, width=32, batch_norm=True),
        (1, 40),
        flip=False,
    ),
    "resnet20": Task("CIFAR ResNet20", ResNet20, (3, 32, 32), flip=True),
}
"""The tasks' own networks (``optuna_ohgw.tasks``): BatchNorm everywhere."""


def _interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int
) -> dict[str, float]:
    """Median seconds of each function, timed in turn within every round.

    Interleaving exposes every function to the same background load, so the ratios stay
    meaningful on a shared machine even when the absolute times drift.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _measure(task: Task, batch_size: int, repeats: int, warmup: int) -> list[tuple[str, float]]:
    torch.manual_seed(0)
    model = task.build()
    n = 4 * batch_size
    train = (torch.randn(n, *task.shape), torch.randint(0, 10, (n,)))
    val = (torch.randn(n, *task.shape), torch.randint(0, 10, (n,)))
    x, y = train[0][:batch_size], train[1][:batch_size]

    # The baseline trains a copy, so the probes below start from the same weights.
    step_model = task.build()
    step_model.load_state_dict(model.state_dict())
    step_model.train()
    optimizer = torch.optim.SGD(step_model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def sgd_step() -> None:
        optimizer.zero_grad()
        loss = F.cross_entropy(step_model(x), y, label_smoothing=0.1)
        loss.backward()
        optimizer.step()

    params = {"lr": 0.05, "wd": 5e-4, "mu": 0.9, "ls": 0.1, "aug": 2.0}
    probes = {
        "K=1 lr+wd+ls": LookaheadProbe(
            model,
            train,
            val,
            {"lr": "lr", "wd": "weight_decay", "ls": "label_smoothing"},
            optimizer=torch.optim.SGD,
            fixed={"augment": params["aug"]},
            k=1,
            batch_size=batch_size,
            augmentation=RandomTranslate(flip=task.flip),
        ),
        "K=2 all five": LookaheadProbe(
            model,
            train,
            val,
            {
                "lr": "lr",
                "wd": "weight_decay",
                "mu": "momentum",
                "ls": "label_smoothing",
                "aug": "augment",
            },
            optimizer=torch.optim.SGD,
            k=2,
            batch_size=batch_size,
            augmentation=RandomTranslate(flip=task.flip),
        ),
    }
    fns: dict[str, Callable[[], object]] = {"SGD step": sgd_step}
    for name, probe in probes.items():
        values = {n: params[n] for n in probe.param_names}
        fns[name] = functools.partial(probe, values)
        fns[f"{name} loss()"] = functools.partial(probe.loss, values)
    medians = _interleaved_medians(fns, repeats, warmup)
    rows = list(medians.items())
    for name in probes:
        # line-search with its four scales: one full call, then four look-ahead losses (before
        # the probe had loss(), each of the four was a full call too).
        full, alone = medians[name], medians[f"{name} loss()"]
        rows.append((f"{name} line-search", full + LINE_SEARCH_SCALES * alone))
        rows.append((f"{name} line-search, full calls", (1 + LINE_SEARCH_SCALES) * full))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=30, help="timed rounds, small models")
    parser.add_argument("--resnet-repeats", type=int, default=5, help="timed rounds, ResNet20")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed rounds first (1 for ResNet20)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}, fp32, "
        f"median seconds; load average {os.getloadavg()[0]:.1f} at start"
    )
    print_header(38)
    for key in args.models:
        task = TASKS[key]
        repeats = args.resnet_repeats if key == "resnet20" else args.repeats
        warmup = min(args.warmup, 1) if key == "resnet20" else args.warmup
        rows = _measure(task, args.batch_size, repeats, warmup)
        print_rows(task.name, rows, TARGETS, 38)
    print_load()


if __name__ == "__main__":
    main()
