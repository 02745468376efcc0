"""Cost of the AdamW look-ahead probe in units of one plain AdamW training step, on this machine.

For CIFAR's ResNet-20 (batch 128, 3x32x32 random images: the cost does not depend on pixel
values) and the transformer of ``examples/adamw_transformer.py`` (dict batches, its own loss
function), times one plain ``torch.optim.AdamW`` step (zero_grad, forward, loss, backward, step)
and the :class:`~optuna_ohgw.probes.LookaheadProbe` unrolling AdamW in two configurations, all in
fp32 with the same batch size and thread count, interleaved in one run; it prints median times
and the ratios probe / step.

Where the time goes: K=1 is one first-order forward/backward on the training batch, the AdamW
update (elementwise, kept in the graph), then forward/backward of the held-out loss, which
autograd carries on through the update to lr and weight decay: about two steps. K=2 adds a
second training forward/backward built with ``create_graph`` and, when the held-out gradient
flows back through it, a double backward (a Hessian-vector product through the network), which
dominates.

Usage::

    python benchmarks/probe_cost_adamw.py
    python benchmarks/probe_cost_adamw.py --models transformer --repeats 10
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import pathlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from _ratios import print_header, print_load, print_rows

from optuna_ohgw.probes import LookaheadProbe
from optuna_ohgw.tasks.models import ResNet20

TARGETS = {"K=1 lr+wd": 3.0, "K=2 lr+wd+b1+b2": 9.0}
"""Maximum acceptable probe / AdamW-step ratio per configuration."""

ROOT = pathlib.Path(__file__).resolve().parents[1]
VALUES = {"lr": 1e-3, "wd": 0.05, "b1": 0.9, "b2": 0.999}
CONFIGS = {
    "K=1 lr+wd": ({"lr": "lr", "wd": "weight_decay"}, 1),
    "K=2 lr+wd+b1+b2": ({"lr": "lr", "wd": "weight_decay", "b1": "beta1", "b2": "beta2"}, 2),
}


def _interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int
) -> dict[str, float]:
    """Median seconds of each function, timed in turn within every round (same load for all)."""
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


def _transformer_example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "adamw_transformer", ROOT / "examples" / "adamw_transformer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _setup(name: str, batch_size: int) -> tuple[Callable[[int], torch.nn.Module], Any, Any, Any]:
    """``(factory, train data, val data, loss_fn or None)``."""
    if name == "resnet20":
        gen = torch.Generator().manual_seed(0)
        n = 4 * batch_size
        train = (torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,)))
        val = (torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,)))

        def factory(seed: int) -> torch.nn.Module:
            torch.manual_seed(seed)
            return ResNet20()

        return factory, train, val, None
    example = _transformer_example()
    return (
        example.make_model,
        example.make_data(4 * batch_size, 0),
        example.make_data(4 * batch_size, 1),
        example.loss_fn,
    )


def _measure(name: str, batch_size: int, repeats: int, warmup: int) -> list[tuple[str, float]]:
    factory, train, val, loss_fn = _setup(name, batch_size)
    model = factory(0)
    step_model = factory(0)
    step_model.train()
    optimizer = torch.optim.AdamW(step_model.parameters(), lr=VALUES["lr"])
    if loss_fn is None:
        x, y = train[0][:batch_size], train[1][:batch_size]

        def loss() -> torch.Tensor:
            return F.cross_entropy(step_model(x), y)
    else:
        batch = {k: v[:batch_size] for k, v in train.items()}

        def loss() -> torch.Tensor:
            return loss_fn(step_model, batch, {})

    def adamw_step() -> None:
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()

    fns: dict[str, Callable[[], object]] = {"AdamW step": adamw_step}
    for config, (roles, k) in CONFIGS.items():
        probe = LookaheadProbe(
            model,
            train,
            val,
            roles,
            optimizer=torch.optim.AdamW,
            k=k,
            batch_size=batch_size,
            loss_fn=loss_fn,
        )
        fns[config] = functools.partial(probe, {n: VALUES[n] for n in roles})
    return list(_interleaved_medians(fns, repeats, warmup).items())


MODELS = {"resnet20": "CIFAR ResNet20", "transformer": "example transformer"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds, transformer")
    parser.add_argument("--resnet-repeats", type=int, default=3, help="timed rounds, ResNet20")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}, fp32, "
        f"median seconds; load average {os.getloadavg()[0]:.1f} at start"
    )
    print_header(18)
    for key in args.models:
        repeats = args.resnet_repeats if key == "resnet20" else args.repeats
        rows = _measure(key, args.batch_size, repeats, args.warmup)
        print_rows(MODELS[key], rows, TARGETS, 18)
    print_load()


if __name__ == "__main__":
    main()
