"""Statistics of the bench grid: paired tests, bootstrap ratios, distribution shifts.

Pure functions on plain numbers (``scipy.stats`` / ``numpy``); nothing here touches a storage.

Censoring of time to target
---------------------------
:func:`optuna_ohgw.evidence.metrics.time_to_target` is ``None`` when a run never reached the
target: a *right-censored* observation, known only to exceed the run's censoring time (the budget
it used on that clock, ``StudyMetrics.budget``). Such runs are never dropped and never read as
"reached at the end of the budget". The rules, used by every function here that takes
``censored`` flags, are:

* :func:`censor` turns ``(time or None, budget)`` pairs into :class:`Censored`: ``time`` holds the
  observed time, or the censoring time (the budget) where ``censored`` is ``True``. The censoring
  time is kept only as a *lower bound*; the count of censored runs is reported per arm.
* Order (*worst rank*): a censored run is slower than any run that reached the target at or
  before its censoring time. Two runs are *comparable* when both reached the target, or one did
  at time ``t`` and the other is censored at ``c >= t``. Otherwise (both censored, or censored
  before the other's observed time) their order is unknown.
* Median of an arm (:func:`censored_median`): the censored runs are put at ``+inf`` and the
  ordinary median is taken (with an even count, the mean of the two middle order statistics,
  ``inf`` if either is censored).
  ``inf`` therefore means "the median run did not reach the target". This is exact whenever every
  censoring time is at least the median, which holds when the arms' budgets are equal.
* Paired Wilcoxon (:func:`paired_wilcoxon`): per seed, the difference ``a - b``. Comparable pairs
  with both observed give the plain difference. Comparable pairs with one censored side get the
  known sign (the censored side is slower) and a magnitude larger than every finite ``|d|``
  (``1 + max |d|``), so they take the largest ranks (tied among themselves). Pairs whose order is
  unknown are left out and counted (``n_unordered``).
* Ratio of medians (:func:`median_ratio_ci`): ``censored_median(a) / censored_median(b)``, with
  ``x / inf = 0``, ``inf / x = inf``, and ``inf / inf`` undefined (``None``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st


def _array(x: Sequence[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else float(v) for v in x], dtype=float)


def _flags(flags: Sequence[bool] | None, n: int) -> np.ndarray:
    if flags is None:
        return np.zeros(n, dtype=bool)
    out = np.asarray(list(flags), dtype=bool)
    if out.shape != (n,):
        raise ValueError(f"expected {n} censoring flags, got {out.shape[0]}.")
    return out


# ----- censoring --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Censored:
    """Times to target of one arm: ``time[i]`` is observed, or the censoring time (a lower
    bound) where ``censored[i]``."""

    time: np.ndarray
    censored: np.ndarray

    @property
    def n(self) -> int:
        return int(self.time.shape[0])

    @property
    def n_censored(self) -> int:
        return int(self.censored.sum())

    def as_inf(self) -> np.ndarray:
        """The times with censored runs at ``+inf`` (worst rank)."""
        return np.where(self.censored, np.inf, self.time)


def censor(times: Sequence[float | None], budgets: Sequence[float]) -> Censored:
    """``None`` times become censored at the matching budget (the censoring time)."""
    if len(times) != len(budgets):
        raise ValueError("times and budgets must have the same length.")
    flags = np.asarray([t is None for t in times], dtype=bool)
    values = np.asarray(
        [float(b) if t is None else float(t) for t, b in zip(times, budgets)], dtype=float
    )
    return Censored(values, flags)


def censored_median(times: Sequence[float], censored: Sequence[bool] | None = None) -> float:
    """Median with censored runs at ``+inf`` (``inf``: the median run never reached the
    target); ``nan`` for no runs."""
    x = _array(times)
    c = _flags(censored, x.shape[0])
    if x.size == 0:
        return math.nan
    x = np.sort(np.where(c, np.inf, x))
    n = x.size
    if n % 2:
        return float(x[n // 2])
    lo, hi = x[n // 2 - 1], x[n // 2]
    return float(np.inf) if np.isinf(hi) else float((lo + hi) / 2.0)


def _ratio(num: float, den: float) -> float | None:
    if math.isnan(num) or math.isnan(den):
        return None
    if math.isinf(num) and math.isinf(den):
        return None
    if math.isinf(den):
        return 0.0
    if math.isinf(num):
        return math.inf
    if den == 0.0:
        return math.inf if num > 0 else None
    return num / den


# ----- paired Wilcoxon --------------------------------------------------------------------------

_UNORDERED, _OBSERVED = 0, 2
"""Kinds of a pair from :func:`_pair_kinds`; the others are the known sign, ``+1`` (``a`` censored
and slower) and ``-1`` (``b`` censored and slower)."""


def _pair_kinds(
    a: Sequence[float | None],
    b: Sequence[float | None],
    a_censored: Sequence[bool] | None,
    b_censored: Sequence[bool] | None,
) -> list[tuple[int, float, float]]:
    """Per pair ``(kind, a, b)`` by the module's censoring rules: ``_OBSERVED`` (both sides
    reached the target), ``+1`` / ``-1`` (one side censored at or after the other's time: that
    side is slower, ``a`` for ``+1``) or ``_UNORDERED`` (both censored, censored before the other's
    time, or a missing side not flagged censored)."""
    x, y = _array(a), _array(b)
    if x.shape != y.shape:
        raise ValueError("a and b must be paired (same length).")
    cx, cy = _flags(a_censored, x.size), _flags(b_censored, y.size)
    out = []
    for xi, yi, cxi, cyi in zip(x, y, cx, cy):
        if (np.isnan(xi) and not cxi) or (np.isnan(yi) and not cyi) or (cxi and cyi):
            kind = _UNORDERED
        elif cxi:  # a censored at xi: slower than b only if b reached by then
            kind = 1 if yi <= xi else _UNORDERED
        elif cyi:
            kind = -1 if xi <= yi else _UNORDERED
        else:
            kind = _OBSERVED
        out.append((kind, float(xi), float(yi)))
    return out


@dataclasses.dataclass(frozen=True)
class WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of paired ``a - b``.

    ``p`` is ``None`` when the test is undefined (fewer than 2 pairs, or no non-zero
    difference); ``note`` says why. ``median_difference`` is the median of the used differences
    (censored-side ones at ``+-inf``; ``None`` when its two middle ones are ``-inf`` and
    ``+inf``)."""

    n_pairs: int
    n_used: int
    n_unordered: int
    n_zero: int
    statistic: float | None
    p: float | None
    median_difference: float | None
    note: str = ""


def _median_difference(shown: np.ndarray) -> float | None:
    """The median of the differences, censored ones at ``+-inf``; ``None`` when there are none,
    or when the two middle ones of an even count are ``-inf`` and ``+inf`` (undefined)."""
    if not shown.size:
        return None
    with np.errstate(invalid="ignore"):  # -inf + inf: NaN, the undefined case
        median = float(np.median(shown))
    return None if math.isnan(median) else median


def paired_wilcoxon(
    a: Sequence[float | None],
    b: Sequence[float | None],
    a_censored: Sequence[bool] | None = None,
    b_censored: Sequence[bool] | None = None,
) -> WilcoxonResult:
    """Two-sided paired Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, ``zero_method=
    "wilcox"``: zero differences are dropped; exact p for small samples without ties, normal
    approximation otherwise) of ``a[i] - b[i]``.

    Pairs with a ``None``/NaN side that is not flagged censored are left out (``n_unordered``).
    Censored sides follow the module's rules (worst rank; unknown orders left out).
    """
    pairs = _pair_kinds(a, b, a_censored, b_censored)
    finite = [xi - yi for kind, xi, yi in pairs if kind == _OBSERVED]
    signs = [float(kind) for kind, _, _ in pairs if kind in (1, -1)]
    unordered = sum(kind == _UNORDERED for kind, _, _ in pairs)
    big = 1.0 + max((abs(d) for d in finite), default=0.0)
    diffs = np.asarray(finite + [s * big for s in signs], dtype=float)
    shown = np.asarray(finite + [s * np.inf for s in signs], dtype=float)
    n_zero = int(np.sum(diffs == 0.0))
    nonzero = diffs[diffs != 0.0]
    common = dict(
        n_pairs=len(pairs),
        n_used=int(diffs.size),
        n_unordered=unordered,
        n_zero=n_zero,
        median_difference=_median_difference(shown),
    )
    if diffs.size < 2:
        return WilcoxonResult(statistic=None, p=None, note="fewer than 2 usable pairs", **common)
    if nonzero.size == 0:
        return WilcoxonResult(
            statistic=None, p=None, note="all differences are zero (identical arms)", **common
        )
    res = _st.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided")
    p = float(res.pvalue)
    return WilcoxonResult(statistic=float(res.statistic), p=None if math.isnan(p) else p, **common)


# ----- multiple comparisons ---------------------------------------------------------------------


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p values (family-wise error rate), in the input order.

    With the ``m`` defined p values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted
    value of the ``k``-th is ``max_{j <= k} min(1, (m - j + 1) * p_(j))``: rejecting every
    hypothesis whose adjusted p is below ``alpha`` keeps the chance of any false rejection in
    the family at most ``alpha``, whatever the dependence between the tests. ``None`` (an
    undefined test) stays ``None`` and is not counted in ``m``. Ties keep their input order,
    which gives them the same adjusted value.
    """
    defined = sorted(
        ((float(p), i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)),
        key=lambda pi: pi[0],
    )
    m = len(defined)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for k, (p, i) in enumerate(defined):
        running = max(running, min(1.0, (m - k) * p))
        out[i] = running
    return out


# ----- bootstrap ratio of medians ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RatioCI:
    """``ratio = median(a) / median(b)`` with a paired percentile bootstrap CI.

    ``None`` fields: undefined (no data, or both medians ``inf``). ``n_undefined`` counts the
    bootstrap replicates whose ratio was undefined; the CI is taken over the others."""

    ratio: float | None
    low: float | None
    high: float | None
    n_boot: int
    n_undefined: int
    level: float


def median_ratio_ci(
    a: Sequence[float | None],
    b: Sequence[float | None],
    n_boot: int = 2000,
    seed: int = 0,
    *,
    a_censored: Sequence[bool] | None = None,
    b_censored: Sequence[bool] | None = None,
    level: float = 0.95,
) -> RatioCI:
    """Ratio of medians ``censored_median(a) / censored_median(b)`` (the claim is about the
    *median* time to target of each arm), with a percentile bootstrap CI that resamples the
    seeds *in pairs* (the same indices for both arms, keeping the pairing), ``n_boot``
    replicates from ``numpy.random.default_rng(seed)``. Percentiles use
    ``method="inverted_cdf"`` (no interpolation, so ``inf`` replicates are kept as ``inf``).

    Pairs with a ``None``/NaN side that is not flagged censored are dropped first.
    """
    x, y = _array(a), _array(b)
    if x.shape != y.shape:
        raise ValueError("a and b must be paired (same length).")
    cx, cy = _flags(a_censored, x.size), _flags(b_censored, y.size)
    keep = ~((np.isnan(x) & ~cx) | (np.isnan(y) & ~cy))
    x = np.where(cx, np.inf, x)[keep]
    y = np.where(cy, np.inf, y)[keep]
    if x.size == 0:
        return RatioCI(None, None, None, n_boot, 0, level)
    ratio = _ratio(censored_median(x), censored_median(y))
    rng = np.random.default_rng(seed)
    reps: list[float] = []
    undefined = 0
    for _ in range(n_boot):
        idx = rng.integers(0, x.size, size=x.size)
        r = _ratio(censored_median(x[idx]), censored_median(y[idx]))
        if r is None:
            undefined += 1
        else:
            reps.append(r)
    if not reps:
        return RatioCI(ratio, None, None, n_boot, undefined, level)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(reps), [alpha, 1.0 - alpha], method="inverted_cdf")
    return RatioCI(ratio, float(low), float(high), n_boot, undefined, level)


# ----- per-seed ratios --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PerSeed:
    """Paired times seed by seed: the median of the per-seed ratios ``a[i] / b[i]`` and how
    many seeds ``a`` was faster, tied or slower in.

    The ratio of medians (:func:`median_ratio_ci`) compares the two arms' typical runs; the
    median of per-seed ratios compares them seed by seed, and the counts say in how many seeds
    the arm was actually faster. Where the ratio of medians is below 1 but the arm was slower in
    as many seeds as it was faster (or the per-seed median is at least 1), the ratio reads as a
    gain that the seeds do not show."""

    median_ratio: float | None
    """Median of the per-seed ratios (``None``: no seed with a defined ratio)."""
    faster: int
    tied: int
    slower: int
    unordered: int
    """Seeds whose order is unknown (both censored, or censored before the other's time)."""


def per_seed_ratios(
    a: Sequence[float | None],
    b: Sequence[float | None],
    a_censored: Sequence[bool] | None = None,
    b_censored: Sequence[bool] | None = None,
) -> PerSeed:
    """Per seed, ``a[i] / b[i]`` and the order of ``a[i]`` against ``b[i]``.

    Censoring follows the module's rules. A seed with both sides observed gives the plain ratio
    and its order. A comparable seed with one censored side has the known order (the censored
    side is slower) and the ratio of the module's ``inf`` convention: ``x / inf = 0`` (``a``
    reached, ``b`` did not), ``inf / x = inf`` (the reverse); it enters the median only through
    its rank. Seeds whose order is unknown (both censored, or censored before the other's
    observed time) and seeds with a missing side are left out and counted as ``unordered``.
    The median of an even count is the mean of the two middle ratios (``inf`` if either is).
    """
    ratios: list[float] = []
    faster = tied = slower = unordered = 0
    for kind, xi, yi in _pair_kinds(a, b, a_censored, b_censored):
        if kind == _UNORDERED:
            unordered += 1
        elif kind == 1:  # a censored, slower
            slower += 1
            ratios.append(math.inf)
        elif kind == -1:  # b censored, a faster
            faster += 1
            ratios.append(0.0)
        else:
            faster += int(xi < yi)
            tied += int(xi == yi)
            slower += int(xi > yi)
            r = _ratio(xi, yi)
            if r is not None:
                ratios.append(r)
    median = censored_median(ratios) if ratios else None
    return PerSeed(median, faster, tied, slower, unordered)


# ----- distribution shift -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KSResult:
    """Two-sample two-sided Kolmogorov-Smirnov test; ``p`` ``None`` when a sample is empty."""

    n_x: int
    n_y: int
    statistic: float | None
    p: float | None


def ks_shift(x: Sequence[float], y: Sequence[float]) -> KSResult:
    """``scipy.stats.ks_2samp(x, y)`` (two-sided) on the finite values of each sample."""
    xa = _array(x)
    ya = _array(y)
    xa, ya = xa[np.isfinite(xa)], ya[np.isfinite(ya)]
    if xa.size == 0 or ya.size == 0:
        return KSResult(int(xa.size), int(ya.size), None, None)
    res = _st.ks_2samp(xa, ya, alternative="two-sided")
    return KSResult(int(xa.size), int(ya.size), float(res.statistic), float(res.pvalue))
