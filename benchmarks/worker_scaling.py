"""Scaling of ``ohgw-optuna run`` from 1 to N workers: trials and epochs per wall second.

Each worker count runs the same study file in a fresh folder (fresh default storage) with the
same budget, through the real command line.

    python benchmarks/worker_scaling.py --study digits-asha --n-trials 30 --workers 1 2
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import optuna

from optuna_ohgw.storage import open_storage

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="digits-asha")
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    cli = pathlib.Path(sys.executable).parent / "ohgw-optuna"
    study_file = ROOT / "studies" / f"{args.study}.toml"
    rows = []
    for n in args.workers:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="ohgw-scaling-"))
        start = time.perf_counter()
        subprocess.run(
            [
                str(cli),
                "run",
                "--study",
                str(study_file),
                "--n-workers",
                str(n),
                "--budget",
                f"n_trials={args.n_trials}",
            ],
            cwd=folder,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        storage = open_storage(f"journal:{folder / 'runs' / f'{args.study}.journal'}")
        study = optuna.load_study(study_name=args.study, storage=storage)
        done = [t for t in study.trials if t.state.is_finished()]
        epochs = sum(int(t.user_attrs.get("ohgw.epochs", 0)) for t in done)
        rows.append((n, len(done), epochs, wall))
        shutil.rmtree(folder)
    base_tps = rows[0][1] / rows[0][3]
    base_eps = rows[0][2] / rows[0][3]
    print(
        f"{'workers':>7} {'trials':>6} {'epochs':>6} {'wall s':>7} {'trials/s':>8} "
        f"{'epochs/s':>8} {'x trials/s':>10} {'x epochs/s':>10}"
    )
    for n, trials, epochs, wall in rows:
        print(
            f"{n:>7} {trials:>6} {epochs:>6} {wall:>7.1f} {trials / wall:>8.3f} "
            f"{epochs / wall:>8.2f} {trials / wall / base_tps:>10.2f} "
            f"{epochs / wall / base_eps:>10.2f}"
        )


if __name__ == "__main__":
    main()
