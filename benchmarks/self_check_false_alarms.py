"""The self-check's verdicts at random points of every built-in task's space.

An exact probe whose self-check fails turns the warm start off: a false alarm is as costly as a
wrong gradient. This draws ``--points`` seeded points uniformly (log-uniform where the study file
says ``log``) from each built-in study's ``[space]``, builds the probe exactly as ``ohgw-optuna
run`` does (``runner.open_trainer``: the study file's ``k``, batch size and fixed values, the
trial's seed), and prints how many self-checks say ``ok``, ``inconclusive`` and ``mismatch``,
with the seconds of the first check in the process, of a warm check and of a probe call (the
median of five)::

    OMP_NUM_THREADS=1 python benchmarks/self_check_false_alarms.py --points 50

CIFAR-10 needs its local folder (``--data-dir``) and is skipped without it.
"""

from __future__ import annotations

import argparse
import importlib
import math
import time

import numpy as np
import torch

from optuna_ohgw.runner import check_trainer, open_trainer
from optuna_ohgw.seeding import trial_seed
from optuna_ohgw.studyfile import (
    StudyFileError,
    find_study_file,
    load_study_file,
    shipped_study_dir,
)
from optuna_ohgw.tasks import DatasetMissingError


def random_points(space: dict, n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(n):
        point = {}
        for name, dist in space.items():
            if dist.log:
                point[name] = float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
            else:
                point[name] = float(rng.uniform(dist.low, dist.high))
        points.append(point)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--studies", default="digits-asha,mnist1d-asha,fashion-asha,fashion-vit-asha,cifar10-asha"
    )
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="seed of the points' draw")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--verbose", action="store_true", help="one line per non-ok check")
    parser.add_argument(
        "--no-preload",
        action="store_true",
        help="leave torch._dynamo to the first check (a worker imports it before any trial: "
        "torch.optim's first optimizer in a process does, 1-9 s)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.no_preload:  # as runner/_worker.py does before any trial
        importlib.import_module("torch._dynamo")
    print(f"torch {torch.__version__}, {args.points} points per task, draw seed {args.seed}")
    for study in args.studies.split(","):
        config = load_study_file(find_study_file(study, [shipped_study_dir()]))
        try:
            check_trainer(config, data_dir=args.data_dir, download=False)
        except (DatasetMissingError, StudyFileError) as err:
            print(f"{study}: skipped ({err})")
            continue
        probe = open_trainer(config, device="cpu", data_dir=args.data_dir).make_probe(
            k=config.ohgw.k or None,
            n_pairs=config.ohgw.n_pairs,
            batch_size=config.ohgw.batch_size,
        )
        counts = {"ok": 0, "inconclusive": 0, "mismatch": 0}
        seconds = []
        for i, point in enumerate(random_points(config.space, args.points, args.seed)):
            seed = trial_seed(config.seed, i)
            start = time.perf_counter()
            check = probe.check(point, seed=seed)
            seconds.append(time.perf_counter() - start)
            verdict = getattr(check, "verdict", "ok" if check.ok else "mismatch")
            counts[verdict] += 1
            if args.verbose and verdict != "ok":
                print(f"  {study} point {i}: {verdict}: {check.message}")
        calls = []
        for i, point in enumerate(random_points(config.space, 5, args.seed)):
            start = time.perf_counter()
            probe(point, seed=trial_seed(config.seed, i))
            calls.append(time.perf_counter() - start)
        probe_seconds = float(np.median(calls))
        print(
            f"{study} (K={probe.k or 'auto'}): ok {counts['ok']}, "
            f"inconclusive {counts['inconclusive']}, "
            f"mismatch {counts['mismatch']} of {args.points}; check seconds: first "
            f"{seconds[0]:.3f}, warm median {np.median(seconds[1:]):.3f}; probe call (median) "
            f"{probe_seconds:.3f} (first/probe {seconds[0] / probe_seconds:.1f}x, warm/probe "
            f"{np.median(seconds[1:]) / probe_seconds:.1f}x)"
        )


if __name__ == "__main__":
    main()
