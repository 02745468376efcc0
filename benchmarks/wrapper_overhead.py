"""How much does wrapping TPE in OHGWSampler cost when the probe itself costs nothing?

Compares ``OHGWSampler(TPESampler(seed), probe=<zero-cost FunctionProbe>, step="none",
search_space=<declared>)`` with a plain ``TPESampler(seed)`` on an in-memory study whose
objective only suggests five floats. With step "none" and the floats suggested in the declared
order, the wrapped sampler draws exactly the same values as the plain one, so both runs do the
same TPE work and the difference is the wrapper: the warm-start bookkeeping, the probe call and
the user-attr writes.

Two timings per run, summed over all trials: "sampling" is ``study.ask()`` plus the five suggests
(where every sampler hook but after_trial runs), "total" adds ``study.tell()``. Both are taken as
process CPU time (robust when other jobs share the cores) and as wall time. Runs alternate plain /
wrapped (the order flips every repeat) and the reported number is the median over repeats.

    .venv/bin/python benchmarks/wrapper_overhead.py [--trials 200] [--repeats 5] [--profile]
    .venv/bin/python benchmarks/wrapper_overhead.py --storages   # attr-write cost per storage
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from optuna_ohgw import FunctionProbe, OHGWSampler

SPACE = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
    "momentum": FloatDistribution(0.0, 0.99),
    "dropout": FloatDistribution(0.0, 0.5),
    "label_smoothing": FloatDistribution(0.0, 0.2, step=0.01),
}
NAMES = tuple(SPACE)
ZERO_GRADS = dict.fromkeys(NAMES, 0.0)


def zero_cost(params: object) -> tuple[float, dict[str, float]]:
    return 0.0, ZERO_GRADS


def make_sampler(kind: str, seed: int) -> BaseSampler:
    if kind == "plain":
        return TPESampler(seed=seed)
    return OHGWSampler(
        TPESampler(seed=seed),
        FunctionProbe(zero_cost, NAMES),
        step="none",
        search_space=SPACE,
        seed=seed,
    )


class _TimedBase(BaseSampler):
    """Forwards to a real sampler and adds up the CPU seconds spent inside it."""

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner
        self.seconds = 0.0

    def _timed(self, name: str, *args: Any) -> Any:
        start = time.process_time()
        try:
            return getattr(self.inner, name)(*args)
        finally:
            self.seconds += time.process_time() - start

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()

    def infer_relative_search_space(self, *args: Any) -> Any:
        return self._timed("infer_relative_search_space", *args)

    def sample_relative(self, *args: Any) -> Any:
        return self._timed("sample_relative", *args)

    def sample_independent(self, *args: Any) -> Any:
        return self._timed("sample_independent", *args)

    def before_trial(self, *args: Any) -> None:
        self._timed("before_trial", *args)

    def after_trial(self, *args: Any) -> None:
        self._timed("after_trial", *args)


class _TimedOHGW(OHGWSampler):
    """OHGWSampler that adds up the CPU seconds spent in its hooks (base calls included)."""

    seconds = 0.0

    def _timed(self, name: str, *args: Any) -> Any:
        start = time.process_time()
        try:
            return getattr(super(), name)(*args)
        finally:
            self.seconds += time.process_time() - start

    def infer_relative_search_space(self, *args: Any) -> Any:
        return self._timed("infer_relative_search_space", *args)

    def sample_relative(self, *args: Any) -> Any:
        return self._timed("sample_relative", *args)

    def sample_independent(self, *args: Any) -> Any:
        return self._timed("sample_independent", *args)

    def before_trial(self, *args: Any) -> None:
        self._timed("before_trial", *args)

    def after_trial(self, *args: Any) -> None:
        self._timed("after_trial", *args)


def own_time(n_trials: int, seed: int) -> tuple[float, float]:
    """(CPU seconds spent in the wrapper's own code, CPU seconds of the whole run).

    The wrapper's hooks are timed with the base sampler's calls subtracted, so what is left is
    the warm start itself (bookkeeping, probe call, step, attr writes), measured inside one run
    instead of as the small difference of two noisy runs.
    """
    base = _TimedBase(TPESampler(seed=seed))
    sampler = _TimedOHGW(
        base, FunctionProbe(zero_cost, NAMES), step="none", search_space=SPACE, seed=seed
    )
    study = optuna.create_study(sampler=sampler)
    start = time.process_time()
    for _ in range(n_trials):
        trial = study.ask()
        values = [
            trial.suggest_float(n, d.low, d.high, log=d.log, step=d.step) for n, d in SPACE.items()
        ]
        study.tell(trial, sum((v - 0.05) ** 2 for v in values))
    return sampler.seconds - base.seconds, time.process_time() - start


def run(kind: str, n_trials: int, seed: int) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Return {timing name: seconds} and the params of every trial."""
    study = optuna.create_study(sampler=make_sampler(kind, seed))
    t = dict.fromkeys(("sampling_cpu", "total_cpu", "sampling_wall", "total_wall"), 0.0)
    for _ in range(n_trials):
        c0, w0 = time.process_time(), time.perf_counter()
        trial = study.ask()
        values = [
            trial.suggest_float(n, d.low, d.high, log=d.log, step=d.step) for n, d in SPACE.items()
        ]
        c1, w1 = time.process_time(), time.perf_counter()
        study.tell(trial, sum((v - 0.05) ** 2 for v in values))
        c2, w2 = time.process_time(), time.perf_counter()
        t["sampling_cpu"] += c1 - c0
        t["total_cpu"] += c2 - c0
        t["sampling_wall"] += w1 - w0
        t["total_wall"] += w2 - w0
    return t, [t.params for t in study.get_trials(deepcopy=False)]


def storage_costs(seed: int) -> None:
    """Milliseconds per trial spent writing the warm start's user attrs, per storage."""
    from optuna_ohgw import _optuna_compat as compat

    write = compat.set_user_attrs
    spent: list[float] = []

    def timed(*args: Any) -> None:
        start = time.perf_counter()
        write(*args)
        spent.append(time.perf_counter() - start)

    compat.set_user_attrs = timed
    try:
        with tempfile.TemporaryDirectory() as tmp:
            storages: list[tuple[str, Any, int]] = [
                ("in-memory", None, 200),
                ("journal file", JournalStorage(JournalFileBackend(f"{tmp}/s.journal")), 40),
                ("sqlite", f"sqlite:///{tmp}/s.db", 20),
            ]
            for label, storage, n_trials in storages:
                spent.clear()
                study = optuna.create_study(storage=storage, sampler=make_sampler("wrapped", seed))
                for _ in range(n_trials):
                    trial = study.ask()
                    for n, d in SPACE.items():
                        trial.suggest_float(n, d.low, d.high, log=d.log, step=d.step)
                    study.tell(trial, 0.0)
                n_attrs = sum(k.startswith("ohgw.") for k in study.trials[-1].user_attrs)
                print(
                    f"{label:13s} {n_attrs} ohgw attrs per trial written in "
                    f"{1e3 * statistics.median(spent):.3f} ms (median over {n_trials} trials)"
                )
    finally:
        compat.set_user_attrs = write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile one wrapped run")
    parser.add_argument(
        "--storages", action="store_true", help="time the attr writes on memory/journal/sqlite"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    if args.storages:
        storage_costs(args.seed)
        return

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run("wrapped", args.trials, args.seed)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        return

    run("plain", 20, args.seed)  # warm up imports and caches
    run("wrapped", 20, args.seed)
    times: dict[str, list[dict[str, float]]] = {"plain": [], "wrapped": []}
    params: dict[str, list[dict[str, float]]] = {}
    for rep in range(args.repeats):
        order = ("plain", "wrapped") if rep % 2 == 0 else ("wrapped", "plain")
        for kind in order:
            timing, params[kind] = run(kind, args.trials, args.seed)
            times[kind].append(timing)
    same = params["plain"] == params["wrapped"]

    print(
        f"{args.trials} trials x {args.repeats} repeats (alternating), "
        f"TPESampler(seed={args.seed}), 5 floats, in-memory study; medians over repeats"
    )
    print(f"wrapped trials draw bit-identical params to plain: {same}")
    labels = {
        "sampling_cpu": "sampling CPU (ask + suggests)",
        "total_cpu": "total CPU (ask + suggests + tell)",
        "sampling_wall": "sampling wall",
        "total_wall": "total wall",
    }
    for key, label in labels.items():
        plain = statistics.median(t[key] for t in times["plain"])
        wrapped = statistics.median(t[key] for t in times["wrapped"])
        print(
            f"{label:34s} plain {plain:7.3f} s   wrapped {wrapped:7.3f} s   "
            f"ratio {wrapped / plain:.3f} ({100 * (wrapped / plain - 1):+.1f}%)"
        )
    per_rep = [w["total_cpu"] / p["total_cpu"] for p, w in zip(times["plain"], times["wrapped"])]
    print("total CPU ratio per repeat: " + " ".join(f"{r:.3f}" for r in per_rep))
    plain_total = min(t["total_cpu"] for t in times["plain"])
    wrapped_total = min(t["total_cpu"] for t in times["wrapped"])
    print(
        f"best of {args.repeats} (total CPU): plain {plain_total:.3f} s, wrapped "
        f"{wrapped_total:.3f} s, ratio {wrapped_total / plain_total:.3f}"
    )
    own = [own_time(args.trials, args.seed)[0] for _ in range(args.repeats)]
    plain_median = statistics.median(t["total_cpu"] for t in times["plain"])
    for label, own_s, ref in (
        ("median", statistics.median(own), plain_median),
        ("best", min(own), plain_total),
    ):
        print(
            f"wrapper's own CPU time (hooks minus base sampler), {label} of {args.repeats}: "
            f"{own_s:.4f} s = {1e3 * own_s / args.trials:.3f} ms/trial = "
            f"{100 * own_s / ref:.1f}% of the plain run ({label})"
        )
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
