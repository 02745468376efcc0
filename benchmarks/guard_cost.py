"""Cost of the probe's one-time model check (``probes/_guards.py``), next to a plain SGD step and
one probe call, on this machine.

The check runs once per probe, at its first call: a deep copy of the model, one plain forward
(what it writes), one forward through ``functional_call`` and two backward passes (activation
checkpointing, loss hyperparameters). This script times it alone (``_guards.refusal``) on the
tasks' networks, interleaved with one plain ``torch.optim.SGD`` step and one warm probe call
(K=1, lr and weight decay) on the same batch, and prints medians and ratios. Inputs are random
tensors of the real shapes (the cost does not depend on the values).

Usage::

    python benchmarks/guard_cost.py
    python benchmarks/guard_cost.py --models resnet20 --repeats 5
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F
from _ratios import print_header, print_load, print_rows
from probe_cost import TASKS, _interleaved_medians

from optuna_ohgw.probes import LookaheadProbe, _guards


def _measure(name: str, batch_size: int, repeats: int) -> list[tuple[str, float]]:
    task = TASKS[name]
    torch.manual_seed(0)
    model, step_model = task.build().train(), task.build().train()
    data = torch.randn(4 * batch_size, *task.shape), torch.randint(0, 10, (4 * batch_size,))
    x, y = data[0][:batch_size], data[1][:batch_size]
    optimizer = torch.optim.SGD(step_model.parameters(), lr=0.05, weight_decay=5e-4)

    def sgd_step() -> None:
        optimizer.zero_grad()
        F.cross_entropy(step_model(x), y).backward()
        optimizer.step()

    probe = LookaheadProbe(
        model,
        data,
        data,  # the same rows for both: only the cost is measured
        {"lr": "lr", "wd": "weight_decay"},
        optimizer=torch.optim.SGD,
        k=1,
        batch_size=batch_size,
    )
    probe({"lr": 0.05, "wd": 5e-4})  # the check runs here, once; the timed calls are warm

    def check() -> None:
        found = _guards.refusal(
            model, (x, y), {}, None, dtype=torch.float32, device=torch.device("cpu")
        )
        assert found is None, found

    fns = {
        "SGD step": sgd_step,
        "probe K=1 lr+wd": lambda: probe({"lr": 0.05, "wd": 5e-4}),
        "model check": check,
    }
    medians = _interleaved_medians(fns, repeats, warmup=1)
    return list(medians.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}")
    width = 18
    print_header(width)
    for name in args.models:
        rows = _measure(name, args.batch_size, args.repeats)
        print_rows(TASKS[name].name, rows, {}, width)
        probe = dict(rows)["probe K=1 lr+wd"]
        print(f"{'':<22}model check / probe call: {dict(rows)['model check'] / probe:.2f}")
    print_load()


if __name__ == "__main__":
    main()
