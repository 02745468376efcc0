"""OHGWSampler's self-check: once per process, before the first nudge, the probe is compared with
what it stands for; a mismatch turns the warm start off (or raises) instead of nudging every trial
the wrong way.

The probe here is a user-defined :class:`~optuna_ohgw.probes.BaseProbe` whose "real training" is
a smooth function and whose gradient is written by hand; its ``check`` compares that gradient,
along a random unit direction, with a central finite difference of the function itself. A right
gradient passes, a wrong one (a dropped term) is caught.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.samplers import RandomSampler

import optuna_ohgw as ohgw
from optuna_ohgw import attrs
from optuna_ohgw.probes import BaseProbe, ProbeCheck, ProbeResult

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"x": FloatDistribution(0.1, 2.0), "y": FloatDistribution(-1.0, 1.0)}


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.1, 2.0) + trial.suggest_float("y", -1.0, 1.0)


class _Probe(BaseProbe):
    """f(x, y) = sin(x) + x * y^2, with a hand-written gradient (``right=False`` drops the
    y^2 term of df/dx)."""

    def __init__(self, *, right: bool, pause: float = 0.0) -> None:
        self.right = right
        self.pause = pause
        self.events: list[tuple[str, dict[str, float], int]] = []
        self.lock = threading.Lock()

    @property
    def param_names(self) -> Sequence[str]:
        return ("x", "y")

    @staticmethod
    def f(p: Mapping[str, float]) -> float:
        return math.sin(p["x"]) + p["x"] * p["y"] ** 2

    def grad(self, p: Mapping[str, float]) -> dict[str, float]:
        dx = math.cos(p["x"]) + (p["y"] ** 2 if self.right else 0.0)
        return {"x": dx, "y": 2 * p["x"] * p["y"]}

    def __call__(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeResult:
        with self.lock:
            self.events.append(("probe", dict(params), seed))
        return ProbeResult(self.f(params), self.grad(params), 0.0)

    def check(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeCheck:
        start = time.perf_counter()
        with self.lock:
            self.events.append(("check", dict(params), seed))
        time.sleep(self.pause)
        u = np.random.default_rng(seed).normal(size=2)
        direction = dict(zip(("x", "y"), u / np.linalg.norm(u)))
        h = 1e-5
        up = {n: params[n] + h * direction[n] for n in direction}
        down = {n: params[n] - h * direction[n] for n in direction}
        fd = (self.f(up) - self.f(down)) / (2 * h)
        grad = self.grad(params)
        directional = sum(grad[n] * direction[n] for n in direction)
        ok = abs(directional - fd) <= 1e-6 * max(1.0, abs(fd))
        return ProbeCheck(
            ok=ok,
            probe_loss=self.f(params),
            real_loss=self.f(params),
            directional=directional,
            finite_difference=fd,
            direction=direction,
            seconds=time.perf_counter() - start,
            message="" if ok else "the directional derivative disagrees with real training",
        )


def _study(probe: BaseProbe, **kwargs: object) -> optuna.Study:
    sampler = ohgw.OHGWSampler(RandomSampler(seed=0), probe, search_space=SPACE, seed=3, **kwargs)
    return optuna.create_study(sampler=sampler)


def test_a_right_probe_passes_once_before_the_first_nudge() -> None:
    probe = _Probe(right=True)
    study = _study(probe)
    study.optimize(_objective, n_trials=4)
    kinds = [kind for kind, _, _ in probe.events]
    assert kinds == ["check", "probe", "probe", "probe", "probe"]
    first = study.trials[0]
    _, params, seed = probe.events[0]
    assert params == {n: first.user_attrs[attrs.raw(n)] for n in ("x", "y")}  # before any nudge
    assert seed == first.user_attrs[attrs.SEED]
    assert [t.user_attrs[attrs.STATUS] for t in study.trials] == ["ok"] * 4
    seconds = first.user_attrs[attrs.SELF_CHECK_SECONDS]
    assert 0.0 < seconds <= first.user_attrs[attrs.PROBE_SECONDS]
    assert all(attrs.SELF_CHECK_SECONDS not in t.user_attrs for t in study.trials[1:])
    assert all(t.params["x"] != t.user_attrs[attrs.raw("x")] for t in study.trials)


def test_a_wrong_probe_turns_the_warm_start_off_with_one_warning() -> None:
    probe = _Probe(right=False)
    study = _study(probe)
    with pytest.warns(UserWarning, match="self-check failed on trial 0") as caught:
        study.optimize(_objective, n_trials=4)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "disagrees with real training" in message and "finite difference" in message
    assert [kind for kind, _, _ in probe.events] == ["check"]  # never probed, never nudged
    statuses = [t.user_attrs[attrs.STATUS] for t in study.trials]
    assert statuses[0].startswith("error: self-check: the directional derivative disagrees")
    assert "probe" in statuses[0] and "finite difference" in statuses[0]
    assert attrs.status_kind(statuses[0]) in attrs.FAILED_STATUSES
    assert all(s.startswith("off: the probe's self-check failed") for s in statuses[1:])
    assert study.trials[0].user_attrs[attrs.SELF_CHECK_SECONDS] > 0.0
    # The trials go on with exactly the base sampler's values.
    vanilla = optuna.create_study(sampler=RandomSampler(seed=0))
    vanilla.optimize(_objective, n_trials=4)
    assert [t.params for t in study.trials] == [t.params for t in vanilla.trials]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_a_wrong_probe_raises_with_max_consecutive_failures_1() -> None:
    probe = _Probe(right=False)
    study = _study(probe, max_consecutive_failures=1)
    with pytest.raises(RuntimeError, match=r"self-check failed \(trial 0\).*finite difference"):
        study.optimize(_objective, n_trials=4)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs[attrs.STATUS].startswith("error: self-check:")


def test_a_check_that_raises_is_a_failed_check() -> None:
    class Broken(_Probe):
        def check(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeCheck:
            raise RuntimeError("no optimizer to compare with")

    study = _study(Broken(right=True))
    with pytest.warns(UserWarning, match="raised RuntimeError: no optimizer to compare with"):
        study.optimize(_objective, n_trials=2)
    statuses = [t.user_attrs[attrs.STATUS] for t in study.trials]
    expected = "error: self-check: the check raised RuntimeError: no optimizer to compare with"
    assert statuses[0] == expected
    assert statuses[1].startswith("off:")


def test_threads_wait_for_the_one_check() -> None:
    """n_jobs=4: one check, and no thread probes (or nudges) before its verdict."""
    probe = _Probe(right=True, pause=0.3)
    study = _study(probe)
    study.optimize(_objective, n_trials=8, n_jobs=4)
    kinds = [kind for kind, _, _ in probe.events]
    assert kinds[0] == "check" and kinds.count("check") == 1 and kinds.count("probe") == 8
    wrong = _Probe(right=False, pause=0.3)
    study = _study(wrong)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(_objective, n_trials=8, n_jobs=4)
    assert [kind for kind, _, _ in wrong.events] == ["check"]
    assert sum("self-check failed" in str(w.message) for w in caught) == 1
    kinds = sorted(attrs.status_kind(t.user_attrs[attrs.STATUS]) for t in study.trials)
    assert kinds == ["error"] + ["off"] * 7


def test_self_check_off_and_probes_with_nothing_to_check() -> None:
    probe = _Probe(right=False)
    study = _study(probe, self_check=False)
    study.optimize(_objective, n_trials=2)
    assert [kind for kind, _, _ in probe.events] == ["probe", "probe"]

    class Unchecked(_Probe):
        def check(self, params: Mapping[str, float], *, seed: int = 0) -> None:
            self.events.append(("check", dict(params), seed))
            return None

    probe = Unchecked(right=True)
    study = _study(probe)
    study.optimize(_objective, n_trials=2)
    assert [kind for kind, _, _ in probe.events] == ["check", "probe", "probe"]
    assert all(attrs.SELF_CHECK_SECONDS not in t.user_attrs for t in study.trials)
    assert [t.user_attrs[attrs.STATUS] for t in study.trials] == ["ok", "ok"]


def test_a_rule_without_a_probe_runs_no_check() -> None:
    probe = _Probe(right=False)
    study = _study(probe, step="toward-middle")
    study.optimize(_objective, n_trials=2)
    assert probe.events == []


@pytest.mark.parametrize("self_check", [True, False])
def test_a_study_file_can_switch_the_check_off(self_check: bool) -> None:
    import dataclasses

    from optuna_ohgw.runner import open_trainer
    from optuna_ohgw.runner._build import build_sampler
    from optuna_ohgw.studyfile import find_study_file, load_study_file, shipped_study_dir

    config = load_study_file(find_study_file("digits-asha", [shipped_study_dir()]))
    assert config.ohgw.self_check is True  # the default
    config = config.replace(ohgw=dataclasses.replace(config.ohgw, self_check=self_check))
    sampler = build_sampler(config, open_trainer(config, device="cpu"), 0)
    assert isinstance(sampler, ohgw.OHGWSampler) and sampler.self_check is self_check


def test_an_inconclusive_check_keeps_the_warm_start_on_and_says_why() -> None:
    """A check that cannot decide (the real loop's finite differences jump) is not a mismatch:
    every trial is warm-started, one warning gives the check's reason, and the verdict is on the
    trial that ran it."""

    class Jumpy(_Probe):
        def check(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeCheck:
            self.events.append(("check", dict(params), seed))
            return ProbeCheck(
                ok=False,
                probe_loss=1.0,
                real_loss=1.0,
                directional=0.5,
                finite_difference=40.0,
                direction={"x": 1.0, "y": 0.0},
                seconds=0.01,
                message="self-check: inconclusive along (x +1): the look-ahead loss jumps",
                verdict="inconclusive",
            )

    probe = Jumpy(right=True)
    study = _study(probe)
    with pytest.warns(UserWarning, match="inconclusive .*warm start stays on.*jumps") as caught:
        study.optimize(_objective, n_trials=3)
    assert len(caught) == 1
    assert [kind for kind, _, _ in probe.events] == ["check", "probe", "probe", "probe"]
    assert [t.user_attrs[attrs.STATUS] for t in study.trials] == ["ok"] * 3
    verdict = study.trials[0].user_attrs[attrs.SELF_CHECK]
    assert verdict.startswith("inconclusive: self-check: inconclusive") and "jumps" in verdict
    assert all(attrs.SELF_CHECK not in t.user_attrs for t in study.trials[1:])


def test_the_verdict_is_recorded_for_ok_and_mismatch() -> None:
    study = _study(_Probe(right=True))
    study.optimize(_objective, n_trials=1)
    assert study.trials[0].user_attrs[attrs.SELF_CHECK] == "ok"
    study = _study(_Probe(right=False))
    with pytest.warns(UserWarning, match="self-check failed"):
        study.optimize(_objective, n_trials=1)
    assert study.trials[0].user_attrs[attrs.SELF_CHECK].startswith("mismatch: the directional")


def test_probe_check_verdict_follows_ok_and_refuses_contradictions() -> None:
    fields = dict(
        probe_loss=1.0,
        real_loss=1.0,
        directional=0.0,
        finite_difference=0.0,
        direction={},
        seconds=0.0,
    )
    assert ProbeCheck(ok=True, **fields).verdict == "ok"
    assert ProbeCheck(ok=False, **fields).verdict == "mismatch"
    with pytest.raises(ValueError, match="contradicts"):
        ProbeCheck(ok=True, verdict="inconclusive", **fields)
    with pytest.raises(ValueError, match="verdict must be one of"):
        ProbeCheck(ok=False, verdict="maybe", **fields)
