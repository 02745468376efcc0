"""Step rules on hand-computed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optuna_ohgw.steps import (
    BaseStepRule,
    FlippedStep,
    NormalizedStep,
    NoStep,
    RandomSignStep,
    RawStep,
    make_step_rule,
)

GRADS = {"a": 2.0, "b": -0.5, "c": 0.0}
SPANS = {"a": 10.0, "b": 4.0, "c": 1.0}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----- raw ------------------------------------------------------------------------------------


def test_raw_default_eta() -> None:
    rule = RawStep()
    assert rule.eta == 1e-3
    assert rule(GRADS, SPANS, _rng()) == pytest.approx({"a": -2e-3, "b": 5e-4, "c": 0.0})


def test_raw_custom_eta_ignores_spans() -> None:
    out = RawStep(eta=0.1)({"a": 3.0, "b": -1.0}, {"a": 1e6, "b": 1e-6}, _rng())
    assert out == pytest.approx({"a": -0.3, "b": 0.1})


@pytest.mark.parametrize("eta", [0.0, -1.0, math.inf, math.nan])
def test_raw_rejects_bad_eta(eta: float) -> None:
    with pytest.raises(ValueError, match="eta"):
        RawStep(eta=eta)


# ----- normalized -----------------------------------------------------------------------------


def test_normalized_sign_moves_fraction_of_span_downhill() -> None:
    out = NormalizedStep(fraction=0.1)(GRADS, SPANS, _rng())
    # a: grad > 0 -> down by 0.1 * 10; b: grad < 0 -> up by 0.1 * 4; c: zero gradient -> no move.
    assert out == pytest.approx({"a": -1.0, "b": 0.4, "c": 0.0})


def test_normalized_default_is_sign_five_percent() -> None:
    rule = NormalizedStep()
    assert (rule.fraction, rule.direction) == (0.05, "sign")
    assert rule({"x": -1e-9}, {"x": 2.0}, _rng()) == pytest.approx({"x": 0.1})


def test_normalized_unit_hand_computed() -> None:
    grads = {"a": 3.0, "b": -2.0}
    spans = {"a": 1.0, "b": 2.0}
    # Range-normalised gradient g * span = (3, -4), norm 5; move = -0.5 * span * scaled / 5.
    out = NormalizedStep(fraction=0.5, direction="unit")(grads, spans, _rng())
    assert out == pytest.approx({"a": -0.5 * 1.0 * 3 / 5, "b": -0.5 * 2.0 * -4 / 5})
    # The move in range-normalised coordinates has length `fraction`.
    assert math.hypot(out["a"] / spans["a"], out["b"] / spans["b"]) == pytest.approx(0.5)


def test_normalized_unit_zero_gradient_no_move() -> None:
    out = NormalizedStep(direction="unit")({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 3.0}, _rng())
    assert out == {"a": 0.0, "b": 0.0}


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_normalized_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        NormalizedStep(fraction=fraction)


def test_normalized_accepts_fraction_one() -> None:
    assert NormalizedStep(fraction=1.0)({"a": 1.0}, {"a": 2.0}, _rng()) == {"a": -2.0}


def test_normalized_rejects_bad_direction() -> None:
    with pytest.raises(ValueError, match="direction"):
        NormalizedStep(direction="diagonal")


# ----- none -----------------------------------------------------------------------------------


def test_none_is_zero_for_every_param() -> None:
    assert NoStep()(GRADS, SPANS, _rng()) == {"a": 0.0, "b": 0.0, "c": 0.0}


# ----- random-sign ----------------------------------------------------------------------------


def test_random_sign_keeps_base_magnitude() -> None:
    base = NormalizedStep(fraction=0.1)
    rule = RandomSignStep(base)
    expected = base(GRADS, SPANS, _rng())
    rng = _rng(3)
    for _ in range(50):
        out = rule(GRADS, SPANS, rng)
        assert set(out) == set(GRADS)
        for name in GRADS:
            assert abs(out[name]) == pytest.approx(abs(expected[name]))


def test_random_sign_of_raw_keeps_raw_magnitude() -> None:
    rule = RandomSignStep(RawStep(eta=0.5))
    out = rule({"a": 2.0, "b": -4.0}, {"a": 1.0, "b": 1.0}, _rng(1))
    assert {k: abs(v) for k, v in out.items()} == pytest.approx({"a": 1.0, "b": 2.0})


def test_random_sign_draws_both_signs_per_coordinate() -> None:
    rule = RandomSignStep(NormalizedStep(fraction=0.1))
    rng = _rng(7)
    grads = {"a": 1.0, "b": 1.0}
    spans = {"a": 1.0, "b": 1.0}
    draws = [rule(grads, spans, rng) for _ in range(400)]
    for name in grads:
        signs = np.sign([d[name] for d in draws])
        assert set(signs.tolist()) == {-1.0, 1.0}
        # Rademacher: about half each (400 draws, 5 sigma = 50).
        assert abs(int((signs > 0).sum()) - 200) < 50
    # The two coordinates are signed independently, not with one shared coin.
    assert any(np.sign(d["a"]) != np.sign(d["b"]) for d in draws)
    assert any(np.sign(d["a"]) == np.sign(d["b"]) for d in draws)


def test_random_sign_is_reproducible_with_seeded_generator() -> None:
    rule = RandomSignStep(NormalizedStep(fraction=0.2))
    grads = {f"p{i}": 1.0 + i for i in range(8)}
    spans = dict.fromkeys(grads, 1.0)
    first = [rule(grads, spans, _rng(123)) for _ in range(3)]
    second = [rule(grads, spans, _rng(123)) for _ in range(3)]
    assert first == second
    rng_a, rng_b = _rng(5), _rng(5)
    seq_a = [rule(grads, spans, rng_a) for _ in range(10)]
    seq_b = [rule(grads, spans, rng_b) for _ in range(10)]
    assert seq_a == seq_b
    # ...and a different seed gives a different sign pattern somewhere.
    seq_c = [rule(grads, spans, _rng(6)) for _ in range(10)]
    assert seq_c != seq_a


# ----- flipped --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    [RawStep(eta=0.3), NormalizedStep(fraction=0.1), NormalizedStep(0.2, direction="unit")],
)
def test_flipped_is_exact_negation(base: BaseStepRule) -> None:
    grads = {"a": 1.5, "b": -0.25, "c": 3.0}
    spans = {"a": 2.0, "b": 1.0, "c": 0.5}
    forward = base(grads, spans, _rng())
    flipped = FlippedStep(base)(grads, spans, _rng())
    assert flipped == {n: -v for n, v in forward.items()}


def test_flipped_normalized_moves_uphill() -> None:
    out = FlippedStep(NormalizedStep(fraction=0.1))(GRADS, SPANS, _rng())
    assert out == pytest.approx({"a": 1.0, "b": -0.4, "c": 0.0})


# ----- make_step_rule -------------------------------------------------------------------------


def test_make_step_rule_names() -> None:
    assert isinstance(make_step_rule("raw"), RawStep)
    assert isinstance(make_step_rule("normalized"), NormalizedStep)
    assert isinstance(make_step_rule("none"), NoStep)
    rs = make_step_rule("random-sign")
    assert isinstance(rs, RandomSignStep) and isinstance(rs.base, NormalizedStep)
    fl = make_step_rule("flipped")
    assert isinstance(fl, FlippedStep) and isinstance(fl.base, NormalizedStep)
    for name in ("raw", "normalized", "none", "random-sign", "flipped"):
        rule = make_step_rule(name)
        assert rule.name == name
        assert name in repr(rule)


def test_make_step_rule_passes_kwargs() -> None:
    raw = make_step_rule("raw", eta=0.25)
    assert isinstance(raw, RawStep) and raw.eta == 0.25
    norm = make_step_rule("normalized", fraction=0.3, direction="unit")
    assert isinstance(norm, NormalizedStep)
    assert (norm.fraction, norm.direction) == (0.3, "unit")
    fl = make_step_rule("flipped", base="raw", eta=0.5)
    assert isinstance(fl, FlippedStep) and isinstance(fl.base, RawStep) and fl.base.eta == 0.5
    assert fl({"a": 2.0}, {"a": 1.0}, _rng()) == {"a": 1.0}
    rs = make_step_rule("random-sign", base="normalized", fraction=0.4)
    assert isinstance(rs, RandomSignStep) and isinstance(rs.base, NormalizedStep)
    assert rs.base.fraction == 0.4


def test_make_step_rule_errors() -> None:
    with pytest.raises(ValueError, match="Unknown step rule"):
        make_step_rule("sgd")
    with pytest.raises(ValueError, match="no options"):
        make_step_rule("none", eta=0.1)
    with pytest.raises(ValueError, match="base must be one of"):
        make_step_rule("flipped", base="none")
    with pytest.raises(ValueError, match="base must be one of"):
        make_step_rule("random-sign", base="flipped")
    with pytest.raises(TypeError):
        make_step_rule("raw", fraction=0.1)
    with pytest.raises(ValueError, match="fraction"):
        make_step_rule("normalized", fraction=2.0)


# ----- line-search and toward-middle ----------------------------------------------------------


def _context(coords, lows, highs, lookahead=None):  # type: ignore[no-untyped-def]
    from optuna_ohgw.steps import StepContext

    return StepContext(coords, lows, highs, lookahead)


def test_line_search_keeps_the_scale_with_the_lowest_lookahead_loss() -> None:
    from optuna_ohgw.steps import LineSearchStep

    base = NormalizedStep(fraction=0.1)
    calls: list[dict[str, float]] = []

    def loss(delta):  # type: ignore[no-untyped-def]
        calls.append(dict(delta))
        return (delta["a"] + 2.0) ** 2  # lowest at a move of -2 = 2x the base step of -1

    rule = LineSearchStep(base)
    ctx = _context({"a": 0.0, "b": 0.0}, {"a": -5, "b": -2}, {"a": 5, "b": 2}, loss)
    step = rule({"a": 2.0, "b": -0.5}, {"a": 10.0, "b": 4.0}, _rng(), ctx)
    assert step == pytest.approx({"a": -2.0, "b": 0.8})
    assert [c["a"] for c in calls] == pytest.approx([-0.5, -1.0, -2.0, -4.0])


def test_line_search_skips_nonfinite_losses_fails_without_any_and_needs_a_lookahead() -> None:
    from optuna_ohgw.steps import LineSearchStep

    rule = LineSearchStep(scales=(1.0, 2.0))
    ctx = _context({"a": 0.0}, {"a": 0}, {"a": 1}, lambda d: math.nan)
    with pytest.raises(FloatingPointError, match=r"no look-ahead loss is finite .*\[nan, nan\]"):
        rule({"a": 1.0}, {"a": 1.0}, _rng(), ctx)
    ctx = _context({"a": 0.0}, {"a": 0}, {"a": 1}, lambda d: math.inf if d["a"] < -0.07 else 1.0)
    assert rule({"a": 1.0}, {"a": 1.0}, _rng(), ctx) == pytest.approx({"a": -0.05})
    with pytest.raises(ValueError, match="look-ahead"):
        rule({"a": 1.0}, {"a": 1.0}, _rng())
    with pytest.raises(ValueError, match="scales"):
        LineSearchStep(scales=(1.0, -1.0))


def test_toward_middle_moves_inward_by_the_normalized_size_and_stops_at_the_middle() -> None:
    from optuna_ohgw.steps import TowardMiddleStep

    rule = TowardMiddleStep(fraction=0.1)
    assert rule.needs_probe is False
    ctx = _context(
        {"a": 9.0, "b": -1.9, "c": 0.52}, {"a": 0, "b": -2, "c": 0}, {"a": 10, "b": 2, "c": 1}
    )
    step = rule({"a": 0.0, "b": 0.0, "c": 0.0}, {"a": 10.0, "b": 4.0, "c": 1.0}, _rng(), ctx)
    assert step == pytest.approx({"a": -1.0, "b": 0.4, "c": -0.02})
    at_middle = _context({"a": 5.0}, {"a": 0}, {"a": 10})
    assert rule({"a": 0.0}, {"a": 10.0}, _rng(), at_middle) == {"a": 0.0}


def test_make_step_rule_builds_the_new_rules() -> None:
    from optuna_ohgw.steps import STEP_RULES, LineSearchStep, TowardMiddleStep

    rule = make_step_rule("line-search", fraction=0.2, direction="unit")
    assert isinstance(rule, LineSearchStep) and isinstance(rule.base, NormalizedStep)
    assert rule.base.fraction == 0.2 and rule.base.direction == "unit"
    assert isinstance(make_step_rule("line-search", base="raw", eta=0.1).base, RawStep)
    middle = make_step_rule("toward-middle", fraction=0.3)
    assert isinstance(middle, TowardMiddleStep) and middle.fraction == 0.3
    for name in STEP_RULES:
        assert make_step_rule(name).name == name
