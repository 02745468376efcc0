"""PASHA's decision logic as pure functions: no Optuna, no torch, no I/O.

PASHA (Bohdal, Balles, Wistuba, Ermis, Archambeau, Zappella, "PASHA: Efficient HPO and NAS with
Progressive Resource Allocation", ICLR 2023) is promotion-type ASHA whose *maximum* resource grows
only when needed. It starts at ``eta * r_min`` (two rungs) and, each time a result comes in,
compares how the configurations in the current top rung rank there and in the rung below. If the
rankings disagree by more than the noise level ``epsilon``, the maximum goes up one rung, until
it reaches the configured maximum. It never goes down.

The semantics follow syne-tune v0.13, ``syne_tune/optimizer/schedulers/hyperband_pasha.py``
(``PASHARungSystem``: ``_update_epsilon``, ``_get_sorted_top_rungs``, ``_evaluate_soft_ranking``,
``_decide_resource_increase``, ``on_task_report``) and its rung levels from
``successive_halving_rung_levels``. The docstrings below say where and why this implementation
differs. Everything works on learning curves, ``config -> {epoch: value}``;
a configuration *is in a rung* iff its curve has a value at exactly that rung's epoch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from optuna_ohgw.schedulers._rungs import rung_epochs
from optuna_ohgw.schedulers._rungs import rung_levels as rung_levels

Mode = Literal["min", "max"]
Curves = Mapping[Hashable, Mapping[int, float]]

#: Percentile of the swap distances that PASHA uses as epsilon (paper and syne-tune).
DEFAULT_PERCENTILE = 90.0


def _check_mode(mode: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")


def _check_epsilon(epsilon: float) -> None:
    if not (epsilon >= 0.0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon}.")


def _check_finite(values: Iterable[float]) -> None:
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"learning-curve values must be finite, got {v}.")


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def resource_ladder(min_resource: int, reduction_factor: int, max_resource: int) -> list[int]:
    """Return the values PASHA's maximum resource can take, in increasing order.

    These are the rung levels strictly below ``max_resource`` followed by ``max_resource``
    itself, as in syne-tune, whose rung levels are all ``< max_t`` and whose last raise sets
    ``current_max_t = max_t``. With ``r_min=1, eta=3``: ``max_resource=81`` gives
    ``[1, 3, 9, 27, 81]``, ``max_resource=100`` gives ``[1, 3, 9, 27, 81, 100]``.
    """
    if max_resource <= min_resource:
        raise ValueError(
            f"max_resource ({max_resource}) must be greater than min_resource ({min_resource})."
        )
    return rung_epochs(min_resource, reduction_factor, max_resource)


def initial_max_resource(min_resource: int, reduction_factor: int, max_resource: int) -> int:
    """PASHA's starting maximum: the second entry of the ladder, i.e. ``eta * r_min``.

    It is ``max_resource`` itself when ``max_resource <= eta * r_min``. syne-tune starts at
    ``rung_levels[min(len(rung_levels) - 1, 2) - 1]``, which is the same for three or more rung
    levels but ``r_min`` for two (and fails for one); we follow the paper instead.
    """
    return resource_ladder(min_resource, reduction_factor, max_resource)[1]


def _noisy_pair_distance(
    curve_a: Mapping[int, float],
    curve_b: Mapping[int, float],
    lower_epoch: float,
    upper_epoch: float,
) -> float | None:
    """Distance of a pair that swapped order and swapped back, or ``None`` if it did not.

    The pair is judged at its *anchor*: the latest common epoch in ``(lower_epoch,
    upper_epoch]``. Scanning the earlier common epochs backwards, it must first be found in the
    opposite strict order and then, further back, in the anchor's strict order again. Epochs
    where the two values are exactly equal carry no order and are skipped; a tie at the anchor
    disqualifies the pair. The distance is ``|a - b|`` at the anchor.
    """
    common = sorted(set(curve_a) & set(curve_b))
    in_window = [e for e in common if lower_epoch < e <= upper_epoch]
    if not in_window:
        return None
    anchor = in_window[-1]
    order = _sign(curve_a[anchor] - curve_b[anchor])
    if order == 0:
        return None
    seen_opposite = False
    for epoch in reversed(common[: common.index(anchor)]):
        earlier = _sign(curve_a[epoch] - curve_b[epoch])
        if earlier == -order:
            seen_opposite = True
        elif earlier == order and seen_opposite:
            return abs(curve_a[anchor] - curve_b[anchor])
    return None


def noisy_pair_distances(
    curves: Curves,
    *,
    lower_epoch: float = -math.inf,
    upper_epoch: float = math.inf,
) -> list[float]:
    """Return the anchor distances of all pairs of curves that swapped order and swapped back.

    Each unordered pair of configurations is counted at most once, at its latest common epoch in
    ``(lower_epoch, upper_epoch]`` (see :func:`_noisy_pair_distance`). Only epochs both curves
    report are compared, so curves with missing epochs are handled.
    """
    # Only curves with an epoch in the window can form a pair: skip the O(n^2) pass over all
    # configurations when (as for most reports) fewer than two reach it.
    reaching = [
        c for c, curve in curves.items() if any(lower_epoch < e <= upper_epoch for e in curve)
    ]
    distances = []
    for a, b in itertools.combinations(reaching, 2):
        d = _noisy_pair_distance(curves[a], curves[b], lower_epoch, upper_epoch)
        if d is not None:
            distances.append(d)
    return distances


def estimate_epsilon(
    curves: Curves,
    percentile: float = DEFAULT_PERCENTILE,
    *,
    lower_epoch: float = -math.inf,
    upper_epoch: float = math.inf,
    default: float = 0.0,
) -> float:
    """Estimate PASHA's ranking noise ``epsilon`` from learning curves.

    ``epsilon`` is the ``percentile`` (numpy's linear interpolation, as in syne-tune) of
    :func:`noisy_pair_distances`: pairs of configurations whose order flipped and flipped back
    are taken to differ only by noise, and their gap measures how large that noise is. PASHA
    passes the epochs between its top two rungs, ``(previous rung, top rung]``, as the window.

    If no pair qualifies, ``default`` is returned: syne-tune keeps its previous epsilon (initially
    0.0), so :func:`decide_max_resource` passes the previous value here.

    Differences from syne-tune's ``_update_epsilon``, all on inputs where it is ill-defined:
    only common epochs are compared (syne-tune needs every epoch ``1..anchor`` of both curves
    and raises ``KeyError`` otherwise); every common epoch below the anchor is scanned, where
    syne-tune stops at epoch 1; and exact ties are orderless, where syne-tune's ``p1 > p2``
    reads a tie as "second is ahead", so its answer depends on which config of the pair comes
    first in a ``set``.
    """
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}.")
    _check_epsilon(default)
    for curve in curves.values():
        _check_finite(curve.values())
    distances = noisy_pair_distances(curves, lower_epoch=lower_epoch, upper_epoch=upper_epoch)
    if not distances:
        return default
    return float(np.percentile(distances, percentile))


class SoftRank(NamedTuple):
    """The 0-based positions a configuration may occupy in a soft ranking (best first)."""

    best: int
    worst: int


def soft_rank(
    values: Mapping[Hashable, float], epsilon: float, mode: Mode
) -> dict[Hashable, SoftRank]:
    """Soft-rank configurations: values within ``epsilon`` may stand in each other's place.

    Sort the configurations best first. In syne-tune's soft ranking, position ``i`` may be held
    by any configuration whose value is within ``epsilon`` (inclusive) of the value sorted at
    position ``i``. Because the values are sorted, the positions a configuration ``c`` may hold
    form an interval ``[best, worst]``: ``best`` counts the configurations better than ``c``
    by more than ``epsilon``, and ``n - 1 - worst`` those worse than ``c`` by more than
    ``epsilon``. So configurations within ``epsilon`` of each other share positions; with
    ``epsilon = 0`` only exact ties do, and without ties ``best == worst`` is the ordinary rank.
    The relation is not transitive: ``1.0, 0.75, 0.5`` with ``epsilon = 0.25`` gives
    ``[0, 1], [0, 2], [1, 2]``. The intervals do not depend on how ties are ordered.
    """
    _check_mode(mode)
    _check_epsilon(epsilon)
    _check_finite(values.values())
    sign = 1.0 if mode == "max" else -1.0
    n = len(values)
    ranks = {}
    for c, v in values.items():
        better = sum(1 for w in values.values() if sign * (w - v) > epsilon)
        worse = sum(1 for w in values.values() if sign * (v - w) > epsilon)
        ranks[c] = SoftRank(best=better, worst=n - 1 - worse)
    return ranks


def ranking_is_stable(
    top_rung: Mapping[Hashable, float],
    previous_rung: Mapping[Hashable, float],
    epsilon: float,
    mode: Mode,
) -> bool:
    """Whether the top rung ranks its configurations as the previous rung does, up to epsilon.

    Only configurations present in both rungs are compared (in promotion-type PASHA every
    configuration in the top rung passed through the previous one). The top rung is sorted best
    first by its own values, hard (no epsilon). The ranking is stable iff the configuration at
    each position ``i`` may hold position ``i`` in the :func:`soft_rank` of the previous rung's
    values. Fewer than two configurations are always stable, as in syne-tune, which therefore
    never raises the maximum before two configurations reach the top rung.

    Exact ties in the top rung are ordered by the previous rung's values. syne-tune orders them
    by insertion, so its answer can depend on the order results arrived; ours is the favourable
    order, since a tie at the top rung is no evidence that the ranking changed.
    """
    _check_mode(mode)
    _check_epsilon(epsilon)
    common = [c for c in top_rung if c in previous_rung]
    if len(common) < 2:
        return True
    previous = {c: previous_rung[c] for c in common}
    ranks = soft_rank(previous, epsilon, mode)
    _check_finite(top_rung[c] for c in common)
    sign = -1.0 if mode == "max" else 1.0  # ascending sort key puts the best first
    top_order = sorted(common, key=lambda c: (sign * top_rung[c], sign * previous[c]))
    return all(ranks[c].best <= i <= ranks[c].worst for i, c in enumerate(top_order))


@dataclass(frozen=True)
class PashaDecision:
    """Outcome of one PASHA check.

    Attributes:
        max_resource: The maximum resource from now on (equal to or one rung above the old one).
        epsilon: The epsilon the check used; pass it to the next check.
        raised: Whether ``max_resource`` went up.
        top_level: The rung compared (the old maximum), or ``None`` if nothing was compared.
        previous_level: The rung below it, or ``None``.
    """

    max_resource: int
    epsilon: float
    raised: bool
    top_level: int | None = None
    previous_level: int | None = None


def decide_max_resource(
    curves: Curves,
    *,
    min_resource: int,
    reduction_factor: int,
    max_resource: int,
    current_max_resource: int,
    mode: Mode,
    epsilon: float = 0.0,
    percentile: float = DEFAULT_PERCENTILE,
) -> PashaDecision:
    """Decide whether PASHA raises its maximum resource by one rung.

    Mirrors one call of syne-tune's ``PASHARungSystem.on_task_report`` after the new result is
    recorded: re-estimate epsilon on the epochs between the top two rungs (keeping the previous
    ``epsilon`` if no pair of curves swapped and swapped back there), then raise the maximum to
    the next entry of :func:`resource_ladder` iff :func:`ranking_is_stable` is false for the top
    rung (``current_max_resource``) against the rung below it. Call it once per reported result;
    a call raises by at most one rung and never lowers. At the configured maximum nothing is
    compared and the inputs come back unchanged (syne-tune keeps updating epsilon there, but it
    can no longer change anything).

    Args:
        curves: ``config -> {epoch: value}``, every value each configuration has reported.
        min_resource: ``r_min``, the first rung.
        reduction_factor: ``eta``.
        max_resource: The configured maximum resource; PASHA never goes above it.
        current_max_resource: The current maximum, an entry of the ladder other than its first.
        mode: ``"max"`` if larger values are better, ``"min"`` otherwise.
        epsilon: The epsilon of the previous check (0.0 at the start).
        percentile: Percentile of the swap distances used as epsilon.
    """
    _check_mode(mode)
    _check_epsilon(epsilon)
    ladder = resource_ladder(min_resource, reduction_factor, max_resource)
    if current_max_resource not in ladder[1:]:
        raise ValueError(
            f"current_max_resource must be one of {ladder[1:]}, got {current_max_resource}."
        )
    k = ladder.index(current_max_resource)
    if k == len(ladder) - 1:
        return PashaDecision(max_resource=current_max_resource, epsilon=epsilon, raised=False)
    top_level, previous_level = ladder[k], ladder[k - 1]
    new_epsilon = estimate_epsilon(
        curves,
        percentile,
        lower_epoch=previous_level,
        upper_epoch=top_level,
        default=epsilon,
    )
    top_rung = {c: curve[top_level] for c, curve in curves.items() if top_level in curve}
    previous_rung = {
        c: curve[previous_level] for c, curve in curves.items() if previous_level in curve
    }
    raised = not ranking_is_stable(top_rung, previous_rung, new_epsilon, mode)
    return PashaDecision(
        max_resource=ladder[k + 1] if raised else current_max_resource,
        epsilon=new_epsilon,
        raised=raised,
        top_level=top_level,
        previous_level=previous_level,
    )


class PashaState:
    """PASHA's mutable state: the current maximum resource and the last epsilon.

    Example:
        >>> state = PashaState(min_resource=1, reduction_factor=3, max_resource=27, mode="max")
        >>> state.max_resource
        3
        >>> state.update({"a": {1: 0.5, 3: 0.6}, "b": {1: 0.4, 3: 0.7}}).max_resource
        9
    """

    def __init__(
        self,
        min_resource: int,
        reduction_factor: int,
        max_resource: int,
        mode: Mode,
        percentile: float = DEFAULT_PERCENTILE,
    ) -> None:
        _check_mode(mode)
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {percentile}.")
        self.min_resource = min_resource
        self.reduction_factor = reduction_factor
        self.configured_max_resource = max_resource
        self.mode: Mode = mode
        self.percentile = percentile
        self.max_resource = initial_max_resource(min_resource, reduction_factor, max_resource)
        self.epsilon = 0.0

    def update(self, curves: Curves) -> PashaDecision:
        """Run :func:`decide_max_resource` on ``curves`` and keep its maximum and epsilon."""
        decision = decide_max_resource(
            curves,
            min_resource=self.min_resource,
            reduction_factor=self.reduction_factor,
            max_resource=self.configured_max_resource,
            current_max_resource=self.max_resource,
            mode=self.mode,
            epsilon=self.epsilon,
            percentile=self.percentile,
        )
        self.max_resource = decision.max_resource
        self.epsilon = decision.epsilon
        return decision
