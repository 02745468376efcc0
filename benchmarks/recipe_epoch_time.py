"""Per-epoch time of a study's recipe (default: the built-in ViT on Fashion-MNIST), next to the
built-in ``fashion`` task's CNN epoch, measured in one run on this machine.

An epoch is the recipe's ``train_epoch`` plus its ``evaluate``; the first epoch is a warm-up and
is left out. Run from the repository root, on one core:

    OMP_NUM_THREADS=1 python benchmarks/recipe_epoch_time.py [--study fashion-vit-pasha]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from epoch_time import time_epochs

from optuna_ohgw.recipes import load_recipe, make_state, plan_recipe
from optuna_ohgw.recipes._plan import typical
from optuna_ohgw.studyfile import STUDY_DIRS, find_study_file, load_study_file
from optuna_ohgw.tasks import FashionMNISTTask


def recipe_epochs(study: str, repeats: int) -> list[float]:
    config = load_study_file(find_study_file(study, STUDY_DIRS))
    recipe = load_recipe(config.recipe)
    plan = plan_recipe(recipe, config.space)
    state = make_state(recipe, plan, typical(config.space), 0)
    times = []
    for epoch in range(repeats + 1):
        start = time.perf_counter()
        recipe.train_epoch(state, epoch)
        recipe.evaluate(state.model)
        times.append(time.perf_counter() - start)
    return times[1:]


def task_epochs(repeats: int) -> list[float]:
    task = FashionMNISTTask()
    return time_epochs(task, task.splits(0), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="fashion-vit-pasha")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"threads={torch.get_num_threads()} load average={os.getloadavg()[0]:.2f}")
    for label, times in (
        (args.study, recipe_epochs(args.study, args.repeats)),
        ("fashion (CNN task)", task_epochs(args.repeats)),
    ):
        spread = ", ".join(f"{t:.2f}" for t in times)
        print(f"{label:<22} epoch s median {statistics.median(times):.2f}  ({spread})")


if __name__ == "__main__":
    main()
