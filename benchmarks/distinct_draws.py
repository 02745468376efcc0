"""Duplicate draws across "machines" and restarts that share one storage.

Two scenarios, each on a fresh journal in a shared temporary folder, through the real command
line (``--cli``, so another checkout's ``ohgw-optuna`` can be measured the same way):

* ``two machines``: two ``ohgw-optuna run --n-workers 1`` started at once from different
  folders (each numbers its worker 0), sharing the study and its budget;
* ``restarts``: ``ohgw-optuna worker --index 0`` run to a budget, then run again with the same
  index to a larger one (a preempted worker restarted).

A duplicate is a configuration whose base-sampler draw (``ohgw.raw.*``, before the warm-start
nudge, which differs per trial anyway) equals an earlier configuration's; only the first trial
of each configuration counts (resumed segments are not new draws).

    .venv/bin/python benchmarks/distinct_draws.py
    .venv/bin/python benchmarks/distinct_draws.py --cli /work/main/.venv/bin/ohgw-optuna
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

import optuna

from optuna_ohgw import attrs, lineage
from optuna_ohgw.storage import open_storage

STUDY = """\
name = "draws"
task = "digits"
seed = 0
max_epochs = {max_epochs}

[sampler]
name = "{sampler}"

[scheduler]
name = "asha"

[budget]
n_trials = {n_trials}

[space]
lr = {{ low = 1e-2, high = 0.5, log = true }}
weight_decay = {{ low = 1e-6, high = 1e-3, log = true }}
momentum = {{ low = 0.0, high = 0.9 }}
"""


def _machine(root: pathlib.Path, name: str, study: str) -> pathlib.Path:
    cwd = root / name
    (cwd / "studies").mkdir(parents=True)
    (cwd / "studies" / "draws.toml").write_text(study)
    return cwd


def _start(cli: str, cwd: pathlib.Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(cwd)}
    return subprocess.Popen(
        [cli, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _wait(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            sys.exit(f"error: a machine failed: {err.decode(errors='replace').strip()[-300:]}")


def _duplicates(url: str) -> tuple[int, int]:
    """(configurations, configurations whose parameters an earlier one already had)."""
    study = optuna.load_study(study_name="draws", storage=open_storage(url, create=False))
    firsts = [t for t in study.trials if lineage.config_of(t) == t.number and t.params]
    seen: set[tuple[tuple[str, float], ...]] = set()
    repeats = 0
    for t in sorted(firsts, key=lambda t: t.number):
        raw = {k: t.user_attrs.get(attrs.raw(k), v) for k, v in t.params.items()}
        key = tuple(sorted((k, round(float(v), 12)) for k, v in raw.items()))
        repeats += key in seen
        seen.add(key)
    return len(firsts), repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", default=str(pathlib.Path(sys.executable).parent / "ohgw-optuna"))
    parser.add_argument("--n-trials", type=int, default=16, help="configurations per scenario")
    parser.add_argument("--max-epochs", type=int, default=1)
    parser.add_argument("--sampler", default="tpe")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"cli {args.cli}; sampler {args.sampler}; {args.n_trials} configurations per scenario")
    with tempfile.TemporaryDirectory(prefix="ohgw-draws-") as tmp:
        root = pathlib.Path(tmp)
        text = STUDY.format(
            max_epochs=args.max_epochs, n_trials=args.n_trials, sampler=args.sampler
        )
        url = f"journal:{root / 'shared' / 'machines.journal'}"
        procs = [
            _start(
                args.cli,
                _machine(root, f"machine{m}", text),
                "run",
                "--study",
                "draws",
                "--storage",
                url,
                "--n-workers",
                "1",
            )
            for m in range(2)
        ]
        _wait(procs)
        n, dup = _duplicates(url)
        print(f"two machines: {dup} of {n} configurations repeat an earlier draw")
        url = f"journal:{root / 'shared' / 'restarts.journal'}"
        cwd = _machine(root, "restarted", text)
        for budget in (args.n_trials // 2, args.n_trials):
            _wait([_start(args.cli, cwd, "worker", "--study", "draws", "--storage", url,
                          "--index", "0", "--budget", f"n_trials={budget}")])  # fmt: skip
        n, dup = _duplicates(url)
        print(f"restarts (worker --index 0, twice): {dup} of {n} configurations repeat a draw")


if __name__ == "__main__":
    main()
