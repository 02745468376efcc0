"""Trials per second with N worker processes on PostgreSQL: directly vs through the gRPC proxy.

Starts ``ohgw-optuna storage-proxy`` on 127.0.0.1, then for each N runs a fresh study twice: N
``spawn``-ed processes call ``optimize`` with a near-empty objective (5 floats, 3 reports) on
``--pg-url`` directly, then on ``grpc://127.0.0.1:PORT``. The clock starts when every worker is
ready (a barrier) and stops when the last is done; meanwhile the parent samples the database's
connection count (``pg_stat_activity``, the connections tagged with this benchmark's
``application_name``) and keeps the peak.
On a small machine the absolute rates say little: read the ordering and the connection counts.

    URL=$(scripts/postgres.sh)
    nice -n 10 .venv/bin/python benchmarks/storage_proxy.py --pg-url "$URL" --workers 8,16,32
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import threading
import time
import uuid


def _objective(trial):  # type: ignore[no-untyped-def]
    xs = [trial.suggest_float(f"x{i}", -1.0, 1.0) for i in range(5)]
    for step in range(3):
        trial.report(sum(xs) * step, step)
    return sum(x * x for x in xs)


def _worker(url: str, name: str, n_trials: int, barrier, errors) -> None:  # type: ignore[no-untyped-def]
    import warnings

    import optuna

    from optuna_ohgw.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    study = optuna.load_study(
        study_name=name,
        storage=open_storage(url, heartbeat=False),
        sampler=optuna.samplers.RandomSampler(),
    )
    barrier.wait(timeout=600)
    try:
        study.optimize(_objective, n_trials=n_trials)
    except Exception:  # noqa: BLE001 - counted, reported
        errors.value += 1


APP = "ohgw-proxy-bench"
"""``application_name`` of this benchmark's database connections (others may share the DB)."""


def _tagged(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={APP}"


def _connections(engine) -> int:  # type: ignore[no-untyped-def]
    import sqlalchemy

    query = sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :app")
    with engine.connect() as conn:
        return int(conn.execute(query, {"app": APP}).scalar_one())


def _run(url: str, pg_url: str, n_workers: int, trials: int) -> tuple[float, int, int, int]:
    import optuna
    import sqlalchemy

    from optuna_ohgw.storage import open_storage

    name = f"ohgw-proxy-bench-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=open_storage(pg_url, heartbeat=False))
    ctx = mp.get_context("spawn")
    barrier, errors = ctx.Barrier(n_workers + 1), ctx.Value("i", 0)
    per = [trials // n_workers + (i < trials % n_workers) for i in range(n_workers)]
    procs = [ctx.Process(target=_worker, args=(url, name, k, barrier, errors)) for k in per]
    for p in procs:
        p.start()
    engine = sqlalchemy.create_engine(pg_url, poolclass=sqlalchemy.pool.NullPool)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _connections(engine))
            time.sleep(0.2)

    barrier.wait(timeout=600)
    start = time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    study = optuna.load_study(study_name=name, storage=open_storage(pg_url, heartbeat=False))
    finished = sum(t.state.is_finished() for t in study.trials)
    optuna.delete_study(study_name=name, storage=open_storage(pg_url, heartbeat=False))
    engine.dispose()
    return finished / seconds, peak, finished, errors.value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default=os.environ.get("OHGW_TEST_PG_URL"))
    parser.add_argument("--workers", default="8,16,32")
    parser.add_argument("--trials", type=int, default=320, help="trials per run, all workers")
    parser.add_argument("--threads", type=int, default=16, help="the proxy's threads")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not args.pg_url:
        sys.exit("error: pass --pg-url (or set OHGW_TEST_PG_URL); scripts/postgres.sh prints one")
    port = _free_port()
    proxy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cli.main import main; main()",
            "storage-proxy",
            "--port",
            str(port),
            "--threads",
            str(args.threads),
        ],
        env={**os.environ, "OHGW_STORAGE_URL": _tagged(args.pg_url)},
        stdout=subprocess.DEVNULL,
    )
    try:
        from optuna_ohgw.storage import open_grpc_proxy

        open_grpc_proxy(f"grpc://127.0.0.1:{port}", timeout=60)
        print(f"cpus={os.cpu_count()} trials/run={args.trials} proxy threads={args.threads}")
        print(
            f"{'workers':>7} {'storage':<7} {'trials/s':>9} {'peak db conns':>13} "
            f"{'finished':>8} {'errors':>6}"
        )
        for n in (int(w) for w in args.workers.split(",")):
            direct = _tagged(args.pg_url)
            for via, url in (("direct", direct), ("proxy", f"grpc://127.0.0.1:{port}")):
                rate, peak, finished, errors = _run(url, args.pg_url, n, args.trials)
                print(f"{n:>7} {via:<7} {rate:>9.1f} {peak:>13} {finished:>8} {errors:>6}")
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)


if __name__ == "__main__":
    main()
