"""Time to target at several targets: each arm against a reference arm, paired by seed.

Pure functions on :class:`~optuna_ohgw.evidence.report.Cell` lists and plain rows that return
frozen dataclasses (:class:`TargetComparison`, :class:`AccuracyDifference`); statistics come
from :mod:`optuna_ohgw.evidence.stats` (censoring rules there) and every time to target is
recomputed from a cell's anytime curves with :func:`~optuna_ohgw.evidence.metrics.time_to_target`,
so one grid gives every target without rerunning anything. The words and tables are in
:mod:`optuna_ohgw.evidence.prose`.

Rules
-----
* Targets are fixed per task *before* a grid runs (:data:`TARGETS`); the study file's own target
  is the first criterion's (see :mod:`~optuna_ohgw.evidence.report`).
* An arm is compared with a reference arm of the same ``(task, scheduler, sampler)`` on the
  seeds both have (paired): ratio of censored medians with a paired bootstrap 95% CI and the
  two-sided paired Wilcoxon p. Every arm is compared with ``vanilla``, and every arm that runs a
  warm start also with ``random-sign``, the control with the same probe and step size but a
  random direction: an arm that beats vanilla but not random-sign shows that *moving* a
  configuration helps, not that the hypergradient does.
* An arm *pays off* at a target when its ratio on the compute clock is ``<= MAX_RATIO`` (0.85)
  and ``p < ALPHA`` (0.05) against vanilla, the seed's first criterion at that target.
* An arm with fewer than :data:`MIN_PAIRS` (6) paired seeds is *not decided*: with 5 pairs the
  smallest two-sided exact Wilcoxon p is 2/32 = 0.0625, so no such arm can reach ``p < ALPHA``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from optuna_ohgw.evidence import stats
from optuna_ohgw.evidence.metrics import time_to_target
from optuna_ohgw.evidence.report import (
    ALPHA,
    BASELINE,
    MAX_RATIO,
    N_BOOT,
    PRIMARY_CLOCK,
    Cell,
    _order,
    _ttt,
)

MIN_PAIRS = 6
"""Fewest paired seeds with which a two-sided exact Wilcoxon test can give p < 0.05 (2/64)."""


TARGETS: dict[str, tuple[float, ...]] = {
    "mnist1d": (0.95, 0.97, 0.98),
    "fashion": (0.82, 0.85, 0.86),
    "fashion-vit-asha": (0.825, 0.845, 0.855),
    "digits": (0.965, 0.985, 0.995),
}
"""Targets per task, fixed before the warm-start arms of their eight-worker stage ran, from a
pilot of vanilla ASHA at eight virtual workers (TPE, seeds 0-1, the grid's own vanilla cells),
by one rule: the hard target is the pilot's median best validation accuracy rounded down to
0.005, the others below it.

- Fashion-MNIST (30 trials): best 0.8655 and 0.8565, median 0.861, hard target 0.86 (seed 1
  never reaches it); 0.85 (reached at 108 and 94 epochs) and the easy step 0.82 (44 and 65).
  Issue 13's one-worker targets were 0.85, 0.88 and 0.89 (from a 60-trial one-worker pilot).
- MNIST-1D (the study file's 60 trials): best 0.9881 and 0.9812, median 0.9847, hard target
  0.98 (reached at 87 and 153 epochs of 361 and 221); 0.97 (55 and 81) and 0.95 (39 and 33),
  issue 13's two harder targets. Issue 13's easiest, 0.90, is dropped: at eight workers it is
  reached at the first rung (23 and 25 epochs), before the warm start can differ.

- The Fashion-MNIST ViT recipe (issue 27, `bench --study studies/fashion-vit-asha.toml`, the
  study file's 60 trials, seeded ties, commit 480f04c; `reports/issue27/PLAN.md` fixed the rule
  first): best 0.8565 and 0.8585 (178 and 298 epochs), median 0.8575, hard target 0.855, the
  others 0.03 and 0.01 below it, 0.825 and 0.845.
- Digits, the smoke test of the summary's lead (issue 27, `bench --task digits`, the study
  file's 40 trials, seeded ties, commit ef01476): best 0.9944 and 0.9972 (358 and 359 of 360
  validation images; 226 and 300 epochs), median 0.9958, hard target 0.995 (359 of 360), the
  others 0.965 and 0.985.

The target sweep of the plots covers 0.80-0.895 (Fashion-MNIST), 0.80-0.88 (the ViT) and
0.85-0.98 (MNIST-1D) for both worker counts."""


SWEEP: dict[str, tuple[float, ...]] = {
    "mnist1d": tuple(round(0.85 + 0.005 * k, 3) for k in range(27)),  # 0.85 ... 0.98
    "fashion": tuple(round(0.80 + 0.005 * k, 3) for k in range(20)),  # 0.80 ... 0.895
    "fashion-vit-asha": tuple(round(0.80 + 0.005 * k, 3) for k in range(17)),  # ... 0.88
}
"""The target sweep of the ratio-against-target plots (each arm's ratio at every target, filled
where it is significant after Holm's correction over the whole sweep)."""


SWEEP_BOOT = 200
"""Bootstrap replicates of the sweep's CI bands (the tables use :data:`N_BOOT`)."""


CONTROL = "random-sign"


CLOCKS_SHOWN = ("epochs", PRIMARY_CLOCK)


def split_label(scheduler: str) -> tuple[str, str]:
    """``"asha/random"`` -> ``("asha", "random")``; no sampler in the label means TPE."""
    name, _, sampler = scheduler.partition("/")
    return name, sampler or "tpe"


def split_workers(scheduler: str) -> tuple[str, int, str]:
    """``"asha@8r/random"`` -> ``("asha/random", 8, "seeded")``: the label of the same group at
    one worker, the workers, and how the virtual executor broke ties (``"index"``,
    ``"seeded"``; ``""`` at one worker), read back from
    :func:`~optuna_ohgw.evidence.report.parse_name`'s labels."""
    head, slash, sampler = scheduler.partition("/")
    name, at, count = head.partition("@")
    workers = int(count.rstrip("r")) if at else 1
    ties = "" if workers == 1 else "seeded" if count.endswith("r") else "index"
    return name + slash + sampler, workers, ties


def at_hard_target(
    comps: Iterable[TargetComparison],
    targets: Mapping[str, Sequence[float]],
    *,
    arms: Collection[str],
    groups: Collection[tuple[str, str]] | None = None,
) -> list[TargetComparison]:
    """The comparisons of ``arms`` at their task's hardest target, configuration 0 in (of the
    ``(task, scheduler)`` ``groups`` when given), in their order."""
    return [
        c
        for c in comps
        if (groups is None or (c.task, c.scheduler) in groups)
        and c.variant in arms
        and not c.without_first
        and targets.get(c.task)
        and c.target == max(targets[c.task])
    ]


def target_rows(
    cells: Sequence[Cell],
    targets: Mapping[str, Sequence[float]],
    *,
    without_first: bool = False,
    without_first_wave: bool = False,
) -> list[dict[str, Any]]:
    """One row per (cell, target of its task): ``ttt_<clock>`` (``None`` = censored) and
    ``budget_<clock>`` (the censoring time) on every clock of the cell's curves (with
    ``without_first``, of its curves with configuration 0's values left out; with
    ``without_first_wave``, with its first wave's, configurations 0-7 at eight workers, see
    :func:`~optuna_ohgw.evidence.metrics.first_wave`)."""
    rows = []
    for c in cells:
        curves = (
            c.metrics.curves_without_first_wave
            if without_first_wave
            else c.metrics.curves_without_first
            if without_first
            else c.metrics.curves
        )
        for tau in targets.get(c.task, ()):
            row: dict[str, Any] = {
                "task": c.task,
                "scheduler": c.scheduler,
                "variant": c.variant,
                "seed": c.seed,
                "target": float(tau),
            }
            for clock, curve in curves.items():
                row[f"ttt_{clock}"] = time_to_target(curve, tau, c.metrics.direction)
                row[f"budget_{clock}"] = c.metrics.budget[clock]
            rows.append(row)
    return rows


@dataclasses.dataclass(frozen=True)
class TargetComparison:
    """One arm against a reference arm at one target, paired by seed."""

    task: str
    scheduler: str
    variant: str
    reference: str
    target: float
    n_paired: int
    n_reached: int
    """Seeds of the arm (of the paired ones) that reached the target."""
    n_reached_reference: int
    ratio: dict[str, stats.RatioCI]
    wilcoxon: dict[str, stats.WilcoxonResult]
    clock: str = PRIMARY_CLOCK
    """The clock that decides :attr:`pays_off`."""
    p_holm: float | None = None
    """The Wilcoxon p on :attr:`clock`, Holm-adjusted over the family of comparisons it was
    reported in (:func:`with_holm`); ``None`` before adjustment or for an undefined test."""
    without_first: bool = False
    """Times to target with configuration 0's values left out (its epochs still count)."""
    per_seed: dict[str, stats.PerSeed] = dataclasses.field(default_factory=dict)
    """Per clock, the median of the per-seed ratios and the seeds the arm was faster / tied /
    slower in (:func:`~optuna_ohgw.evidence.stats.per_seed_ratios`)."""

    @property
    def p(self) -> float | None:
        """The raw two-sided Wilcoxon p on :attr:`clock`."""
        return self.wilcoxon[self.clock].p

    @property
    def p_decides(self) -> float | None:
        """The p that decides: Holm-adjusted once adjusted, else raw."""
        return self.p_holm if self.p_holm is not None else self.p

    @property
    def sooner(self) -> bool:
        """Ratio below 1 on :attr:`clock`."""
        r = self.ratio[self.clock].ratio
        return r is not None and r < 1.0

    @property
    def pays_off(self) -> bool:
        """Ratio ``<= MAX_RATIO`` and ``p < ALPHA`` on :attr:`clock` (the Holm-adjusted p once
        :func:`with_holm` has set it)."""
        r, p = self.ratio[self.clock], self.p_decides
        return bool(r.ratio is not None and r.ratio <= MAX_RATIO and p is not None and p < ALPHA)

    @property
    def significant(self) -> bool:
        """Sooner (ratio < 1) with the deciding p below ``ALPHA``."""
        p = self.p_decides
        return self.sooner and p is not None and p < ALPHA

    @property
    def nominal_only(self) -> bool:
        """Sooner with raw p below ``ALPHA`` but not after the Holm adjustment."""
        p = self.p
        return self.sooner and p is not None and p < ALPHA and not self.significant

    @property
    def clearly_sooner(self) -> bool:
        """The ratio of medians on :attr:`clock` is below ``1 - NEAR_ONE`` and its whole 95%
        CI is below 1 (see :func:`~optuna_ohgw.evidence.prose.verdict`)."""
        r = self.ratio[self.clock]
        return bool(
            r.ratio is not None
            and r.ratio < 1.0 - NEAR_ONE
            and r.high is not None
            and r.high < 1.0
        )

    @property
    def gain_not_in_seeds(self) -> bool:
        """The ratio of medians reads as a gain (below 1) that the seeds do not show: the arm
        was slower in at least as many seeds as it was faster in, or the median of the
        per-seed ratios is at least 1."""
        r, ps = self.ratio[self.clock].ratio, self.per_seed.get(self.clock)
        if r is None or r >= 1.0 or ps is None:
            return False
        return ps.slower >= ps.faster or (ps.median_ratio is not None and ps.median_ratio >= 1.0)


NEAR_ONE = 0.05
"""A ratio of medians within this of 1 (above ``1 - NEAR_ONE``) is not called sooner."""


def with_holm(*families: Sequence[TargetComparison]) -> list[list[TargetComparison]]:
    """The comparisons with :attr:`~TargetComparison.p_holm` set, Holm-adjusted over all of
    ``families`` together (one family: every p reported beside the others), in their order."""
    flat = [c for f in families for c in f]
    adjusted = stats.holm([c.p for c in flat])
    it = iter(adjusted)
    return [[dataclasses.replace(c, p_holm=next(it)) for c in f] for f in families]


PRIMARY_ARMS = ("line-search", "ohgw-normalized")
"""The arms a step rule could make the default; a primary question compares them
(:mod:`optuna_ohgw.evidence.question`)."""


@dataclasses.dataclass(frozen=True)
class AccuracyDifference:
    """Final test accuracy of an arm against a reference arm, paired by seed."""

    task: str
    scheduler: str
    variant: str
    reference: str
    n_paired: int
    median: float | None
    median_reference: float | None
    wilcoxon: stats.WilcoxonResult

    @property
    def points(self) -> float | None:
        """The difference of the medians in accuracy points (100 x), arm minus reference."""
        if self.median is None or self.median_reference is None:
            return None
        return 100.0 * (self.median - self.median_reference)


def accuracy_differences(
    cells: Sequence[Cell], references: Sequence[str] = (BASELINE, CONTROL)
) -> dict[tuple[str, str, str, str], AccuracyDifference]:
    """``(task, scheduler, variant, reference) -> AccuracyDifference``: each cell's best test
    accuracy (the test accuracy of the configuration chosen by validation,
    :attr:`~optuna_ohgw.evidence.metrics.StudyMetrics.best_test_accuracy`), the median of the
    arm and of the reference over their paired seeds (seeds where both have one), and the
    two-sided paired Wilcoxon test of the per-seed differences, as for the times to target."""
    by: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for c in cells:
        acc = c.metrics.best_test_accuracy
        if acc is not None:
            by.setdefault((c.task, c.scheduler), {}).setdefault(c.variant, {})[c.seed] = acc
    out = {}
    for (task, scheduler), arms in sorted(by.items()):
        for ref in references:
            base = arms.get(ref)
            if not base:
                continue
            for variant, arm in arms.items():
                if variant == ref:
                    continue
                seeds = sorted(set(arm) & set(base))
                if not seeds:
                    continue
                a, b = [arm[s] for s in seeds], [base[s] for s in seeds]
                out[(task, scheduler, variant, ref)] = AccuracyDifference(
                    task,
                    scheduler,
                    variant,
                    ref,
                    len(seeds),
                    float(np.median(a)),
                    float(np.median(b)),
                    stats.paired_wilcoxon(a, b),
                )
    return out


@functools.lru_cache(maxsize=4096)
def _wilcoxon(a: tuple, a_cens: tuple, b: tuple, b_cens: tuple) -> stats.WilcoxonResult:
    # Neighbouring targets of a sweep often give the very same times: test each set once.
    return stats.paired_wilcoxon(list(a), list(b), list(a_cens), list(b_cens))


@functools.lru_cache(maxsize=4096)
def _ratio_ci(a: tuple, a_cens: tuple, b: tuple, b_cens: tuple, n_boot: int) -> stats.RatioCI:
    return stats.median_ratio_ci(
        list(a), list(b), n_boot, a_censored=list(a_cens), b_censored=list(b_cens)
    )


def compare_at_targets(
    rows: Sequence[Mapping[str, Any]],
    reference: str = BASELINE,
    *,
    variants: Iterable[str] | None = None,
    n_boot: int = N_BOOT,
    clock: str = PRIMARY_CLOCK,
    without_first: bool = False,
    clocks: Sequence[str] = CLOCKS_SHOWN,
) -> list[TargetComparison]:
    """Every arm (or only ``variants``) against ``reference`` at each target, per ``(task,
    scheduler label)``, on ``clocks``; ``clock`` decides :attr:`~TargetComparison.pays_off`
    and the counts of seeds that reached the target. Arms without a paired seed are
    left out."""
    groups: dict[tuple[str, str, float], dict[str, dict[int, Mapping[str, Any]]]] = {}
    for r in rows:
        key = (r["task"], r["scheduler"], r["target"])
        groups.setdefault(key, {}).setdefault(r["variant"], {})[r["seed"]] = r
    wanted = None if variants is None else set(variants)
    out = []
    for (task, scheduler, tau), arms in sorted(groups.items()):
        ref = arms.get(reference, {})
        for variant in _order(arms):
            if variant == reference or (wanted is not None and variant not in wanted):
                continue
            seeds = sorted(set(arms[variant]) & set(ref))
            if not seeds:
                continue
            a = [arms[variant][s] for s in seeds]
            b = [ref[s] for s in seeds]
            ratio, wil, per_seed = {}, {}, {}
            for shown in clocks:
                ta, tb = _ttt(a, shown), _ttt(b, shown)
                key = (tuple(ta.time), tuple(ta.censored), tuple(tb.time), tuple(tb.censored))
                ratio[shown] = _ratio_ci(*key, n_boot)
                wil[shown] = _wilcoxon(*key)
                per_seed[shown] = stats.per_seed_ratios(ta.time, tb.time, ta.censored, tb.censored)
            out.append(
                TargetComparison(
                    task=task,
                    scheduler=scheduler,
                    variant=variant,
                    reference=reference,
                    target=tau,
                    n_paired=len(seeds),
                    n_reached=sum(r[f"ttt_{clock}"] is not None for r in a),
                    n_reached_reference=sum(r[f"ttt_{clock}"] is not None for r in b),
                    ratio=ratio,
                    wilcoxon=wil,
                    clock=clock,
                    without_first=without_first,
                    per_seed=per_seed,
                )
            )
    return out


def first_configuration_runs(cells: Sequence[Cell]) -> dict[tuple[str, str], tuple[int, int]]:
    """``(task, scheduler label) -> (cells where configuration 0 trained as many epochs as any
    configuration of its cell, cells)``, over cells run with more than one worker. Under ASHA
    that means configuration 0 was never stopped at a rung. The virtual executor gives a tie at
    one virtual time to the lower worker (unless run with a ``tie_seed``), so worker 0's
    configuration 0 reports first at every rung and meets no competitor there."""
    out: dict[tuple[str, str], list[int]] = {}
    for c in cells:
        if c.workers <= 1:
            continue
        epochs = c.metrics.configuration_epochs
        full = bool(epochs) and epochs.get(0, 0) == max(epochs.values())
        n = out.setdefault((c.task, c.scheduler), [0, 0])
        n[0] += int(full)
        n[1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def short_arms(cells: Sequence[Cell], planned_seeds: int) -> dict[tuple[str, str], dict[str, int]]:
    """``(task, scheduler label) -> {variant: seeds}`` for the arms with fewer than
    ``planned_seeds`` seeds (groups where every arm has them are left out)."""
    seeds: dict[tuple[str, str], dict[str, set[int]]] = {}
    for c in cells:
        seeds.setdefault((c.task, c.scheduler), {}).setdefault(c.variant, set()).add(c.seed)
    out = {}
    for key, by in sorted(seeds.items()):
        short = {v: len(s) for v, s in by.items() if len(s) < planned_seeds}
        if short:
            out[key] = {v: short[v] for v in _order(short)}
    return out


def seconds_per_epoch(cells: Sequence[Cell]) -> dict[tuple[str, str], tuple[float, float]]:
    """``(task, scheduler label) -> (min, max)`` over cells of training seconds per epoch
    (compute less probe seconds, over epochs): how much the machine's speed varied between
    cells, which the compute clock inherits and the epochs clock does not."""
    out: dict[tuple[str, str], list[float]] = {}
    for c in cells:
        m = c.metrics
        if m.total_epochs:
            rate = (m.total_compute - m.probe_seconds) / m.total_epochs
            out.setdefault((c.task, c.scheduler), []).append(rate)
    return {k: (min(v), max(v)) for k, v in out.items()}


def sweep_comparisons(
    cells: Sequence[Cell],
    sweep: Mapping[str, Sequence[float]] = SWEEP,
    *,
    clock: str = PRIMARY_CLOCK,
    n_boot: int = SWEEP_BOOT,
) -> tuple[list[TargetComparison], list[TargetComparison]]:
    """Every arm against vanilla and every warm start against random-sign at each target of
    the sweep on ``clock`` alone, Holm-adjusted over the whole sweep (both references)."""
    rows = target_rows(cells, sweep)
    one = (clock,)
    vs_vanilla = compare_at_targets(rows, BASELINE, n_boot=n_boot, clock=clock, clocks=one)
    warm = {c.variant for c in cells} - {BASELINE, CONTROL, "toward-middle"}
    vs_control = compare_at_targets(
        rows, CONTROL, variants=warm, n_boot=n_boot, clock=clock, clocks=one
    )
    a, b = with_holm(vs_vanilla, vs_control)
    return a, b


def paired_seed_counts(cells: Sequence[Cell]) -> dict[tuple[str, str], tuple[int, int]]:
    """``(task, scheduler label) -> (seeds with every arm, largest seed count of an arm)``."""
    arms: dict[tuple[str, str], dict[str, set[int]]] = {}
    for c in cells:
        arms.setdefault((c.task, c.scheduler), {}).setdefault(c.variant, set()).add(c.seed)
    out = {}
    for key, by in arms.items():
        common = set.intersection(*by.values()) if by else set()
        out[key] = (len(common), max(len(s) for s in by.values()))
    return out
