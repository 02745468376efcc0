"""Seconds from SIGTERM to exit, with the running trial handed back: ``worker`` and ``run``,
idle and under load.

For each of ``worker`` (one foreground worker) and ``run`` (the parent of ``--n-workers``
workers), on a fresh journal, through the real command line (``--cli``): start it, wait until a
trial has trained a while, send SIGTERM and time the process's exit; then check that no trial
is left RUNNING and that the interrupted trial is enqueued again. "Loaded" runs the same with
one busy-looping process per core (a CPU burner) started before the signal.

    .venv/bin/python benchmarks/handback.py
    .venv/bin/python benchmarks/handback.py --cli /work/main/.venv/bin/ohgw-optuna
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import optuna
from optuna.trial import TrialState

from optuna_ohgw.storage import open_storage

STUDY = """\
name = "handback"
task = "digits"
max_epochs = 50

[scheduler]
name = "{scheduler}"

[budget]
n_trials = 100

[space]
lr = { low = 1e-2, high = 0.5, log = true }
"""


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        storage = open_storage(url, heartbeat=False, create=False)
        return optuna.load_study(study_name="handback", storage=storage).trials
    except Exception:  # noqa: BLE001 - not created yet
        return []


def _measure(cli: str, command: str, scheduler: str, loaded: bool, workers: int) -> str:
    with tempfile.TemporaryDirectory(prefix="ohgw-handback-") as tmp:
        cwd = pathlib.Path(tmp)
        (cwd / "handback.toml").write_text(STUDY.replace("{scheduler}", scheduler))
        url = f"journal:{cwd / 'handback.journal'}"
        args = [cli, command, "--study", "handback.toml", "--storage", url]
        if command == "run":
            args += ["--n-workers", str(workers)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 300
        while not any(len(t.intermediate_values) >= 2 for t in _trials(url)):
            if proc.poll() is not None or time.monotonic() > deadline:
                return f"did not start: {proc.communicate()[1].decode()[-300:]}"
            time.sleep(0.3)
        burners = []
        if loaded:
            burn = "while True: pass"
            burners = [
                subprocess.Popen([sys.executable, "-c", burn]) for _ in range(os.cpu_count() or 1)
            ]
            time.sleep(1.0)
        try:
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=120)
                seconds = time.monotonic() - start
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
                seconds = float("inf")
        finally:
            for b in burners:
                b.kill()
                b.wait()
        trials = _trials(url)
        running = [t.number for t in trials if t.state == TrialState.RUNNING]
        waiting = [t.number for t in trials if t.state == TrialState.WAITING]
        last = (err.decode(errors="replace").strip().splitlines() or ["-"])[-1][:90]
        return (
            f"{seconds:6.2f} s  exit {proc.returncode}; running after: {len(running)}, "
            f"enqueued again: {len(waiting)}; last line: {last}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", default=str(pathlib.Path(sys.executable).parent / "ohgw-optuna"))
    parser.add_argument("--scheduler", default="asha", help="asha or a promotion scheduler")
    parser.add_argument("--workers", type=int, default=2, help="workers of `run`")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"cli {args.cli}; scheduler {args.scheduler}; {os.cpu_count()} cores")
    for command in ("worker", "run"):
        for loaded in (False, True):
            label = f"{command:<6} {'loaded' if loaded else 'idle':<6}"
            print(label, _measure(args.cli, command, args.scheduler, loaded, args.workers))


if __name__ == "__main__":
    main()
