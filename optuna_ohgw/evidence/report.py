"""The bench report: tables, statistics, success criteria and plots of a bench grid.

A bench grid is a set of studies on one storage, each named
``bench-{task}-{scheduler}-{variant}-s{seed}`` (:data:`STUDY_NAME`) and called a *cell*.
Cells are found by their names alone.

Comparisons are paired by seed within ``(task, scheduler)``: every variant against ``vanilla``.
See :mod:`optuna_ohgw.evidence.stats` for the statistics and the handling of censored times.

Success criteria (from the seed claim), evaluated per ``(task, scheduler, variant)``:

1. Time to target: ratio of medians ``median(variant) / median(vanilla)`` on the
   :data:`PRIMARY_CLOCK` (``"compute"``: summed compute seconds, the GPU-hours analogue)
   ``<= 0.85`` (a reduction of at least 15%) *and* the paired two-sided Wilcoxon ``p < 0.05``.
2. Final accuracy: ``(median(vanilla) - median(variant)) / median(vanilla) <= 0.002`` (a relative
   drop of at most 0.2%; any improvement holds), on the best test accuracy (the incumbent's,
   picked by validation) when every seed of both arms has one, else on the best validation value.
3. Extra compute: the median over seeds of ``probe_seconds / (total_compute - probe_seconds)``
   (the warm-start probes' compute over the rest) ``<= 0.05``.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import math
import pathlib
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna

from optuna_ohgw import attrs, lineage
from optuna_ohgw.evidence import stats
from optuna_ohgw.evidence.grid import VARIANTS as VARIANT_RULES
from optuna_ohgw.evidence.metrics import (
    CLOCKS,
    FirstEpoch,
    Move,
    StudyMetrics,
    compute_metrics,
    first_epochs,
    ranked_configurations,
    warm_start_moves,
)
from optuna_ohgw.studyfile import SAMPLERS, SCHEDULERS

VARIANTS = tuple(VARIANT_RULES)
"""The variant names, in the order tables list them."""
BASELINE = "vanilla"
OHGW_MAIN = "ohgw-normalized"
_VARIANT = "(?P<variant>" + "|".join(re.escape(v) for v in VARIANTS) + ")"
_SCHEDULER = (
    "(?P<scheduler>"
    + "|".join(re.escape(s) for s in sorted(SCHEDULERS, key=len, reverse=True))
    + ")(?:-(?P<sampler>"
    + "|".join(re.escape(s) for s in SAMPLERS)
    + "))?(?:-w(?P<workers>\\d+)(?P<ties>r?))?"
)
STUDY_NAME = re.compile(rf"^bench-(?P<task>.+?)-{_SCHEDULER}-{_VARIANT}-s(?P<seed>\d+)$")
"""``bench-{task}-{scheduler}[-{sampler}][-w{N}[r]]-{variant}-s{seed}``; :func:`parse_name` also
accepts ``bench-{task}-{scheduler}[-{sampler}][-w{N}[r]]-s{seed}-{variant}``
(:data:`STUDY_NAME_SEED_FIRST`, what ``bench`` writes). No sampler in the name means TPE, no
``-wN`` one worker."""
STUDY_NAME_SEED_FIRST = re.compile(
    rf"^bench-(?P<task>.+?)-{_SCHEDULER}-s(?P<seed>\d+)-{_VARIANT}$"
)
PRIMARY_CLOCK = "compute"
MAX_RATIO = 0.85
ALPHA = 0.05
MAX_ACC_DROP = 0.002
MAX_EXTRA_COMPUTE = 0.05
N_BOOT = 2000

CSV_FIELDS = (
    "task",
    "scheduler",
    "variant",
    "seed",
    "study",
    "workers",
    "virtual",
    "target",
    "ttt_epochs",
    "ttt_compute",
    "ttt_wall",
    "censored_epochs",
    "censored_compute",
    "censored_wall",
    "budget_epochs",
    "budget_compute",
    "budget_wall",
    "best_val",
    "best_test",
    "total_compute",
    "probe_seconds",
    "probe_share",
    "extra_compute",
    "total_epochs",
    "n_trials",
    "probe_ok",
    "probe_failed",
)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One study of the grid, with its metrics and per-configuration hypergradients."""

    name: str
    task: str
    scheduler: str
    variant: str
    seed: int
    metrics: StudyMetrics
    grads: list[tuple[str, float, float]]
    """``(parameter, ohgw.grad.<p>, the configuration's best validation value)``."""
    probe_status: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Trials per kind of ``ohgw.status`` (``ok``, ``skipped``, ``error``, ...)."""
    moves: list[Move] = dataclasses.field(default_factory=list)
    """Every warm-start step of the cell (:func:`~.metrics.warm_start_moves`)."""
    reprobe_moves: list[Move] = dataclasses.field(default_factory=list)
    """Every re-probe step at a promotion (``reprobe=True``)."""
    first_epochs: list[FirstEpoch] = dataclasses.field(default_factory=list)
    """Every configuration's first epoch and raw draw (:func:`~.metrics.first_epochs`)."""
    first_config_best: float | None = None
    """Best validation value of configuration 0, the study's first draw, over all its epochs."""
    workers: int = 1
    """Workers the cell ran with (``-wN`` in its name; none means one)."""
    virtual: bool = False
    """Whether they were simulated (:mod:`optuna_ohgw.virtual`) or worker processes."""
    code: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The commit, machine and wall seconds of the cell's run
    (:data:`~optuna_ohgw.evidence.grid.CODE_ATTR`; empty for cells from before it)."""

    @property
    def probe_failed(self) -> int:
        return sum(self.probe_status.get(kind, 0) for kind in attrs.FAILED_STATUSES)


def parse_name(name: str) -> dict[str, Any] | None:
    """``{task, scheduler, variant, seed, workers}`` of a bench study name (either order of seed
    and variant), else ``None``. A cell of a non-TPE sampler has ``scheduler`` ``"asha/random"``
    (scheduler, then sampler), one of N > 1 workers ``"asha@8"`` (``"asha@8/random"``), or
    ``"asha@8r"`` where the virtual workers' ties were broken in a seeded random order (names
    ``-w8r``), so that every table keeps the samplers', the worker counts' and the executors'
    arms apart."""
    m = STUDY_NAME.match(name) or STUDY_NAME_SEED_FIRST.match(name)
    if m is None:
        return None
    out: dict[str, Any] = m.groupdict()
    out["seed"] = int(out["seed"])
    out["workers"] = int(out["workers"] or 1)
    sampler = out.pop("sampler")
    seeded = bool(out.pop("ties"))
    if out["workers"] > 1:
        out["scheduler"] = f"{out['scheduler']}@{out['workers']}{'r' if seeded else ''}"
    if sampler and sampler != "tpe":
        out["scheduler"] = f"{out['scheduler']}/{sampler}"
    return out


def _grads(trials: Sequence[optuna.trial.FrozenTrial], direction: str) -> list:
    best = dict(ranked_configurations(trials, direction))
    prefix = attrs.grad("")
    out = []
    for t in trials:
        if t.user_attrs.get(attrs.STATUS) != "ok":
            continue
        outcome = best.get(lineage.config_of(t))
        if outcome is None:
            continue
        for key, raw in sorted(t.user_attrs.items()):
            if key.startswith(prefix) and isinstance(raw, int | float) and math.isfinite(raw):
                out.append((key[len(prefix) :], float(raw), float(outcome)))
    return out


def load_cells(
    storage: str | optuna.storages.BaseStorage,
    task: str | None = None,
    *,
    finished_only: bool = False,
) -> list[Cell]:
    """Every bench cell on ``storage`` (of ``task`` when given), sorted by name; with
    ``finished_only``, only the cells whose run ended with the budget spent (``bench`` marks
    them), so a grid still running shows no half-run cell."""
    from optuna_ohgw.evidence.grid import CODE_ATTR, DONE_ATTR, WORKERS_ATTR

    cells = []
    summaries = [
        (s, info)
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if (info := parse_name(s.study_name)) is not None
        and (task is None or info["task"] == task)
        and (not finished_only or s.user_attrs.get(DONE_ATTR))
    ]
    fallback = default_targets(storage, summaries)
    for summary, info in summaries:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        try:
            tau = None if "ohgw.target" in study.user_attrs else fallback.get(info["task"])
            m = compute_metrics(study, tau)
        except ValueError as err:  # no target, direction not set: not a usable cell
            optuna.logging.get_logger(__name__).warning(f"{summary.study_name}: skipped ({err})")
            continue
        trials = study.get_trials(deepcopy=False)
        status = collections.Counter(
            attrs.status_kind(t.user_attrs[attrs.STATUS])
            for t in trials
            if attrs.STATUS in t.user_attrs
        )
        cells.append(
            Cell(
                summary.study_name,
                metrics=m,
                grads=_grads(trials, m.direction),
                probe_status=dict(status),
                moves=warm_start_moves(trials, m.direction),
                reprobe_moves=warm_start_moves(trials, m.direction, reprobe=True),
                first_epochs=first_epochs(trials),
                first_config_best=dict(ranked_configurations(trials, m.direction)).get(0),
                virtual=bool((summary.user_attrs.get(WORKERS_ATTR) or {}).get("virtual")),
                code=dict(summary.user_attrs.get(CODE_ATTR) or {}),
                **info,
            )
        )
    return sorted(cells, key=lambda c: (c.task, c.scheduler, c.variant, c.seed))


def default_targets(
    storage: str | optuna.storages.BaseStorage, summaries: Sequence[tuple[Any, dict[str, Any]]]
) -> dict[str, float]:
    """``task -> target`` for tasks whose study file sets no ``target`` (a user's recipe): the
    median over the task's vanilla cells of the best value each reached, so time to target
    asks how soon each arm gets where vanilla typically ends."""
    best: dict[str, list[float]] = {}
    for summary, info in summaries:
        if info["variant"] != "vanilla" or summary.user_attrs.get("ohgw.target") is not None:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        try:
            best.setdefault(info["task"], []).append(float(study.best_value))
        except ValueError:  # no finished trial yet
            continue
    return {task: float(statistics.median(values)) for task, values in best.items()}


def row_of(cell: Cell) -> dict[str, Any]:
    """One CSV row (see :data:`CSV_FIELDS`)."""
    m = cell.metrics
    row: dict[str, Any] = {
        "task": cell.task,
        "scheduler": cell.scheduler,
        "variant": cell.variant,
        "seed": cell.seed,
        "study": cell.name,
        "workers": cell.workers,
        "virtual": cell.virtual,
        "target": m.target,
    }
    for clock in CLOCKS:
        ttt = m.time_to_target[clock]
        row[f"ttt_{clock}"] = ttt
        row[f"censored_{clock}"] = ttt is None
        row[f"budget_{clock}"] = m.budget[clock]
    rest = m.total_compute - m.probe_seconds
    row.update(
        best_val=m.best_value,
        best_test=m.best_test_accuracy,
        total_compute=m.total_compute,
        probe_seconds=m.probe_seconds,
        probe_share=m.probe_share,
        extra_compute=(m.probe_seconds / rest) if rest > 0 else None,
        total_epochs=m.total_epochs,
        n_trials=sum(m.counts.values()),
        probe_ok=cell.probe_status.get("ok", 0),
        probe_failed=cell.probe_failed,
    )
    return row


def collect(
    storage: str | optuna.storages.BaseStorage, task: str | None = None
) -> list[dict[str, Any]]:
    """One row per bench cell on ``storage`` (see :func:`row_of`)."""
    return [row_of(c) for c in load_cells(storage, task)]


# ----- comparisons ------------------------------------------------------------------------------


def _median(values: Iterable[float | None]) -> float | None:
    xs = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.median(xs)) if xs else None


def _arms(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, dict]]:
    """``(task, scheduler) -> variant -> seed -> row``."""
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        out.setdefault((r["task"], r["scheduler"]), {}).setdefault(r["variant"], {})[r["seed"]] = r
    return out


def _order(variants: Iterable[str]) -> list[str]:
    rank = {v: i for i, v in enumerate(VARIANTS)}
    return sorted(variants, key=lambda v: (rank.get(v, len(rank)), v))


@dataclasses.dataclass
class Comparison:
    """One ``(task, scheduler, variant)`` against vanilla (paired by seed)."""

    task: str
    scheduler: str
    variant: str
    n_seeds: int
    n_paired: int
    n_censored: int
    median_ttt: dict[str, float | None]
    ratio: dict[str, stats.RatioCI | None]
    wilcoxon: dict[str, stats.WilcoxonResult | None]
    accuracy_metric: str
    median_accuracy: float | None
    accuracy_drop: float | None
    median_probe_share: float | None
    median_extra_compute: float | None
    median_epochs: float | None
    criteria: dict[str, bool | None]


def _ttt(rows: Sequence[Mapping[str, Any]], clock: str) -> stats.Censored:
    return stats.censor([r[f"ttt_{clock}"] for r in rows], [r[f"budget_{clock}"] for r in rows])


def _paired(
    a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], clock: str, n_boot: int
) -> tuple[stats.RatioCI, stats.WilcoxonResult]:
    """Median ratio (bootstrap CI) and Wilcoxon test of ``a`` against ``b``, paired rows."""
    ta, tb = _ttt(a, clock), _ttt(b, clock)
    ratio = stats.median_ratio_ci(
        ta.time, tb.time, n_boot, a_censored=ta.censored, b_censored=tb.censored
    )
    return ratio, stats.paired_wilcoxon(ta.time, tb.time, ta.censored, tb.censored)


def compare(rows: Sequence[Mapping[str, Any]], n_boot: int = N_BOOT) -> list[Comparison]:
    """Every arm (vanilla included, with itself as reference) against vanilla."""
    out = []
    for (task, scheduler), arms in sorted(_arms(rows).items()):
        base = arms.get(BASELINE, {})
        for variant in _order(arms):
            arm = arms[variant]
            seeds = sorted(set(arm) & set(base))
            a = [arm[s] for s in seeds]
            b = [base[s] for s in seeds]
            all_arm = [arm[s] for s in sorted(arm)]
            median_ttt, ratio, wil = {}, {}, {}
            for clock in CLOCKS:
                own = _ttt(all_arm, clock)
                med = stats.censored_median(own.time, own.censored) if own.n else None
                median_ttt[clock] = med
                if variant == BASELINE or not seeds:
                    ratio[clock] = wil[clock] = None
                    continue
                ratio[clock], wil[clock] = _paired(a, b, clock, n_boot)
            use_test = bool(seeds) and all(r["best_test"] is not None for r in a + b)
            key = "best_test" if use_test else "best_val"
            acc = _median(r[key] for r in a) if seeds else _median(r[key] for r in all_arm)
            acc_base = _median(r[key] for r in b)
            drop = None
            if acc is not None and acc_base:
                drop = (acc_base - acc) / abs(acc_base)
            extra = _median(r["extra_compute"] for r in all_arm)
            crit: dict[str, bool | None] = {"ttt": None, "accuracy": None, "compute": None}
            if variant != BASELINE:
                r, w = ratio[PRIMARY_CLOCK], wil[PRIMARY_CLOCK]
                if r is not None and r.ratio is not None:
                    crit["ttt"] = bool(
                        r.ratio <= MAX_RATIO and w is not None and w.p is not None and w.p < ALPHA
                    )
                crit["accuracy"] = None if drop is None else bool(drop <= MAX_ACC_DROP)
                crit["compute"] = None if extra is None else bool(extra <= MAX_EXTRA_COMPUTE)
            out.append(
                Comparison(
                    task=task,
                    scheduler=scheduler,
                    variant=variant,
                    n_seeds=len(arm),
                    n_paired=len(seeds),
                    n_censored=int(sum(r[f"censored_{PRIMARY_CLOCK}"] for r in all_arm)),
                    median_ttt=median_ttt,
                    ratio=ratio,
                    wilcoxon=wil,
                    accuracy_metric="test" if use_test else "validation",
                    median_accuracy=acc,
                    accuracy_drop=drop,
                    median_probe_share=_median(r["probe_share"] for r in all_arm),
                    median_extra_compute=extra,
                    median_epochs=_median(r["total_epochs"] for r in all_arm),
                    criteria=crit,
                )
            )
    return out


# ----- formatting -------------------------------------------------------------------------------


def _f(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "not reached" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _ratio_text(r: stats.RatioCI | None) -> str:
    if r is None or r.ratio is None:
        return "n/a"
    return f"{_f(r.ratio)} [{_f(r.low)}, {_f(r.high)}]"


def _p(w: stats.WilcoxonResult | None) -> str:
    if w is None:
        return "n/a"
    if w.p is None:
        return f"n/a ({w.note})"
    extra = f", {w.n_unordered} unordered" if w.n_unordered else ""
    return f"{w.p:.3g} (n={w.n_used}{extra})"


def _yes(flag: bool | None) -> str:
    return {True: "HOLDS", False: "does not hold", None: "cannot be evaluated"}[flag]


def _headline(comps: Sequence[Comparison]) -> list[str]:
    lines = [
        "| task | scheduler | variant | seeds | censored | median TTT (epochs) | "
        "median TTT (compute s) | median TTT (wall s) | ratio epochs [95% CI] | p epochs | "
        f"ratio {PRIMARY_CLOCK} [95% CI] | p {PRIMARY_CLOCK} | final accuracy (median) | "
        "probe share (median) | epochs used (median) |",
        "|" + "---|" * 15,
    ]
    for c in comps:
        lines.append(
            f"| {c.task} | {c.scheduler} | {c.variant} | {c.n_seeds} | {c.n_censored} | "
            f"{_f(c.median_ttt['epochs'])} | {_f(c.median_ttt['compute'])} | "
            f"{_f(c.median_ttt['wall'])} | {_ratio_text(c.ratio['epochs'])} | "
            f"{_p(c.wilcoxon['epochs'])} | {_ratio_text(c.ratio[PRIMARY_CLOCK])} | "
            f"{_p(c.wilcoxon[PRIMARY_CLOCK])} | {_f(c.median_accuracy, 4)} "
            f"({c.accuracy_metric}) | {_pct(c.median_probe_share)} | {_f(c.median_epochs)} |"
        )
    return lines


REFERENCE = ("asha", BASELINE)
"""The arm every scheduler is compared with in :func:`compare_schedulers`."""


def compare_schedulers(
    rows: Sequence[Mapping[str, Any]], n_boot: int = N_BOOT
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every ``(scheduler, vanilla or OHGW)`` arm against vanilla ASHA of the same task,
    paired by seed: ``(task, scheduler, variant, {clock: (median, RatioCI, WilcoxonResult)})``.
    Empty without an ASHA vanilla arm or a second scheduler."""
    out = []
    for task in sorted({r["task"] for r in rows}):
        arms = {k: v for k, v in _arms(rows).items() if k[0] == task}
        ref = arms.get((task, REFERENCE[0]), {}).get(REFERENCE[1], {})
        if not ref or len(arms) < 2:
            continue
        for (_, scheduler), by_variant in sorted(arms.items()):
            for variant in (BASELINE, OHGW_MAIN):
                arm = by_variant.get(variant, {})
                seeds = sorted(set(arm) & set(ref))
                if not seeds or (scheduler, variant) == REFERENCE:
                    continue
                a, b = [arm[s] for s in seeds], [ref[s] for s in seeds]
                result: dict[str, Any] = {}
                for clock in ("epochs", PRIMARY_CLOCK):
                    ta = _ttt(a, clock)
                    median = stats.censored_median(ta.time, ta.censored)
                    result[clock] = (median, *_paired(a, b, clock, n_boot))
                use_test = all(r["best_test"] is not None for r in a)
                result["accuracy"] = (
                    _median(r["best_test" if use_test else "best_val"] for r in a),
                    "test" if use_test else "validation",
                )
                result["epochs_used"] = _median(r["total_epochs"] for r in a)
                result["n"] = len(seeds)
                out.append((task, scheduler, variant, result))
    return out


def _schedulers_table(rows: Sequence[Mapping[str, Any]], n_boot: int) -> list[str]:
    results = compare_schedulers(rows, n_boot)
    if not results:
        return []
    lines = [
        f"## Schedulers against {REFERENCE[0]} {REFERENCE[1]}",
        "",
        f"Each arm against {REFERENCE[0]} {REFERENCE[1]} of the same task and seed (paired by "
        "seed; ratios and tests as above). The schedulers' budgets are in 'epochs used'.",
        "",
        "| task | scheduler | variant | seeds | median TTT (epochs) | ratio epochs [95% CI] | "
        f"p epochs | median TTT ({PRIMARY_CLOCK} s) | ratio {PRIMARY_CLOCK} [95% CI] | "
        f"p {PRIMARY_CLOCK} | final accuracy (median) | epochs used (median) |",
        "|" + "---|" * 12,
    ]
    for task, scheduler, variant, r in results:
        (me, re_, we), (mc, rc, wc) = r["epochs"], r[PRIMARY_CLOCK]
        lines.append(
            f"| {task} | {scheduler} | {variant} | {r['n']} | {_f(me)} | {_ratio_text(re_)} | "
            f"{_p(we)} | {_f(mc)} | {_ratio_text(rc)} | {_p(wc)} | "
            f"{_f(r['accuracy'][0], 4)} ({r['accuracy'][1]}) | {_f(r['epochs_used'])} |"
        )
    return [*lines, ""]


def _criteria(comps: Sequence[Comparison]) -> list[str]:
    lines = [
        "Criteria (seed claim), per (task, scheduler, variant) against vanilla, paired by seed:",
        "",
        f"1. time to target: ratio of medians on the {PRIMARY_CLOCK} clock <= {MAX_RATIO} "
        f"(>= 15% reduction) and paired two-sided Wilcoxon p < {ALPHA};",
        f"2. final accuracy: relative drop of the median <= {100 * MAX_ACC_DROP:.1f}%;",
        "3. extra compute: median probe seconds / other compute "
        f"<= {100 * MAX_EXTRA_COMPUTE:.0f}%.",
        "",
        "| task | scheduler | variant | 1. TTT | 2. accuracy | 3. compute | all three |",
        "|---|---|---|---|---|---|---|",
    ]
    plain = []
    for c in comps:
        if c.variant == BASELINE:
            continue
        r, w = c.ratio[PRIMARY_CLOCK], c.wilcoxon[PRIMARY_CLOCK]
        ttt = f"{_yes(c.criteria['ttt'])} (ratio {_ratio_text(r)}, p {_p(w)})"
        acc = f"{_yes(c.criteria['accuracy'])} (drop {_pct(c.accuracy_drop)})"
        comp = f"{_yes(c.criteria['compute'])} (extra {_pct(c.median_extra_compute)})"
        values = list(c.criteria.values())
        every = all(v is True for v in values)
        lines.append(
            f"| {c.task} | {c.scheduler} | {c.variant} | {ttt} | {acc} | {comp} | "
            f"{'HOLDS' if every else 'does not hold'} |"
        )
        held = [k for k, v in c.criteria.items() if v is True]
        failed = [k for k, v in c.criteria.items() if v is False]
        unknown = [k for k, v in c.criteria.items() if v is None]
        sentence = f"- {c.task}/{c.scheduler}/{c.variant}: "
        if every:
            sentence += "all three criteria HOLD."
        else:
            parts = []
            if held:
                parts.append("holds: " + ", ".join(held))
            if failed:
                parts.append("does NOT hold: " + ", ".join(failed))
            if unknown:
                parts.append("cannot be evaluated: " + ", ".join(unknown))
            sentence += "; ".join(parts) + "."
        plain.append(sentence)
    main = [c for c in comps if c.variant == OHGW_MAIN]
    if main:
        n_ok = sum(all(v is True for v in c.criteria.values()) for c in main)
        plain.append(
            f"- {OHGW_MAIN}: all criteria hold in {n_ok} of {len(main)} (task, scheduler) "
            f"tuples (the seed asks for >= 75%): "
            + ("the claim HOLDS." if n_ok >= 0.75 * len(main) else "the claim does NOT hold.")
        )
    return lines + ["", *plain]


def hyperparameter_tests(
    cells: Sequence[Cell], variant: str = OHGW_MAIN
) -> list[tuple[str, str, str, str, stats.KSResult]]:
    """KS tests of every numeric parameter's values (all configurations of all seeds pooled)
    between ``variant`` and vanilla, per ``(task, scheduler)``."""
    pools: dict[tuple[str, str, str, str], list[float]] = {}
    for c in cells:
        for name, values in c.metrics.final_hyperparameters.items():
            nums = [
                float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
            ]
            pools.setdefault((c.task, c.scheduler, c.variant, name), []).extend(nums)
    out = []
    for (task, scheduler, v, name), values in sorted(pools.items()):
        if v != variant:
            continue
        base = pools.get((task, scheduler, BASELINE, name), [])
        out.append((task, scheduler, variant, name, stats.ks_shift(values, base)))
    return out


# ----- plots ------------------------------------------------------------------------------------


def _step_on_grid(curve: Sequence[tuple[float, float]], grid: np.ndarray) -> np.ndarray:
    """A right-continuous step curve on ``grid`` (NaN before its first point; the last value
    is carried to the end of the grid)."""
    if not curve:
        return np.full(grid.shape, np.nan)
    xs = np.asarray([p[0] for p in curve])
    ys = np.asarray([p[1] for p in curve])
    idx = np.searchsorted(xs, grid, side="right") - 1
    return np.where(idx >= 0, ys[np.clip(idx, 0, None)], np.nan)


def _plots(cells: Sequence[Cell], out: pathlib.Path) -> tuple[list[str], list[str]]:
    """Write the PNGs; returns ``(files, notes on skipped plots)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: list[str] = []
    notes: list[str] = []
    groups: dict[tuple[str, str], list[Cell]] = {}
    for c in cells:
        groups.setdefault((c.task, c.scheduler), []).append(c)

    for (task, scheduler), group in sorted(groups.items()):
        tag = f"{task}-{scheduler}".replace("/", "-")  # "asha/random": not a folder
        variants = _order({c.variant for c in group})
        # Anytime curves, median and IQR over seeds.
        for clock in ("epochs", PRIMARY_CLOCK):
            ends = [c.metrics.curves[clock][-1][0] for c in group if c.metrics.curves[clock]]
            if not ends:
                notes.append(f"curves {tag} ({clock}): no curve has a point; skipped.")
                continue
            grid = np.linspace(0.0, max(ends), 200)
            fig, ax = plt.subplots(figsize=(6, 4))
            for v in variants:
                ys = np.asarray(
                    [_step_on_grid(c.metrics.curves[clock], grid) for c in group if c.variant == v]
                )
                # Only where every seed has a point: a median over the seeds that happen to
                # have started would jump when a slow seed joins.
                ok = np.all(~np.isnan(ys), axis=0)
                if not ok.any():
                    continue
                q = np.full((3, grid.size), np.nan)
                q[:, ok] = np.nanpercentile(ys[:, ok], [25, 50, 75], axis=0)
                (line,) = ax.plot(grid, q[1], label=f"{v} (n={ys.shape[0]})")
                ax.fill_between(grid, q[0], q[2], color=line.get_color(), alpha=0.2)
            target = group[0].metrics.target
            ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target {target:g}")
            ax.set_xlabel(f"{clock} ({'s' if clock != 'epochs' else 'epochs'})")
            ax.set_ylabel("best validation value (median, IQR)")
            ax.set_title(f"{task} / {scheduler}")
            ax.legend(fontsize=7)
            name = f"curves-{tag}-{clock}.png"
            fig.tight_layout()
            fig.savefig(out / name, dpi=100)
            plt.close(fig)
            files.append(name)

        # Time-to-target box plots (reached runs; censored counts in the labels).
        for clock in ("epochs", PRIMARY_CLOCK):
            data, labels = [], []
            for v in variants:
                vs = [c for c in group if c.variant == v]
                reached = [c.metrics.time_to_target[clock] for c in vs]
                data.append([t for t in reached if t is not None])
                labels.append(f"{v}\n({sum(t is None for t in reached)}/{len(vs)} cens.)")
            if not any(data):
                notes.append(f"ttt {tag} ({clock}): no run reached the target; skipped.")
                continue
            fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(variants)), 4))
            ax.boxplot([d if d else [np.nan] for d in data])
            ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
            ax.set_ylabel(f"time to target ({clock})")
            ax.set_title(f"{task} / {scheduler}: reached runs only")
            name = f"ttt-{tag}-{clock}.png"
            fig.tight_layout()
            fig.savefig(out / name, dpi=100)
            plt.close(fig)
            files.append(name)

        # Hyperparameter histograms, vanilla vs the main OHGW arm.
        pools: dict[str, dict[str, list[float]]] = {}
        for c in group:
            if c.variant not in (BASELINE, OHGW_MAIN):
                continue
            for p, values in c.metrics.final_hyperparameters.items():
                nums = [float(x) for x in values if isinstance(x, int | float)]
                pools.setdefault(p, {}).setdefault(c.variant, []).extend(nums)
        params = sorted(p for p, d in pools.items() if any(d.values()))
        if not params:
            notes.append(f"hyperparameters {tag}: no {BASELINE}/{OHGW_MAIN} values; skipped.")
        else:
            fig, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 3), squeeze=False)
            for ax, p in zip(axes[0], params):
                allv = [x for xs in pools[p].values() for x in xs]
                log = min(allv) > 0 and max(allv) / min(allv) > 100
                vals = {k: (np.log10(v) if log else np.asarray(v)) for k, v in pools[p].items()}
                both = np.concatenate([np.asarray(v) for v in vals.values()])
                bins = np.linspace(both.min(), both.max() + 1e-12, 15)
                for k in (BASELINE, OHGW_MAIN):
                    if len(vals.get(k, [])):
                        ax.hist(vals[k], bins=bins, alpha=0.5, label=k)
                ax.set_xlabel(f"log10 {p}" if log else p)
                ax.legend(fontsize=6)
            fig.suptitle(f"{task} / {scheduler}: configurations' hyperparameters")
            name = f"hyperparameters-{tag}.png"
            fig.tight_layout()
            fig.savefig(out / name, dpi=100)
            plt.close(fig)
            files.append(name)

        # Hypergradient vs outcome.
        pts: dict[str, list[tuple[float, float, str]]] = {}
        for c in group:
            for p, g, y in c.grads:
                pts.setdefault(p, []).append((g, y, c.variant))
        if not pts:
            notes.append(f"hypergradients {tag}: no trial has ohgw.grad.*; skipped.")
        else:
            params = sorted(pts)
            fig, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 3), squeeze=False)
            for ax, p in zip(axes[0], params):
                for v in variants:
                    xs = [(g, y) for g, y, vv in pts[p] if vv == v]
                    if xs:
                        ax.scatter(*zip(*xs), s=8, alpha=0.6, label=v)
                ax.set_xlabel(f"ohgw.grad.{p}")
                ax.set_ylabel("configuration's best value")
                ax.legend(fontsize=6)
            fig.suptitle(f"{task} / {scheduler}: hypergradient vs outcome")
            name = f"hypergradient-{tag}.png"
            fig.tight_layout()
            fig.savefig(out / name, dpi=100)
            plt.close(fig)
            files.append(name)
    return files, notes


# ----- the report -------------------------------------------------------------------------------


def write_csv(rows: Sequence[Mapping[str, Any]], path: pathlib.Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})


def _probe_status(studies: Sequence[Cell]) -> list[str]:
    """Probe statuses per arm, seeds pooled; an arm whose probes failed is flagged (its trials
    ran on their raw values, so it is partly vanilla whatever its name says)."""
    arms: dict[tuple[str, str, str], collections.Counter] = {}
    for c in studies:
        arms.setdefault((c.task, c.scheduler, c.variant), collections.Counter()).update(
            c.probe_status
        )
    lines = [
        "## Probe status",
        "",
        "Trials per `ohgw.status`, seeds pooled. A failed probe (error, nonfinite) leaves its "
        "trial on the raw values.",
        "",
        "| task | scheduler | variant | ok | skipped | failed | other | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (task, scheduler, variant), n in sorted(arms.items()):
        failed = sum(n[k] for k in attrs.FAILED_STATUSES)
        other = sum(n.values()) - n["ok"] - n["skipped"] - failed
        flag = f"**PROBES FAILED ({failed} of {sum(n.values())})**" if failed else ""
        lines.append(
            f"| {task} | {scheduler} | {variant} | {n['ok']} | {n['skipped']} | {failed} | "
            f"{other} | {flag} |"
        )
    return [*lines, ""]


def write_report(
    rows: Sequence[Mapping[str, Any]],
    studies: Sequence[Cell],
    out_dir: str | pathlib.Path,
    command: str,
    *,
    n_boot: int = N_BOOT,
) -> pathlib.Path:
    """Write ``results.csv``, ``report.md`` and the PNG plots into ``out_dir``; return the
    path of ``report.md``. ``studies`` are the cells the rows came from (:func:`load_cells`),
    used for the curves, hyperparameters and hypergradients."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "results.csv")
    comps = compare(rows, n_boot=n_boot)
    files, notes = _plots(studies, out)
    lines = [
        "# OHGW bench report",
        "",
        "```",
        command,
        "```",
        "",
        f"{len(rows)} cells (studies); time to target (TTT) is right-censored when a run never "
        "reached the target: censored runs are kept, ranked slower than every run that reached "
        "it by their censoring time (budget), medians put them at +inf ('not reached' when the "
        "median run is censored), and pairs whose order is unknown are left out of the Wilcoxon "
        "test ('unordered'). Ratios are median(variant) / median(vanilla) with a paired "
        f"percentile bootstrap 95% CI ({n_boot} resamples of seeds); p is the paired two-sided "
        "Wilcoxon signed-rank test against vanilla.",
        "",
        "## Headline",
        "",
        *_headline(comps),
        "",
        *_probe_status(studies),
        *_schedulers_table(rows, n_boot),
        "## Success criteria",
        "",
        *_criteria(comps),
        "",
        f"## Hyperparameter shift ({OHGW_MAIN} vs {BASELINE})",
        "",
        "Two-sample two-sided KS test of the values used by every configuration, seeds pooled.",
        "",
        "| task | scheduler | parameter | n ohgw | n vanilla | KS D | p |",
        "|---|---|---|---|---|---|---|",
    ]
    ks = hyperparameter_tests(studies)
    for task, scheduler, _, name, r in ks:
        lines.append(
            f"| {task} | {scheduler} | {name} | {r.n_x} | {r.n_y} | {_f(r.statistic)} | "
            f"{_f(r.p)} |"
        )
    if not ks:
        lines.append("| (no data) | | | | | | |")
    lines += ["", "## Plots", ""]
    lines += [f"![{f}]({f})" for f in files]
    lines += [f"- {n}" for n in notes]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
