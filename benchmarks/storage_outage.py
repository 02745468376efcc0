"""Two "machines" through the storage proxy, the proxy killed for a while: what is lost?

Starts ``ohgw-optuna storage-proxy`` on 127.0.0.1 in front of ``--pg-url``, then one
``ohgw-optuna worker`` per machine (its own folder and TMPDIR) on ``grpc://127.0.0.1:PORT``.
Once both train, the proxy gets SIGKILL, stays down ``--down`` seconds and is started again on
the same port. Prints each worker's exit code and seconds, the lines they said about the
outage, and what the study holds at the end (states, configurations, anything left RUNNING).

    .venv/bin/python benchmarks/storage_outage.py --pg-url "$OHGW_TEST_PG_URL" --down 60
    .venv/bin/python benchmarks/storage_outage.py --cli /work/main/.venv/bin/ohgw-optuna ...
"""

from __future__ import annotations

import argparse
import collections
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import optuna

from optuna_ohgw import lineage
from optuna_ohgw.storage import open_storage

STUDY = """\
name = "{name}"
task = "digits"
max_epochs = {max_epochs}

[scheduler]
name = "{scheduler}"

[budget]
n_trials = {n_trials}

[space]
lr = {{ low = 1e-2, high = 0.5, log = true }}
momentum = {{ low = 0.0, high = 0.9 }}
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proxy(cli: str, pg_url: str, port: int, cwd: pathlib.Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [cli, "storage-proxy", "--storage", pg_url, "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    sys.exit("error: the storage proxy did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", default=str(pathlib.Path(sys.executable).parent / "ohgw-optuna"))
    parser.add_argument("--pg-url", default=os.environ.get("OHGW_TEST_PG_URL"), required=False)
    parser.add_argument("--down", type=float, default=60.0, help="seconds the proxy is down")
    parser.add_argument("--scheduler", default="pasha")
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--max-epochs", type=int, default=9)
    args = parser.parse_args()
    if not args.pg_url:
        sys.exit("error: pass --pg-url (or set OHGW_TEST_PG_URL)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"outage-bench-{uuid.uuid4().hex[:8]}"
    storage = open_storage(args.pg_url, heartbeat=False)
    with tempfile.TemporaryDirectory(prefix="ohgw-outage-") as tmp:
        root = pathlib.Path(tmp)
        port = _port()
        proxy = _proxy(args.cli, args.pg_url, port, root)
        shared = root / "shared-checkpoints"
        workers = []
        for m in range(2):
            cwd = root / f"machine{m}"
            cwd.mkdir()
            (cwd / f"{name}.toml").write_text(
                STUDY.format(
                    name=name,
                    scheduler=args.scheduler,
                    n_trials=args.n_trials,
                    max_epochs=args.max_epochs,
                )
            )
            env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(cwd)}
            url = f"grpc://127.0.0.1:{port}"
            cmd = [args.cli, "worker", "--study", f"{name}.toml", "--index", str(m),
                   "--storage", url, "--artifacts", str(shared)]  # fmt: skip
            workers.append(
                subprocess.Popen(
                    cmd,
                    cwd=cwd,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        start = time.monotonic()
        while True:
            try:
                trials = optuna.load_study(study_name=name, storage=storage).trials
            except KeyError:
                trials = []
            if sum(bool(t.intermediate_values) for t in trials) >= 2:
                break
            if any(w.poll() is not None for w in workers) or time.monotonic() - start > 600:
                sys.exit("error: the workers did not start training")
            time.sleep(0.5)
        proxy.send_signal(signal.SIGKILL)
        proxy.wait()
        killed = time.monotonic()
        print(f"proxy SIGKILLed {killed - start:.0f} s after start, down for {args.down:g} s")
        time.sleep(args.down)
        proxy = _proxy(args.cli, args.pg_url, port, root)
        print(f"proxy answers again {time.monotonic() - killed:.0f} s after the kill")
        for m, w in enumerate(workers):
            _, err = w.communicate(timeout=3600)
            said = [line for line in err.splitlines() if "storage" in line]
            tail = err.strip().splitlines()[-1:] if err.strip() else []
            traceback = "Traceback" in err
            print(f"machine {m}: exit {w.returncode} after {time.monotonic() - start:.0f} s; "
                  f"traceback: {traceback}; said: {said[:2] or tail}")  # fmt: skip
        proxy.send_signal(signal.SIGTERM)
        proxy.wait()
        trials = optuna.load_study(study_name=name, storage=storage).trials
        states = collections.Counter(t.state.name for t in trials)
        lost = [t.number for t in trials if lineage.LOST in t.user_attrs]
        configs = len(lineage.configurations(trials))
        folder = shared / name
        left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        print(f"trials: {dict(states)}; configurations: {configs} (n_trials {args.n_trials}); "
              f"lost: {lost}; files left in the store: {len(left)}")  # fmt: skip
    optuna.delete_study(study_name=name, storage=storage)


if __name__ == "__main__":
    main()
