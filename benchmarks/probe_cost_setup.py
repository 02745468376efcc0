"""Cost of the probe that reads the user's own training setup, next to the class form.

For CIFAR's ResNet-20 and the transformer of ``examples/adamw_transformer.py`` (as in
``probe_cost_adamw.py``), times, interleaved in one run:

- the class form as before (``optimizer=torch.optim.AdamW``: one group, no scheduler, no
  clipping), over one plain AdamW step;
- the factory form with a Hugging Face-style setup: ``make_optimizer`` with two groups (no
  weight decay on 1-d parameters: biases and norm weights), a linear warm-up through a
  ``LambdaLR`` factory and ``clip_grad_norm=1.0``, over one plain step of that same loop
  (zero_grad, forward, backward, clip_grad_norm_, step, scheduler step);
- ``probe.check`` of the factory form (one probe call and 5 x K real steps, in float64).

It prints each form's probe / step ratio, the factory form's seconds over the class form's
(target: at most 1.1), the least time of reading the setup (calling ``make_optimizer`` and the
scheduler at the probed and moved values) and the check's seconds over one factory-form probe
call. On a loaded 2-core machine the interleaved medians still drift by 10-20% between runs;
the reading's minimum is the overhead's floor.

Usage::

    python benchmarks/probe_cost_setup.py --threads 1
    python benchmarks/probe_cost_setup.py --models transformer --repeats 5
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from _ratios import print_header, print_load, print_rows
from probe_cost_adamw import CONFIGS, MODELS, VALUES, _interleaved_medians, _setup

from optuna_ohgw.probes import LookaheadProbe

FACTORY_TARGET = 1.1
"""Maximum acceptable factory-form / class-form probe seconds."""
CLIP = 1.0


def make_optimizer(model: torch.nn.Module, h: Mapping[str, float]) -> torch.optim.Optimizer:
    """Hugging Face's grouping, model-agnostic: no decay on 1-d parameters."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": h.get("wd", 0.01)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=h["lr"], betas=(h.get("b1", 0.9), h.get("b2", 0.999)))


def make_scheduler(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """A linear warm-up over 10 steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (step + 1) / 10)


def _measure(
    name: str, batch_size: int, repeats: int, warmup: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """``(class rows, factory rows)``, each led by its plain step."""
    factory, train, val, loss_fn = _setup(name, batch_size)
    model = factory(0)
    plain_model, loop_model = factory(0).train(), factory(0).train()
    plain_opt = torch.optim.AdamW(plain_model.parameters(), lr=VALUES["lr"])
    loop_opt = make_optimizer(loop_model, VALUES)
    loop_sched = make_scheduler(loop_opt)

    def loss(net: torch.nn.Module) -> torch.Tensor:
        if loss_fn is None:
            return F.cross_entropy(net(train[0][:batch_size]), train[1][:batch_size])
        return loss_fn(net, {k: v[:batch_size] for k, v in train.items()}, {})

    def plain_step() -> None:
        plain_opt.zero_grad()
        loss(plain_model).backward()
        plain_opt.step()

    def loop_step() -> None:
        loop_opt.zero_grad()
        loss(loop_model).backward()
        torch.nn.utils.clip_grad_norm_(loop_model.parameters(), CLIP)
        loop_opt.step()
        loop_sched.step()

    fns: dict[str, Callable[[], object]] = {"AdamW step": plain_step, "HF loop step": loop_step}
    last = ""
    for config, (roles, k) in CONFIGS.items():
        values = {n: VALUES[n] for n in roles}
        common = {"k": k, "batch_size": batch_size, "loss_fn": loss_fn}
        cls = LookaheadProbe(model, train, val, roles, optimizer=torch.optim.AdamW, **common)
        hf = LookaheadProbe(
            model,
            train,
            val,
            roles,
            optimizer=make_optimizer,
            scheduler=make_scheduler,
            clip_grad_norm=CLIP,
            **common,
        )
        fns[f"class {config}"] = functools.partial(cls, values)
        fns[f"factory {config}"] = functools.partial(hf, values)
        last = config
        checked = (hf, values)
    fns[f"check {last}"] = functools.partial(checked[0].check, checked[1])
    medians = _interleaved_medians(fns, repeats, warmup)
    medians["reading the setup (min)"] = _reading_seconds(checked[0], model, checked[1])
    class_rows = [("AdamW step", medians["AdamW step"])] + [
        (c, medians[c]) for c in medians if c.startswith("class ")
    ]
    factory_rows = [("HF loop step", medians["HF loop step"])] + [
        (c, medians[c]) for c in medians if c.startswith(("factory ", "check ", "reading "))
    ]
    return class_rows, factory_rows


def _reading_seconds(probe: LookaheadProbe, model: torch.nn.Module, values: dict) -> float:
    """The least of 30 readings of make_optimizer and the scheduler (what a probe call adds to
    the class form's work besides clipping; a minimum, since a loaded machine inflates medians
    of millisecond timings)."""
    times = []
    for _ in range(30):
        start = time.perf_counter()
        probe._plan(model, values)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds, transformer")
    parser.add_argument("--resnet-repeats", type=int, default=2, help="timed rounds, ResNet20")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}, fp32 "
        f"(the check: float64 copies), median seconds; load average "
        f"{os.getloadavg()[0]:.1f} at start"
    )
    summary = []
    print_header(26)
    for key in args.models:
        repeats = args.resnet_repeats if key == "resnet20" else args.repeats
        class_rows, factory_rows = _measure(key, args.batch_size, repeats, args.warmup)
        print_rows(MODELS[key], class_rows, {}, 26)
        print_rows(MODELS[key], factory_rows, {}, 26)
        seconds = dict(class_rows + factory_rows)
        for config in CONFIGS:
            ratio = seconds[f"factory {config}"] / seconds[f"class {config}"]
            summary.append((MODELS[key], f"factory / class {config}", ratio, FACTORY_TARGET))
        check = next(c for c in seconds if c.startswith("check "))
        probe = seconds["factory " + check.removeprefix("check ")]
        summary.append(
            (MODELS[key], f"check / probe call {check[6:]}", seconds[check] / probe, None)
        )
    print()
    for model, what, ratio, target in summary:
        verdict = "" if target is None else ("  yes" if ratio <= target else "  NO")
        limit = "" if target is None else f"  (target <= {target})"
        print(f"{model:<22}{what:<40}{ratio:>7.2f}{limit}{verdict}")
    print_load()


if __name__ == "__main__":
    main()
