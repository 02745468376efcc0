"""Stopping ASHA vs promotion ASHA vs PASHA on the same seeds and number of configurations.

Every cell is a real ``ohgw-optuna run`` in a fresh folder (fresh default storage). Seeds are
interleaved across schedulers so machine noise hits all of them alike. Prints, per scheduler,
the medians over seeds of total epochs, wall seconds, best validation accuracy and the test
accuracy of the best configuration trained to the maximum resource.

    python benchmarks/scheduler_compare.py --task mnist1d --seeds 0 1 2 3 4 --n-trials 30
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import optuna
from optuna.trial import TrialState

from optuna_ohgw.storage import open_storage

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCHEDULERS = {"stopping ASHA": "asha", "promotion ASHA": "asha-promotion", "PASHA": "pasha"}


def measure(study: optuna.Study, max_epochs: int) -> dict[str, float]:
    trials = study.get_trials(deepcopy=False)
    epochs = sum(int(t.user_attrs.get("ohgw.epochs", 0)) for t in trials)
    values = [v for t in trials for v in t.intermediate_values.values()]
    full = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and max(t.intermediate_values, default=0) >= max_epochs
    ]
    best_full = max(full, key=lambda t: t.value) if full else None
    return {
        "epochs": epochs,
        "best_val": max(values) if values else float("nan"),
        "test_of_best_full": (
            float(best_full.user_attrs.get("test_accuracy", float("nan")))
            if best_full
            else float("nan")
        ),
        "n_full": len(full),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--ohgw", action="store_true", help="Keep OHGW on (default: vanilla).")
    parser.add_argument("--json", type=pathlib.Path, default=None)
    args = parser.parse_args()
    cli = pathlib.Path(sys.executable).parent / "ohgw-optuna"
    rows: list[dict] = []
    for seed in args.seeds:
        for label, sched in SCHEDULERS.items():
            study_file = ROOT / "studies" / f"{args.task}-{sched}.toml"
            folder = pathlib.Path(tempfile.mkdtemp(prefix="ohgw-sched-"))
            cmd = [
                str(cli),
                "run",
                "--study",
                str(study_file),
                "--seed",
                str(seed),
                "--budget",
                f"n_trials={args.n_trials}",
                "--n-workers",
                str(args.n_workers),
            ]
            if not args.ohgw:
                cmd.append("--no-ohgw")
            start = time.perf_counter()
            subprocess.run(
                cmd, cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            wall = time.perf_counter() - start
            name = f"{args.task}-{sched}" + ("" if args.ohgw else "-vanilla")
            storage = open_storage(f"journal:{folder / 'runs' / f'{name}.journal'}")
            study = optuna.load_study(study_name=name, storage=storage)
            max_epochs = int(study.user_attrs["ohgw.max_epochs"])
            row = {"scheduler": label, "seed": seed, "wall": wall, **measure(study, max_epochs)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print()
    print(
        f"{args.task}, {args.n_trials} configurations, seeds {args.seeds}, "
        f"{args.n_workers} workers, OHGW {'on' if args.ohgw else 'off'}; medians over seeds"
    )
    print(
        f"{'scheduler':<15} {'epochs':>7} {'wall s':>7} {'best val':>8} {'test@full':>9} "
        f"{'x epochs':>8} {'x wall':>7}"
    )
    base = [r for r in rows if r["scheduler"] == "stopping ASHA"]
    base_e = statistics.median(r["epochs"] for r in base)
    base_w = statistics.median(r["wall"] for r in base)
    for label in SCHEDULERS:
        sel = [r for r in rows if r["scheduler"] == label]
        med = {
            k: statistics.median(r[k] for r in sel)
            for k in ("epochs", "wall", "best_val", "test_of_best_full")
        }
        print(
            f"{label:<15} {med['epochs']:>7.0f} {med['wall']:>7.1f} {med['best_val']:>8.4f} "
            f"{med['test_of_best_full']:>9.4f} {base_e / med['epochs']:>8.2f} "
            f"{base_w / med['wall']:>7.2f}"
        )


if __name__ == "__main__":
    main()
