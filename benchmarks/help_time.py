"""``ohgw-optuna --help`` against ``python -c "import optuna"``, measured in one run.

Each repeat starts both as fresh processes, interleaved; the figure is the ratio of medians
(target: <= 1.5). Run from the repository root:

    python benchmarks/help_time.py --repeats 9
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    env_note = os.environ.get("PYTHONPATH", "")
    baseline = [sys.executable, "-c", "import optuna"]
    help_cmd = [sys.executable, "-m", "cli.main", "--help"]
    _seconds(baseline), _seconds(help_cmd)  # warm the file cache
    optuna_s, help_s = [], []
    for _ in range(args.repeats):
        optuna_s.append(_seconds(baseline))
        help_s.append(_seconds(help_cmd))
    a, b = statistics.median(optuna_s), statistics.median(help_s)
    print(f"python: {sys.executable} (PYTHONPATH={env_note or '-'}), {args.repeats} repeats")
    print(f"python -c 'import optuna'   median {a:.3f} s  (min {min(optuna_s):.3f})")
    print(f"ohgw-optuna --help          median {b:.3f} s  (min {min(help_s):.3f})")
    print(f"ratio of medians            {b / a:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
