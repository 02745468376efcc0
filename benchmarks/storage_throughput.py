"""Multi-process Optuna storage throughput benchmark.

Measures how many (near-empty) trials per second N worker *processes* can push through one
shared Optuna storage, and how many storage errors (e.g. ``database is locked``) they hit.

Storages:
  sqlite       RDBStorage on a file, ``PRAGMA journal_mode=WAL`` applied once to the db file
               before the run, busy timeout ``engine_kwargs={"connect_args": {"timeout": 60}}``
  sqlite-nowal same, but SQLite's default rollback journal (not in the default set)
  journal      ``JournalStorage(JournalFileBackend(path))`` (default symlink lock)
  postgresql   RDBStorage on ``--pg-url`` (skipped when no URL is given),
               e.g. the URL printed by ``scripts/postgres.sh``

Each worker (a ``spawn``-ed process) imports Optuna, then waits on a barrier; the clock starts
when every worker is ready and the barrier is released, and stops when the last worker is done.
Inside the timed region each worker calls ``optuna.load_study(...).optimize(obj, n_trials=k)``
(the objective suggests 5 floats and reports 3 intermediate values). The total number of
trials is fixed (``--trials``) and split across the workers. A storage error that escapes
``optimize`` is counted and the worker resumes with its remaining trials (at most
``--max-errors`` times per worker).

Example::

    URL=$(scripts/postgres.sh)
    .venv/bin/python benchmarks/storage_throughput.py --pg-url "$URL"
    .venv/bin/python benchmarks/storage_throughput.py --storages sqlite,journal \\
        --workers 1,2 --trials 80 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import sys
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ALL_STORAGES = ("sqlite", "sqlite-nowal", "journal", "postgresql")
DEFAULT_STORAGES = "sqlite,journal,postgresql"
STUDY_PREFIX = "ohgw-storage-bench-"


# --------------------------------------------------------------------------------------------
# Storage construction (used both in the parent and in the workers)
# --------------------------------------------------------------------------------------------


def make_storage(spec: dict[str, Any]) -> Any:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    kind = spec["kind"]
    if kind in ("sqlite", "sqlite-nowal"):
        return optuna.storages.RDBStorage(
            url=f"sqlite:///{spec['path']}",
            engine_kwargs={"connect_args": {"timeout": spec["sqlite_timeout"]}},
        )
    if kind == "journal":
        return JournalStorage(JournalFileBackend(spec["path"]))
    if kind == "postgresql":
        return optuna.storages.RDBStorage(url=spec["url"])
    raise ValueError(f"unknown storage kind: {kind}")


def prepare_storage(kind: str, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    """Create a fresh, empty storage for one run and return its (picklable) spec."""
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    spec: dict[str, Any] = {"kind": kind, "sqlite_timeout": args.sqlite_timeout}
    if kind in ("sqlite", "sqlite-nowal"):
        path = workdir / f"{tag}.db"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        if kind == "sqlite":
            # WAL is a persistent property of the database file: set it once, up front.
            con = sqlite3.connect(path)
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            con.close()
            if mode.lower() != "wal":
                raise RuntimeError(f"could not enable WAL on {path}: journal_mode={mode}")
        spec["path"] = str(path)
    elif kind == "journal":
        path = workdir / f"{tag}.log"
        for p in (path, Path(f"{path}.lock")):
            p.unlink(missing_ok=True)
        spec["path"] = str(path)
    elif kind == "postgresql":
        spec["url"] = args.pg_url
    else:
        raise ValueError(kind)
    return spec


def sqlite_journal_mode(path: str) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# Worker
# --------------------------------------------------------------------------------------------


def objective(trial: Any) -> float:
    xs = [trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(5)]
    value = sum(x * x for x in xs)
    for step in range(3):
        trial.report(value / (step + 1), step)
    return value


def make_sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"unknown sampler: {name}")


def short_error(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg[:120]}"


def worker_main(
    idx: int,
    spec: dict[str, Any],
    study_name: str,
    n_trials: int,
    sampler_name: str,
    max_errors: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    out: dict[str, Any] = {"idx": idx, "done": 0, "errors": [], "fatal": None}
    try:
        import optuna  # noqa: F401  (import cost is kept out of the timed region)

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        ready.set()
        go.wait()
        t0 = time.perf_counter()

        def count(_study: Any, _trial: Any) -> None:
            out["done"] += 1

        study = None
        while out["done"] < n_trials:
            try:
                if study is None:  # opening the storage can hit "database is locked" too
                    study = optuna.load_study(
                        study_name=study_name,
                        storage=make_storage(spec),
                        sampler=make_sampler(sampler_name, seed=idx),
                    )
                    out["load_s"] = time.perf_counter() - t0
                study.optimize(objective, n_trials=n_trials - out["done"], callbacks=[count])
            except Exception as exc:  # storage errors escape optimize(); count and resume
                out["errors"].append(short_error(exc))
                if len(out["errors"]) > max_errors:
                    raise
                time.sleep(0.05)
        out["elapsed"] = time.perf_counter() - t0
    except BaseException as exc:  # report instead of dying silently
        out["fatal"] = short_error(exc)
        out["traceback"] = traceback.format_exc(limit=5)
    finally:
        ready.set()
        results.put(out)


# --------------------------------------------------------------------------------------------
# One configuration
# --------------------------------------------------------------------------------------------


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_config(kind: str, n_workers: int, args: argparse.Namespace, rep: int) -> dict[str, Any]:
    import optuna

    tag = f"{kind}-w{n_workers}-r{rep}"
    spec = prepare_storage(kind, args, tag)
    study_name = f"{STUDY_PREFIX}{tag}-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=study_name, storage=make_storage(spec), direction="minimize")

    ctx = mp.get_context("spawn")
    go = ctx.Event()
    results = ctx.Queue()
    readies = []
    procs = []
    for i, k in enumerate(split(args.trials, n_workers)):
        ready = ctx.Event()
        p = ctx.Process(
            target=worker_main,
            args=(i, spec, study_name, k, args.sampler, args.max_errors, ready, go, results),
            daemon=True,
        )
        p.start()
        procs.append(p)
        readies.append(ready)
    for ready in readies:
        if not ready.wait(timeout=120):
            raise RuntimeError("a worker did not become ready within 120 s")

    t0 = time.perf_counter()
    go.set()
    outs: list[dict[str, Any]] = []
    timed_out = False
    deadline = t0 + args.config_timeout
    while len(outs) < n_workers:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            timed_out = True
            break
        try:
            outs.append(results.get(timeout=min(remaining, 1.0)))
        except Exception:  # queue.Empty
            if not any(p.is_alive() for p in procs) and results.empty():
                break
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.terminate()
            p.join()

    # Verify what actually landed in the storage.
    study = optuna.load_study(study_name=study_name, storage=make_storage(spec))
    states = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    complete = states.get("COMPLETE", 0)
    errors = [e for o in outs for e in o["errors"]]
    fatal = [o["fatal"] for o in outs if o.get("fatal")]
    row = {
        "storage": kind,
        "workers": n_workers,
        "rep": rep,
        "trials_requested": args.trials,
        "complete": complete,
        "states": dict(states),
        "wall_s": wall,
        "trials_per_s": complete / wall if wall > 0 else float("nan"),
        "errors": len(errors) + len(fatal),
        "error_kinds": dict(Counter(errors + fatal)),
        "timed_out": timed_out,
        "worker_elapsed_s": [round(o.get("elapsed", float("nan")), 3) for o in outs],
    }
    if kind in ("sqlite", "sqlite-nowal"):
        row["sqlite_journal_mode"] = sqlite_journal_mode(spec["path"])
    for o in outs:
        if o.get("traceback") and args.verbose:
            print(o["traceback"], file=sys.stderr)
    if kind == "postgresql" and not args.keep:
        optuna.delete_study(study_name=study_name, storage=make_storage(spec))
    return row


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median over repeats per (storage, workers)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["storage"], r["workers"]), []).append(r)
    out = []
    for (kind, w), rs in groups.items():
        kinds: Counter[str] = Counter()
        states: Counter[str] = Counter()
        for r in rs:
            kinds.update(r["error_kinds"])
            states.update(r["states"])
        out.append(
            {
                "storage": kind,
                "workers": w,
                "reps": len(rs),
                "complete": sum(r["complete"] for r in rs),
                "requested": sum(r["trials_requested"] for r in rs),
                "wall_s": statistics.median(r["wall_s"] for r in rs),
                "tps": statistics.median(r["trials_per_s"] for r in rs),
                "tps_min": min(r["trials_per_s"] for r in rs),
                "tps_max": max(r["trials_per_s"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
                "not_complete": {k: n for k, n in states.items() if k != "COMPLETE"},
                "error_kinds": dict(kinds),
                "timed_out": any(r["timed_out"] for r in rs),
            }
        )
    return out


def print_table(summary: list[dict[str, Any]], cores: int) -> None:
    header = (
        f"{'storage':<13}{'workers':>8}{'complete':>16}{'wall s':>9}"
        f"{'trials/s':>10}{'(min-max)':>15}{'errors':>8}  notes"
    )
    print(header)
    print("-" * len(header))
    for s in summary:
        notes = []
        if s["workers"] > cores:
            notes.append(f"oversubscribed ({cores} cores)")
        if s["timed_out"]:
            notes.append("TIMED OUT")
        if s["not_complete"]:
            left = ", ".join(f"{n} {k}" for k, n in s["not_complete"].items())
            notes.append(f"left in storage: {left}")
        if s["error_kinds"]:
            notes.append("; ".join(f"{n}x {k}" for k, n in s["error_kinds"].items()))
        complete = f"{s['complete']}/{s['requested']}"
        spread = f"{s['tps_min']:.1f}-{s['tps_max']:.1f}"
        print(
            f"{s['storage']:<13}{s['workers']:>8}{complete:>16}{s['wall_s']:>9.2f}"
            f"{s['tps']:>10.1f}{spread:>15}{s['errors']:>8}  {', '.join(notes)}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--storages",
        default=DEFAULT_STORAGES,
        help=f"comma list from {','.join(ALL_STORAGES)} (default: {DEFAULT_STORAGES}; "
        "postgresql is skipped without --pg-url)",
    )
    ap.add_argument("--workers", default="1,2,4,8", help="comma list of worker-process counts")
    ap.add_argument("--trials", type=int, default=160, help="total trials per configuration")
    ap.add_argument("--repeats", type=int, default=1, help="runs per configuration (median)")
    ap.add_argument("--pg-url", default=os.environ.get("OHGW_PG_URL"), help="PostgreSQL URL")
    ap.add_argument("--sampler", choices=("random", "tpe"), default="random")
    ap.add_argument("--sqlite-timeout", type=float, default=60.0, help="sqlite busy timeout, s")
    ap.add_argument("--max-errors", type=int, default=50, help="per-worker error budget")
    ap.add_argument("--config-timeout", type=float, default=120.0, help="per-run limit, s")
    ap.add_argument("--workdir", default="runs/storage_bench", help="where db/log files go")
    ap.add_argument("--json", help="also write all raw rows + summary to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep db files / postgres studies")
    ap.add_argument("-v", "--verbose", action="store_true", help="print worker tracebacks")
    args = ap.parse_args(argv)
    args.storage_list = [s.strip() for s in args.storages.split(",") if s.strip()]
    bad = sorted(set(args.storage_list) - set(ALL_STORAGES))
    if bad:
        ap.error(f"unknown storages: {bad}")
    args.worker_list = [int(w) for w in args.workers.split(",") if w.strip()]
    if "postgresql" in args.storage_list and not args.pg_url:
        print("note: no --pg-url / OHGW_PG_URL given; skipping postgresql", file=sys.stderr)
        args.storage_list.remove("postgresql")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cores = os.cpu_count() or 1
    print(
        f"optuna {optuna.__version__}, python {sys.version.split()[0]}, {cores} CPU cores, "
        f"{args.trials} trials/config, sampler={args.sampler}, repeats={args.repeats}",
        file=sys.stderr,
    )
    rows = []
    t_start = time.perf_counter()
    for rep in range(args.repeats):
        for kind in args.storage_list:
            for w in args.worker_list:
                row = run_config(kind, w, args, rep)
                rows.append(row)
                print(
                    f"  [{time.perf_counter() - t_start:6.1f}s] {kind:<12} w={w} rep={rep}: "
                    f"{row['complete']}/{row['trials_requested']} in {row['wall_s']:.2f}s = "
                    f"{row['trials_per_s']:.1f}/s, errors={row['errors']} {row['error_kinds']}",
                    file=sys.stderr,
                    flush=True,
                )
    summary = summarize(rows)
    print()
    print_table(summary, cores)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 1 if any(s["timed_out"] for s in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
