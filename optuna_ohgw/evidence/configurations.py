"""What the warm start does to configurations: its steps, and the same configuration nudged or
not (twins), with the effect of each parameter's move read from the randomized control.

Pure functions on :class:`~optuna_ohgw.evidence.report.Cell` lists that return frozen
dataclasses; the tables and sentences are in :mod:`optuna_ohgw.evidence.prose`.

Rules
-----
* Step diagnostic: a step *moved* a parameter when ``|nudged - raw|`` is at least
  :data:`MOVED` of its range (range-scaled internal coordinates: the seed's raw rule moves by
  ~1e-6 and does not count); a move is *inward* when the nudged value is closer to the middle of
  the range than the raw value, *clipped* when it ends on a bound the raw value was not on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

import numpy as np

from optuna_ohgw.evidence.comparisons import CONTROL, MIN_PAIRS
from optuna_ohgw.evidence.metrics import FirstEpoch
from optuna_ohgw.evidence.report import BASELINE, Cell

MOVED = 1e-3
"""Smallest change, in range units, that counts as a move in the step diagnostic."""


@dataclasses.dataclass(frozen=True)
class MoveSummary:
    """The warm-start steps of one ``(task, scheduler, variant, parameter)``, seeds pooled."""

    task: str
    scheduler: str
    variant: str
    param: str
    n: int
    moved: float | None
    """Share of steps that changed the value by at least :data:`MOVED` of the range."""
    inward: float | None
    """Share of the moved ones that ended closer to the middle of the range."""
    clipped: float | None
    """Share of the moved ones that ended on a bound (the step was clipped there)."""
    from_edge: float | None
    """Share of all raw values in the outer 10% of the range at either end."""
    median_move: float
    """Median signed move in range units (nudged - raw)."""
    outcome_inward: float | None
    outcome_outward: float | None
    """Median best validation value of the configurations moved inward / outward."""


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


def move_summaries(cells: Sequence[Cell]) -> list[MoveSummary]:
    """:class:`MoveSummary` per ``(task, scheduler, variant, parameter)`` from the cells'
    ``moves`` (the ``ohgw.raw.*`` / ``ohgw.nudged.*`` attrs), and the re-probes' steps
    (``ohgw.reprobe.from/to.*``) as variant ``"<variant> (at promotions)"``."""
    pools: dict[tuple[str, str, str, str], list] = {}
    for c in cells:
        for m in c.moves:
            pools.setdefault((c.task, c.scheduler, c.variant, m.param), []).append(m)
        for m in c.reprobe_moves:  # listed apart: "re-probe (at promotions)"
            key = (c.task, c.scheduler, f"{c.variant} (at promotions)", m.param)
            pools.setdefault(key, []).append(m)
    out = []
    for (task, scheduler, variant, param), moves in sorted(pools.items()):
        moved = [m for m in moves if abs(m.nudged - m.raw) >= MOVED]
        inward = [m for m in moved if abs(m.nudged - 0.5) < abs(m.raw - 0.5)]
        outward = [m for m in moved if abs(m.nudged - 0.5) >= abs(m.raw - 0.5)]

        def _outcome(ms: list) -> float | None:
            xs = [m.outcome for m in ms if m.outcome is not None]
            return float(np.median(xs)) if xs else None

        out.append(
            MoveSummary(
                task=task,
                scheduler=scheduler,
                variant=variant,
                param=param,
                n=len(moves),
                moved=_share(len(moved), len(moves)),
                inward=_share(len(inward), len(moved)),
                clipped=_share(sum(m.at_bound for m in moved), len(moved)),
                from_edge=_share(sum(min(m.raw, 1 - m.raw) < 0.1 for m in moves), len(moves)),
                median_move=float(np.median([m.nudged - m.raw for m in moves])),
                outcome_inward=_outcome(inward),
                outcome_outward=_outcome(outward),
            )
        )
    return out


NOISE = "ohgw-raw"
"""The seed's raw rule moves a configuration by about 1e-6 of its range, so what it changes in
the first epoch is the training's own sensitivity: the noise floor of
:func:`same_configurations`."""


@dataclasses.dataclass(frozen=True)
class SameConfiguration:
    """One arm's configurations matched with vanilla's twins, seeds pooled.

    Twins: the same seed, trial number and raw draw (:class:`~.metrics.FirstEpoch`), so both
    trained from the same weights and batches and differ only by the warm start. ``delta`` is
    the first epoch's validation value minus the twin's, signed so that positive is better.
    """

    task: str
    scheduler: str
    variant: str
    n: int
    seeds: int
    median: float
    mean: float
    mean_abs: float
    better: float
    """Share of twins the warm start made better (``delta > 0``)."""
    worse: float
    low: float | None
    """Mean ``delta`` of the twins whose vanilla value is in the group's worst quarter."""
    high: float | None
    """Mean ``delta`` of the twins whose vanilla value is in the group's best quarter."""
    p: float | None
    """Two-sided Wilcoxon signed-rank p of the deltas (zeros dropped), configurations as units."""
    deep_n: int
    """Twins that both trained at least :data:`DEEP` epochs in their first segment."""
    deep_epoch: float | None
    """Median of the deepest epoch both of such twins trained."""
    deep_mean: float | None
    """Mean ``delta`` of such twins at that epoch: does the first epoch's change last?"""


DEEP = 3
"""Fewest epochs both twins must have trained to count in the later-epoch comparison. Only twins
that both passed the first rung get there, so that comparison is selected on the first epoch:
read it against the :data:`NOISE` arm's too."""


def _same_draw(a: tuple[tuple[str, float], ...], b: tuple[tuple[str, float], ...]) -> bool:
    return [n for n, _ in a] == [n for n, _ in b] and all(
        math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-15) for (_, x), (_, y) in zip(a, b)
    )


def _twins(cells: Sequence[Cell]) -> Iterable[tuple[Cell, FirstEpoch, FirstEpoch, float]]:
    """``(cell, its first epoch, vanilla's twin, sign)`` for every warm-started configuration
    with a vanilla twin; ``sign`` makes "better" positive for the study's direction."""
    base = {(c.task, c.scheduler, c.seed): c for c in cells if c.variant == BASELINE}
    for c in cells:
        twin_cell = base.get((c.task, c.scheduler, c.seed))
        if c.variant == BASELINE or twin_cell is None:
            continue
        sign = 1.0 if c.metrics.direction == "maximize" else -1.0
        twins = {f.number: f for f in twin_cell.first_epochs}
        for f in c.first_epochs:
            twin = twins.get(f.number)
            if twin is not None and _same_draw(f.raw, twin.raw):
                yield c, f, twin, sign


def same_configurations(cells: Sequence[Cell]) -> list[SameConfiguration]:
    """:class:`SameConfiguration` per ``(task, scheduler, variant)`` other than vanilla.

    Under the Random sampler every configuration has a twin; under TPE only those drawn before
    the two arms' histories differ (its random start-up, then whatever TPE still draws alike).
    Training is deterministic for a given configuration (same seed, one thread), so a non-zero
    ``delta`` of :data:`NOISE` measures how much a negligible change moves the first epoch.
    The quarters select on vanilla's value, so regression to the mean alone makes ``low``
    positive and ``high`` negative: compare them with the :data:`NOISE` arm's.
    """
    import scipy.stats

    pools: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    deep: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    seeds: dict[tuple[str, str, str], set[int]] = {}
    for c, f, twin, sign in _twins(cells):
        key = (c.task, c.scheduler, c.variant)
        a, b = f.values, twin.values
        pools.setdefault(key, []).append((sign * (a[0] - b[0]), sign * b[0]))
        seeds.setdefault(key, set()).add(c.seed)
        k = min(len(a), len(b))
        if k >= DEEP:
            deep.setdefault(key, []).append((k, sign * (a[k - 1] - b[k - 1])))
    out = []
    for key, pairs in sorted(pools.items()):
        task, scheduler, variant = key
        later = deep.get(key, [])
        d = np.array([x for x, _ in pairs])
        v = np.array([y for _, y in pairs])
        lo, hi = np.quantile(v, [0.25, 0.75])
        nonzero = d[d != 0]
        p = float(scipy.stats.wilcoxon(nonzero).pvalue) if len(nonzero) >= MIN_PAIRS else None
        out.append(
            SameConfiguration(
                task=task,
                scheduler=scheduler,
                variant=variant,
                n=len(d),
                seeds=len(seeds[key]),
                median=float(np.median(d)),
                mean=float(d.mean()),
                mean_abs=float(np.abs(d).mean()),
                better=float((d > 0).mean()),
                worse=float((d < 0).mean()),
                low=float(d[v <= lo].mean()) if (v <= lo).any() else None,
                high=float(d[v >= hi].mean()) if (v >= hi).any() else None,
                p=p,
                deep_n=len(later),
                deep_epoch=float(np.median([k for k, _ in later])) if later else None,
                deep_mean=float(np.mean([x for _, x in later])) if later else None,
            )
        )
    return out


@dataclasses.dataclass(frozen=True)
class ParameterEffect:
    """What moving one parameter does to the first epoch, read from a randomized arm."""

    task: str
    scheduler: str
    variant: str
    param: str
    n: int
    effect: float
    """Change of the first epoch's validation value (positive is better) per move of
    :data:`UNIT` of the range toward the middle of the range (inward)."""
    low: float
    high: float
    """The 95% confidence interval of ``effect``."""
    p: float


UNIT = 0.05
"""The move :class:`ParameterEffect` is quoted per: the normalized step's size (5% of range)."""


def parameter_effects(cells: Sequence[Cell], variant: str = CONTROL) -> list[ParameterEffect]:
    """Per ``(task, scheduler, parameter)``, the least-squares effect of each parameter's
    inward move on the twins' first-epoch ``delta`` (:func:`same_configurations`), all
    parameters in one regression with an intercept: ``delta ~ b0 + sum_p b_p * in_p / UNIT``,
    where ``in_p`` is the move toward the middle of the range (negative: outward).

    Read it from ``random-sign``, whose directions are drawn at random independently of the
    configuration: the design is randomized, so ``b_p`` is the causal effect of moving ``p``
    :data:`UNIT` of its range inward (averaged over the configurations drawn). A hypergradient
    arm's moves depend on the configuration, so its regression would be confounded. Inward,
    not up: whether raising a learning rate helps depends on where it starts, which direction
    relative to the middle captures (``toward-middle`` moves every parameter inward).
    """
    import scipy.stats

    rows: dict[tuple[str, str], list[tuple[dict[str, float], float]]] = {}
    for c, f, twin, sign in _twins(cells):
        if c.variant == variant:
            at = dict(f.positions)
            inward = {n: m * (1.0 if at[n] < 0.5 else -1.0) for n, m in f.moves}
            delta = sign * (f.values[0] - twin.values[0])
            rows.setdefault((c.task, c.scheduler), []).append((inward, delta))
    out = []
    for (task, scheduler), data in sorted(rows.items()):
        names = sorted({n for moves, _ in data for n in moves})
        x = np.array([[1.0] + [m.get(n, 0.0) / UNIT for n in names] for m, _ in data])
        y = np.array([d for _, d in data])
        dof = len(y) - x.shape[1]
        if dof < 1:
            continue
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        sigma2 = float(np.sum((y - x @ coef) ** 2)) / dof
        se = np.sqrt(np.diag(sigma2 * np.linalg.pinv(x.T @ x)))
        t_crit = float(scipy.stats.t.ppf(0.975, dof))
        for i, name in enumerate(names, start=1):
            t = coef[i] / se[i] if se[i] > 0 else math.inf
            out.append(
                ParameterEffect(
                    task=task,
                    scheduler=scheduler,
                    variant=variant,
                    param=name,
                    n=len(y),
                    effect=float(coef[i]),
                    low=float(coef[i] - t_crit * se[i]),
                    high=float(coef[i] + t_crit * se[i]),
                    p=float(2 * scipy.stats.t.sf(abs(t), dof)),
                )
            )
    return out
