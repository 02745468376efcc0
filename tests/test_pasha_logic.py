"""PASHA's pure decision logic on hand-made learning curves with hand-computed answers.

Values are integers or binary fractions (0.25, 0.75, ...) so that every comparison with epsilon
is exact in floating point.
"""

from __future__ import annotations

import pytest

from optuna_ohgw.schedulers._pasha_logic import (
    PashaDecision,
    PashaState,
    SoftRank,
    decide_max_resource,
    estimate_epsilon,
    initial_max_resource,
    noisy_pair_distances,
    ranking_is_stable,
    resource_ladder,
    rung_levels,
    soft_rank,
)

# --------------------------------------------------------------------------- rung levels


def test_rung_levels() -> None:
    # 1*3^k <= 81: 1, 3, 9, 27, 81 (81 included).
    assert rung_levels(1, 3, 81) == [1, 3, 9, 27, 81]
    # 243 > 100 so the last is 81.
    assert rung_levels(1, 3, 100) == [1, 3, 9, 27, 81]
    # 2*2^k <= 20: 2, 4, 8, 16.
    assert rung_levels(2, 2, 20) == [2, 4, 8, 16]
    assert rung_levels(5, 3, 5) == [5]


@pytest.mark.parametrize("args", [(0, 3, 9), (1, 1, 9), (4, 3, 3)])
def test_rung_levels_rejects_bad_arguments(args: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        rung_levels(*args)


def test_resource_ladder_ends_at_the_configured_maximum() -> None:
    # Rung levels < max, then max itself (syne-tune: rung levels < max_t, last raise -> max_t).
    assert resource_ladder(1, 3, 81) == [1, 3, 9, 27, 81]
    assert resource_ladder(1, 3, 100) == [1, 3, 9, 27, 81, 100]
    assert resource_ladder(1, 3, 20) == [1, 3, 9, 20]
    assert resource_ladder(1, 3, 2) == [1, 2]
    with pytest.raises(ValueError):
        resource_ladder(3, 3, 3)


def test_initial_max_resource_is_eta_times_r_min() -> None:
    assert initial_max_resource(1, 3, 81) == 3
    assert initial_max_resource(2, 2, 20) == 4
    # Two rung levels below max (syne-tune would start at r_min = 1 here): still eta * r_min.
    assert initial_max_resource(1, 3, 9) == 3
    # max <= eta * r_min: start (and stay) at the configured maximum.
    assert initial_max_resource(1, 3, 3) == 3
    assert initial_max_resource(1, 3, 2) == 2


# --------------------------------------------------------------------------- epsilon


def test_epsilon_of_one_pair_that_swaps_and_swaps_back() -> None:
    # a - b by epoch: e1 +20, e2 -20, e3 +10.
    # Anchor e3 (order +); going back: e2 is opposite, e1 is + again -> distance |80 - 70| = 10.
    curves = {"a": {1: 50, 2: 40, 3: 80}, "b": {1: 30, 2: 60, 3: 70}}
    assert noisy_pair_distances(curves) == [10]
    assert estimate_epsilon(curves) == 10.0


def test_epsilon_is_the_90th_percentile_of_the_swap_distances() -> None:
    curves = {
        "a": {1: 50, 2: 40, 3: 80},
        "b": {1: 30, 2: 60, 3: 70},
        "c": {1: 45, 2: 35, 3: 50},
        "d": {1: 20, 2: 90, 3: 40},
    }
    # Pair signs of (x - y) at e1, e2, e3 and the anchor (e3) distance:
    #   a,b: +20 -20 +10  -> swapped and back: 10
    #   a,c: + 5 + 5 +30  -> never swapped
    #   a,d: +30 -50 +40  -> swapped and back: 40
    #   b,c: -15 +25 +20  -> swapped once only (c ahead at e1): not counted
    #   b,d: +10 -30 +30  -> swapped and back: 30
    #   c,d: +25 -55 +10  -> swapped and back: 10
    assert sorted(noisy_pair_distances(curves)) == [10, 10, 30, 40]
    # np.percentile (linear): sorted [10, 10, 30, 40], position 0.9 * 3 = 2.7
    #   -> 30 + 0.7 * (40 - 30) = 37.
    assert estimate_epsilon(curves) == pytest.approx(37.0)
    # Median: position 1.5 -> 10 + 0.5 * (30 - 10) = 20.
    assert estimate_epsilon(curves, percentile=50.0) == pytest.approx(20.0)
    # 0th / 100th percentile: min / max.
    assert estimate_epsilon(curves, percentile=0.0) == 10.0
    assert estimate_epsilon(curves, percentile=100.0) == 40.0


def test_epsilon_without_swaps_is_the_default() -> None:
    # a always ahead of b, c always behind both: no pair ever swaps.
    curves = {"a": {1: 3, 2: 4, 3: 5}, "b": {1: 2, 2: 3, 3: 4}, "c": {1: 1, 2: 1, 3: 1}}
    assert noisy_pair_distances(curves) == []
    assert estimate_epsilon(curves) == 0.0
    # syne-tune keeps its previous epsilon when nothing qualifies.
    assert estimate_epsilon(curves, default=0.25) == 0.25
    # A single curve, or none, has no pairs.
    assert estimate_epsilon({"a": {1: 1.0}}) == 0.0
    assert estimate_epsilon({}) == 0.0


def test_a_single_swap_is_not_noise() -> None:
    # a - b: e1 -10, e2 -10, e3 +10: b was ahead, then a overtook it and stayed ahead.
    curves = {"a": {1: 10, 2: 20, 3: 40}, "b": {1: 20, 2: 30, 3: 30}}
    assert estimate_epsilon(curves, default=1.5) == 1.5


def test_epsilon_uses_only_common_epochs() -> None:
    # b has no epoch 3. Common epochs: {1, 2, 4}.
    # a - b: e1 +20, e2 -20, e4 +5 -> swapped and back, anchor e4, distance 5.
    # (a's epoch 3 is ignored; syne-tune would raise KeyError on b[3].)
    curves = {"a": {1: 50, 2: 40, 3: 80, 4: 75}, "b": {1: 30, 2: 60, 4: 70}}
    assert noisy_pair_distances(curves) == [5]
    # Without b's epoch 2 the swap is invisible: common {1, 4}, both +.
    curves_gap = {"a": {1: 50, 2: 40, 3: 80, 4: 75}, "b": {1: 30, 4: 70}}
    assert noisy_pair_distances(curves_gap) == []
    # Curves that share no epoch are never compared.
    assert noisy_pair_distances({"a": {1: 1.0, 2: 2.0}, "b": {3: 0.0, 4: 5.0}}) == []


def test_epsilon_window_picks_the_anchor_epoch() -> None:
    # a - b: e1 +20, e2 -20, e3 -5, e4 +10.
    curves = {"a": {1: 50, 2: 40, 3: 45, 4: 80}, "b": {1: 30, 2: 60, 3: 50, 4: 70}}
    # Window (2, 4]: anchor e4 (+); back: e3 -, e2 -, e1 + -> distance 10.
    assert noisy_pair_distances(curves, lower_epoch=2, upper_epoch=4) == [10]
    # Window (1, 3]: anchor e3 (-); back: e2 - (same), e1 + (opposite), nothing earlier -> none.
    # The scan before the anchor still reaches below the window (down to e1), as in syne-tune.
    assert noisy_pair_distances(curves, lower_epoch=1, upper_epoch=3) == []
    # Window (2, 3]: anchor e3 again -> none.
    assert noisy_pair_distances(curves, lower_epoch=2, upper_epoch=3) == []
    # Window (4, 9]: no common epoch in it -> pair skipped.
    assert noisy_pair_distances(curves, lower_epoch=4, upper_epoch=9) == []


def test_ties_carry_no_order() -> None:
    # Tie at the anchor (e3): the pair is skipped, although it was +10 at e1 and -20 at e2.
    tie_at_anchor = {"a": {1: 60, 2: 40, 3: 50}, "b": {1: 50, 2: 60, 3: 50}}
    assert noisy_pair_distances(tie_at_anchor) == []
    # A tie is not an opposite order: a - b = +10, 0, +10. No swap.
    # (syne-tune's `p1 > p2` would read the tie as a swap when a is first in the pair, giving
    # a distance of 10, and as no swap when b is first.)
    tie_between = {"a": {1: 60, 2: 50, 3: 60}, "b": {1: 50, 2: 50, 3: 50}}
    assert noisy_pair_distances(tie_between) == []
    # Ties are skipped while scanning: a - b = +10, 0, -10, 0, +10 -> swapped and back: 10.
    tie_skipped = {"a": {1: 60, 2: 50, 3: 40, 4: 50, 5: 60}, "b": dict.fromkeys(range(1, 6), 50)}
    assert noisy_pair_distances(tie_skipped) == [10]


def test_epsilon_does_not_depend_on_the_order_of_the_curves() -> None:
    curves = {
        "a": {1: 50, 2: 40, 3: 80},
        "b": {1: 30, 2: 60, 3: 70},
        "c": {1: 60, 2: 50, 3: 60},
        "d": {1: 50, 2: 50, 3: 50},
    }
    reversed_curves = dict(reversed(list(curves.items())))
    assert estimate_epsilon(curves) == estimate_epsilon(reversed_curves)
    assert sorted(noisy_pair_distances(curves)) == sorted(noisy_pair_distances(reversed_curves))


def test_estimate_epsilon_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        estimate_epsilon({"a": {1: 1.0}}, percentile=101.0)
    with pytest.raises(ValueError):
        estimate_epsilon({"a": {1: float("nan")}, "b": {1: 1.0}})
    with pytest.raises(ValueError):
        estimate_epsilon({}, default=-1.0)


# --------------------------------------------------------------------------- soft ranking


def test_soft_rank_with_epsilon_zero_is_the_ordinary_rank() -> None:
    values = {"a": 1.0, "b": 0.75, "c": 0.25}
    # max: a best (0), b (1), c (2).
    assert soft_rank(values, 0.0, "max") == {
        "a": SoftRank(0, 0),
        "b": SoftRank(1, 1),
        "c": SoftRank(2, 2),
    }
    # min: reversed.
    assert soft_rank(values, 0.0, "min") == {
        "a": SoftRank(2, 2),
        "b": SoftRank(1, 1),
        "c": SoftRank(0, 0),
    }


def test_soft_rank_ties_share_positions() -> None:
    # a and b tie: either may hold position 0 or 1; c is strictly last.
    values = {"a": 0.5, "b": 0.5, "c": 0.25}
    assert soft_rank(values, 0.0, "max") == {
        "a": SoftRank(0, 1),
        "b": SoftRank(0, 1),
        "c": SoftRank(2, 2),
    }
    assert soft_rank(values, 0.0, "min") == {
        "a": SoftRank(1, 2),
        "b": SoftRank(1, 2),
        "c": SoftRank(0, 0),
    }


def test_soft_rank_merges_within_epsilon() -> None:
    values = {"a": 1.0, "b": 0.75, "c": 0.25}
    # eps = 0.25 (inclusive), max:
    #   a: better by > .25: none -> best 0; worse by > .25: c (.75) -> worst 2 - 1 = 1.
    #   b: better by > .25: none (a is .25 better, not more) -> 0; worse: c (.5) -> worst 1.
    #   c: better by > .25: a (.75), b (.5) -> best 2; worse: none -> worst 2.
    assert soft_rank(values, 0.25, "max") == {
        "a": SoftRank(0, 1),
        "b": SoftRank(0, 1),
        "c": SoftRank(2, 2),
    }
    # eps large enough to merge all: every config may hold every position.
    assert soft_rank(values, 1.0, "max") == {c: SoftRank(0, 2) for c in values}
    assert soft_rank(values, 0.75, "min") == {c: SoftRank(0, 2) for c in values}


def test_soft_rank_is_not_transitive() -> None:
    # 1.0, 0.75, 0.5 with eps 0.25: a~b and b~c but not a~c (0.5 apart).
    values = {"a": 1.0, "b": 0.75, "c": 0.5}
    assert soft_rank(values, 0.25, "max") == {
        "a": SoftRank(0, 1),
        "b": SoftRank(0, 2),
        "c": SoftRank(1, 2),
    }


def test_soft_rank_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        soft_rank({"a": 1.0}, -0.1, "max")
    with pytest.raises(ValueError):
        soft_rank({"a": 1.0}, 0.0, "maximize")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- stability


@pytest.mark.parametrize("mode", ["max", "min"])
def test_same_order_is_stable_and_a_swap_is_not(mode: str) -> None:
    previous = {"a": 1.0, "b": 2.0, "c": 3.0}
    # Same order, different values: stable in both modes.
    assert ranking_is_stable({"a": 1.5, "b": 2.5, "c": 3.5}, previous, 0.0, mode)
    # a and b swap (top: b 1.0 < a 2.0), previous gap 1.0 > eps 0 -> unstable.
    assert not ranking_is_stable({"a": 2.0, "b": 1.0, "c": 3.5}, previous, 0.0, mode)
    # Same swap, eps 1.0 covers the previous gap |1 - 2| = 1 -> stable.
    assert ranking_is_stable({"a": 2.0, "b": 1.0, "c": 3.5}, previous, 1.0, mode)
    # eps 0.75 does not -> unstable.
    assert not ranking_is_stable({"a": 2.0, "b": 1.0, "c": 3.5}, previous, 0.75, mode)


def test_stability_is_position_based() -> None:
    # Previous (max): a 1.0, b .75, c .5, eps .25 -> positions a [0,1], b [0,2], c [1,2].
    previous = {"a": 1.0, "b": 0.75, "c": 0.5}
    # Top order b, a, c: b@0 in [0,2], a@1 in [0,1], c@2 in [1,2] -> stable.
    assert ranking_is_stable({"a": 0.5, "b": 0.75, "c": 0.25}, previous, 0.25, "max")
    # Top order a, c, b: a@0, c@1 in [1,2], b@2 in [0,2] -> stable (a stays ahead of c).
    assert ranking_is_stable({"a": 0.75, "b": 0.25, "c": 0.5}, previous, 0.25, "max")
    # Top order c, a, b: c@0 not in [1,2] (c was .5 behind a) -> unstable.
    assert not ranking_is_stable({"a": 0.5, "b": 0.25, "c": 0.75}, previous, 0.25, "max")
    # Full reversal c, b, a: c@0 not in [1,2] -> unstable.
    assert not ranking_is_stable({"a": 0.25, "b": 0.5, "c": 0.75}, previous, 0.25, "max")


def test_stability_in_min_mode_mirrors_max_mode() -> None:
    previous = {"a": 1.0, "b": 0.75, "c": 0.5}
    tops = [
        {"a": 0.5, "b": 0.75, "c": 0.25},
        {"a": 0.75, "b": 0.25, "c": 0.5},
        {"a": 0.5, "b": 0.25, "c": 0.75},
        {"a": 0.25, "b": 0.5, "c": 0.75},
    ]
    # Negating every value and flipping the mode must not change the answer.
    for top in tops:
        neg_top = {c: -v for c, v in top.items()}
        neg_previous = {c: -v for c, v in previous.items()}
        assert ranking_is_stable(top, previous, 0.25, "max") == ranking_is_stable(
            neg_top, neg_previous, 0.25, "min"
        )
    # In min mode (smaller is better) previous is c .5 [0,1], b .75 [0,2], a 1.0 [1,2].
    # Top c .25, b .5, a .75 (order c, b, a) -> stable; top a .25 first -> a@0 not in [1,2].
    assert ranking_is_stable({"a": 0.75, "b": 0.5, "c": 0.25}, previous, 0.25, "min")
    assert not ranking_is_stable({"a": 0.25, "b": 0.5, "c": 0.75}, previous, 0.25, "min")


def test_ties_in_the_previous_rung_tolerate_either_order() -> None:
    # a and b tie in the previous rung: with eps 0, both may hold positions 0 and 1.
    previous = {"a": 0.5, "b": 0.5, "c": 0.25}
    assert ranking_is_stable({"a": 0.75, "b": 0.5, "c": 0.25}, previous, 0.0, "max")
    assert ranking_is_stable({"a": 0.5, "b": 0.75, "c": 0.25}, previous, 0.0, "max")
    assert not ranking_is_stable({"a": 0.5, "b": 0.25, "c": 0.75}, previous, 0.0, "max")


def test_ties_in_the_top_rung_are_ordered_by_the_previous_rung() -> None:
    # Top tie a = b; previous a .5 > b .25 (max). Ordered a, b -> stable whatever the insertion
    # order (syne-tune would say unstable if b happened to be recorded first).
    previous = {"a": 0.5, "b": 0.25}
    assert ranking_is_stable({"a": 1.0, "b": 1.0}, previous, 0.0, "max")
    assert ranking_is_stable({"b": 1.0, "a": 1.0}, previous, 0.0, "max")
    assert ranking_is_stable({"b": 1.0, "a": 1.0}, previous, 0.0, "min")


def test_too_few_configs_in_the_top_rung_are_stable() -> None:
    previous = {"a": 0.25, "b": 0.5, "c": 0.75}
    # One config at the top, however badly it did before: nothing to compare.
    assert ranking_is_stable({"a": 1.0}, previous, 0.0, "max")
    assert ranking_is_stable({}, previous, 0.0, "max")
    # Configs missing from the previous rung are not compared: only "a" is common.
    assert ranking_is_stable({"a": 1.0, "z": 0.0}, previous, 0.0, "max")
    # Two common configs is enough to be unstable: a .25 < c .75 before, a ahead now.
    assert not ranking_is_stable({"a": 1.0, "c": 0.0}, previous, 0.0, "max")


# --------------------------------------------------------------------------- decision

# Ladder for r_min=1, eta=3, max=27: [1, 3, 9, 27]; PASHA starts at 3 (top rung 3, previous 1).
KW = {"min_resource": 1, "reduction_factor": 3, "max_resource": 27, "mode": "max"}

# a, b reach rung 3; c stopped at rung 1.
# Rung 3: a 70 > b 60; rung 1: a 50 > b 40 -> same order -> stable.
# Epsilon window (1, 3]: (a, b) anchor e3, a - b = +10, +10, +10 -> no swap; c has no epoch in
# (1, 3] -> its pairs are skipped. No distances -> previous epsilon is kept.
STABLE = {"a": {1: 50, 2: 60, 3: 70}, "b": {1: 40, 2: 50, 3: 60}, "c": {1: 30}}

# Rung 3: b 70 > a 60; rung 1: a 50 > b 40 -> swapped, previous gap 10.
# Epsilon: (a, b) anchor e3 a - b = -10; e2 -5 (same); e1 +10 (opposite); nothing earlier ->
# swapped only once -> no distances -> epsilon stays 0 -> unstable -> raise 3 -> 9.
UNSTABLE = {"a": {1: 50, 2: 45, 3: 60}, "b": {1: 40, 2: 50, 3: 70}}


def test_no_raise_when_the_ranking_is_stable() -> None:
    d = decide_max_resource(STABLE, current_max_resource=3, **KW)
    assert d == PashaDecision(
        max_resource=3, epsilon=0.0, raised=False, top_level=3, previous_level=1
    )


def test_raise_by_one_rung_when_the_ranking_changes() -> None:
    d = decide_max_resource(UNSTABLE, current_max_resource=3, **KW)
    assert d == PashaDecision(
        max_resource=9, epsilon=0.0, raised=True, top_level=3, previous_level=1
    )
    # min mode: rung 3 a 60 < b 70 (a best), rung 1 b 40 < a 50 (b best) -> also swapped.
    assert decide_max_resource(UNSTABLE, current_max_resource=3, **{**KW, "mode": "min"}).raised


def test_previous_epsilon_is_kept_and_used() -> None:
    # No noisy pair in UNSTABLE, so the passed epsilon 10 is kept; it covers the rung-1 gap
    # |50 - 40| = 10 -> the a/b swap is tolerated -> no raise.
    d = decide_max_resource(UNSTABLE, current_max_resource=3, epsilon=10.0, **KW)
    assert (d.max_resource, d.epsilon, d.raised) == (3, 10.0, False)
    # eps 9.5 does not cover it.
    assert decide_max_resource(UNSTABLE, current_max_resource=3, epsilon=9.5, **KW).raised


def test_estimated_epsilon_can_prevent_a_raise() -> None:
    # UNSTABLE plus x, y whose curves swap and swap back between rungs 1 and 3:
    #   x - y: e1 -10, e2 +25, e3 -20 -> anchor e3, distance 20. Other pairs:
    #   a-x +40 +15 +50, a-y +30 +40 +30, b-x +30 +20 +60, b-y +20 +45 +40: no swaps.
    # epsilon = 90th percentile of [20] = 20.
    # Rung 1 (max): a 50, b 40, y 20, x 10 with eps 20:
    #   a [0,1] (y, x more than 20 worse), b [0,2] (x 30 worse), y [1,3] (a 30 better),
    #   x [2,3] (a, b more than 20 better).
    # Rung 3 order: b 70, a 60, y 30, x 10: b@0, a@1, y@2, x@3 all inside -> stable.
    curves = {
        **UNSTABLE,
        "x": {1: 10, 2: 30, 3: 10},
        "y": {1: 20, 2: 5, 3: 30},
    }
    d = decide_max_resource(curves, current_max_resource=3, **KW)
    assert (d.max_resource, d.epsilon, d.raised) == (3, 20.0, False)
    # With percentile 0 the answer is the same single distance.
    assert decide_max_resource(curves, current_max_resource=3, percentile=0.0, **KW).epsilon == 20


def test_too_few_configs_in_the_top_rung_never_raise() -> None:
    # Only a reached rung 3; b and c are far better at rung 1 -> nothing to compare -> no raise.
    curves = {"a": {1: 10, 2: 20, 3: 30}, "b": {1: 90}, "c": {1: 80}}
    assert not decide_max_resource(curves, current_max_resource=3, **KW).raised
    assert not decide_max_resource({}, current_max_resource=3, **KW).raised


def test_the_top_two_rungs_are_the_current_maximum_and_the_rung_below() -> None:
    # At current max 9 the rungs are 9 and 3; the a/b swap between rungs 1 and 3 is irrelevant.
    # Rung 9: a 90 > b 80; rung 3: a 60 < b 70 -> swapped -> raise 9 -> 27.
    curves = {
        "a": {**UNSTABLE["a"], **{e: 60 + 5 * (e - 3) for e in range(4, 10)}},
        "b": {**UNSTABLE["b"], **{e: 70 + (e - 3) for e in range(4, 9)}, 9: 80},
    }
    # Epsilon window (3, 9]: a(e) = 60 + 5(e - 3), b(e) = 70 + (e - 3) for e in 4..8, so
    # a - b = -10 + 4(e - 3): e4 -6, e5 -2, e6 +2, e7 +6, e8 +10, e9 90 - 80 = +10.
    # Going back from e9 (+): e8..e6 +, e5 - (opposite), e4 -, e3 -10, e2 -5, e1 +10 (same)
    # -> swapped and back, distance 10 -> epsilon 10.
    # Rung 3 (max) b 70, a 60, eps 10: both [0,1] -> rung 9 order a, b is stable!
    d = decide_max_resource(curves, current_max_resource=9, **KW)
    assert (d.top_level, d.previous_level, d.epsilon, d.raised) == (9, 3, 10.0, False)
    # Break the swap-back by removing epoch 1 from b: no distances, epsilon stays 0 -> raise.
    curves["b"] = {e: v for e, v in curves["b"].items() if e != 1}
    d = decide_max_resource(curves, current_max_resource=9, **KW)
    assert (d.max_resource, d.epsilon, d.raised) == (27, 0.0, True)


def test_cap_at_the_configured_maximum() -> None:
    # Ladder for max 20: [1, 3, 9, 20]. At 9 an unstable 3-vs-9 ranking raises to 20, not 27.
    curves = {"a": {3: 60, 9: 80}, "b": {3: 70, 9: 75}}  # rung 9: a > b; rung 3: b > a.
    kw = {**KW, "max_resource": 20}
    d = decide_max_resource(curves, current_max_resource=9, **kw)
    assert (d.max_resource, d.raised) == (20, True)
    # At 20 nothing is compared and nothing changes, whatever the curves say.
    d = decide_max_resource(UNSTABLE, current_max_resource=20, epsilon=0.5, **kw)
    assert d == PashaDecision(max_resource=20, epsilon=0.5, raised=False)


def test_current_maximum_must_be_on_the_ladder() -> None:
    for bad in (1, 5, 81):  # r_min itself, off-grid, above the configured maximum
        with pytest.raises(ValueError):
            decide_max_resource(STABLE, current_max_resource=bad, **KW)


def test_state_raises_one_rung_per_update_and_never_lowers() -> None:
    state = PashaState(min_resource=1, reduction_factor=3, max_resource=27, mode="max")
    assert (state.max_resource, state.epsilon) == (3, 0.0)
    # a/b swap between rungs 1 and 3, and again between 3 and 9. a - b: e1 +10, e3 -10, e9 +5.
    curves = {"a": {1: 50, 3: 60, 9: 85}, "b": {1: 40, 3: 70, 9: 80}}
    # Update 1, rungs 3 vs 1, window (1, 3]: anchor e3 (-), e1 (+) -> one swap only, eps 0.
    # Swapped -> 9 (one rung only, although 9 vs 3 also swaps).
    d = state.update(curves)
    assert (d.max_resource, d.epsilon, d.raised) == (9, 0.0, True)
    # Update 2, rungs 9 vs 3, window (3, 9]: anchor e9 (+), e3 (-), e1 (+) -> swapped and back,
    # distance |85 - 80| = 5 = eps. Rung-3 gap |60 - 70| = 10 > 5 -> unstable -> 27, the cap.
    d = state.update(curves)
    assert (d.max_resource, d.epsilon, d.raised) == (27, 5.0, True)
    # Update 3: at the cap -> stays.
    assert not state.update(curves).raised
    assert state.max_resource == 27


def test_state_keeps_its_maximum_when_the_ranking_is_stable_again() -> None:
    state = PashaState(min_resource=1, reduction_factor=3, max_resource=27, mode="max")
    state.update(UNSTABLE)
    assert state.max_resource == 9
    # Nobody at rung 9 yet, or a perfectly stable history: never back to 3.
    assert state.update(UNSTABLE).max_resource == 9
    assert state.update(STABLE).max_resource == 9
    assert state.update({}).max_resource == 9


def test_state_carries_epsilon_between_updates() -> None:
    state = PashaState(min_resource=1, reduction_factor=3, max_resource=27, mode="max")
    noisy = {
        **UNSTABLE,
        "x": {1: 10, 2: 30, 3: 10},
        "y": {1: 20, 2: 5, 3: 30},
    }
    assert not state.update(noisy).raised  # epsilon 20 (see test above) tolerates the swap
    assert state.epsilon == 20.0
    # Same a/b swap without x, y: no new distances -> epsilon 20 kept -> still no raise.
    assert not state.update(UNSTABLE).raised
    assert (state.max_resource, state.epsilon) == (3, 20.0)


def test_state_with_a_short_ladder_starts_at_the_cap() -> None:
    # max 3 = eta * r_min: ladder [1, 3], start at 3 = cap, no raise possible.
    state = PashaState(min_resource=1, reduction_factor=3, max_resource=3, mode="min")
    assert state.max_resource == 3
    assert not state.update(UNSTABLE).raised
