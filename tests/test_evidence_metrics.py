"""Metrics of hand-made studies whose answers are worked out by hand in the comments.

Times are seconds after ``T0``. A trial's k-th epoch ends (estimated) at
``start + startup + sum(epoch_seconds[:k])``, where ``startup = max(setup, probe)``: the probe
runs inside the epoch objective's setup, so ``setup_seconds`` already contains it.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from optuna_ohgw import attrs, lineage
from optuna_ohgw.evidence import (
    StudyMetrics,
    anytime_curve,
    anytime_test_curve,
    applied_steps,
    best_test_accuracy,
    best_value,
    budget_used,
    compute_metrics,
    epoch_count,
    final_hyperparameters,
    probe_share,
    ranked_configurations,
    time_to_target,
    total_compute,
    total_epochs,
    total_probe_seconds,
    without_inherited,
)

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)
LR = FloatDistribution(1e-3, 1.0, log=True)
SKIPPED = "skipped: every probed parameter is fixed (enqueued, retried or resumed)"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def make_trial(
    state: TrialState,
    start: float,
    end: float | None,
    values: dict[int, float],
    seconds: list[float] | None = None,
    *,
    setup: float | None = None,
    probe: float | None = None,
    test: float | None = None,
    lr: float = 0.1,
    user_attrs: dict[str, Any] | None = None,
    system_attrs: dict[str, Any] | None = None,
) -> FrozenTrial:
    """A trial as the epoch objective leaves it (``seconds=None``: a killed worker's trial,
    which never wrote its epoch accounting)."""
    ua: dict[str, Any] = {}
    if setup is not None:
        ua[attrs.SETUP_SECONDS] = setup
    if probe is not None:
        ua[attrs.PROBE_SECONDS] = probe
    if seconds is not None:
        ua[attrs.EPOCHS] = len(seconds)
        ua[attrs.EPOCH_SECONDS] = list(seconds)
        ua[attrs.TRAIN_SECONDS] = float(sum(seconds))
    if test is not None:
        ua["test_accuracy"] = test
    ua.update(user_attrs or {})
    value = None
    if state == TrialState.COMPLETE:
        value = values[max(values)]
    trial = create_trial(
        state=state,
        value=value,
        params={"lr": lr},
        distributions={"lr": LR},
        user_attrs=ua,
        system_attrs=system_attrs,
        intermediate_values=values,
    )
    trial.datetime_start = at(start)
    trial.datetime_complete = None if end is None else at(end)
    return trial


def close(curve: list[tuple[float, float]], expected: list[tuple[float, float]]) -> bool:
    """Curves equal up to float rounding (``pytest.approx`` does not take lists of pairs)."""
    return len(curve) == len(expected) and all(
        p == pytest.approx(e) for p, e in zip(curve, expected)
    )


def study_of(*trials: FrozenTrial, target: float | None = None) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    if target is not None:
        study.set_user_attr("ohgw.target", target)
    for t in trials:
        study.add_trial(t)
    return study


# ----- two parallel workers, a pruned trial, test accuracy picked by validation ----------------


def parallel_study() -> optuna.Study:
    """Worker A runs trial 0; worker B runs trial 1 (pruned after 2 epochs), then trial 2.

    trial 0 COMPLETE  start 0.0  setup 1.0 (probe 0.5 inside)  epochs [2, 2, 2]
        values 0.5, 0.7, 0.9   test 0.88   epoch ends 3.0, 5.0, 7.0   end 8.0
    trial 1 PRUNED    start 1.0  setup 0.5 (probe 0.5 inside)  epochs [1, 1]
        values 0.6, 0.65                   epoch ends 2.5, 3.5        end 4.0
    trial 2 COMPLETE  start 4.5  setup 0.25 (vanilla: no probe) epochs [1, 1, 1]
        values 0.8, 0.85, 0.95 test 0.86  epoch ends 5.75, 6.75, 7.75  end 8.5

    Merged order of events (t, what, compute charge):
        0.0  start-up 0 (1.0)    1.0  start-up 1 (0.5)
        2.5  1/e1 0.6 (1)        3.0  0/e1 0.5 (2)     3.5  1/e2 0.65 (1)
        4.5  start-up 2 (0.25)   5.0  0/e2 0.7 (2)     5.75 2/e1 0.8 (1)
        6.75 2/e2 0.85 (1)       7.0  0/e3 0.9 (2)     7.75 2/e3 0.95 (1)
    """
    return study_of(
        make_trial(
            TrialState.COMPLETE,
            0.0,
            8.0,
            {1: 0.5, 2: 0.7, 3: 0.9},
            [2.0, 2.0, 2.0],
            setup=1.0,
            probe=0.5,
            test=0.88,
            lr=0.1,
            user_attrs={attrs.STATUS: "ok", attrs.step("lr"): 0.25},
        ),
        make_trial(
            TrialState.PRUNED,
            1.0,
            4.0,
            {1: 0.6, 2: 0.65},
            [1.0, 1.0],
            setup=0.5,
            probe=0.5,
            lr=0.2,
            user_attrs={attrs.STATUS: "ok", attrs.step("lr"): -0.5},
        ),
        make_trial(
            TrialState.COMPLETE,
            4.5,
            8.5,
            {1: 0.8, 2: 0.85, 3: 0.95},
            [1.0, 1.0, 1.0],
            setup=0.25,
            test=0.86,
            lr=0.3,
        ),
        target=0.85,
    )


def test_add_trial_keeps_the_hand_made_timestamps() -> None:
    study = parallel_study()
    assert [t.datetime_start for t in study.trials] == [at(0.0), at(1.0), at(4.5)]
    assert [t.datetime_complete for t in study.trials] == [at(8.0), at(4.0), at(8.5)]


def test_parallel_trials_interleave_on_the_epochs_clock() -> None:
    trials = parallel_study().trials
    # Pruned trial 1's first epoch (t=2.5) is the study's first report: best 0.6 at epoch 1.
    # Ordering by trial instead of by moment would give 0.5, 0.7, 0.9, 0.9, ...
    assert anytime_curve(trials, "epochs") == [
        (1.0, 0.6),
        (2.0, 0.6),
        (3.0, 0.65),
        (4.0, 0.7),
        (5.0, 0.8),
        (6.0, 0.85),
        (7.0, 0.9),
        (8.0, 0.95),
    ]


def test_parallel_trials_on_the_compute_clock() -> None:
    trials = parallel_study().trials
    # Running sum of charges (start-ups 1.0, 0.5, 0.25 at the trials' starts, not double
    # counting the probe inside setup): 1.0, 1.5, 2.5*, 4.5*, 5.5*, 5.75, 7.75*, 8.75*, 9.75*,
    # 11.75*, 12.75* (* = epoch events, which are the points).
    assert close(
        anytime_curve(trials, "compute"),
        [
            (2.5, 0.6),
            (4.5, 0.6),
            (5.5, 0.65),
            (7.75, 0.7),
            (8.75, 0.8),
            (9.75, 0.85),
            (11.75, 0.9),
            (12.75, 0.95),
        ],
    )
    # 7 + 2.5 + 3.25 (probe + setup added would give 13.75)
    assert total_compute(trials) == pytest.approx(12.75)
    assert total_probe_seconds(trials) == pytest.approx(1.0)
    assert probe_share(trials) == pytest.approx(1.0 / 12.75)


def test_parallel_trials_on_the_wall_clock() -> None:
    trials = parallel_study().trials
    # Estimated moments from the first start (T0), startup included.
    assert close(
        anytime_curve(trials, "wall"),
        [
            (2.5, 0.6),
            (3.0, 0.6),
            (3.5, 0.65),
            (5.0, 0.7),
            (5.75, 0.8),
            (6.75, 0.85),
            (7.0, 0.9),
            (7.75, 0.95),
        ],
    )
    # Censoring times: 8 epochs, 12.75 compute seconds, last completion 8.5 s after T0.
    assert budget_used(trials, "epochs") == 8.0
    assert budget_used(trials, "compute") == pytest.approx(12.75)
    assert budget_used(trials, "wall") == pytest.approx(8.5)


def test_time_to_target_on_each_clock() -> None:
    trials = parallel_study().trials
    # tau 0.85 is first reached by trial 2's second epoch: 6 epochs, 9.75 s compute, 6.75 s wall
    expected = {"epochs": 6.0, "compute": 9.75, "wall": 6.75}
    for clock, t in expected.items():
        assert time_to_target(anytime_curve(trials, clock), 0.85) == pytest.approx(t)
    # ">=": 0.9 is reached exactly at trial 0's third epoch (7 epochs, 11.75 s)
    assert time_to_target(anytime_curve(trials, "epochs"), 0.9) == 7.0
    assert time_to_target(anytime_curve(trials, "compute"), 0.9) == pytest.approx(11.75)


def test_test_accuracy_is_picked_by_validation_not_by_test() -> None:
    trials = parallel_study().trials
    # Candidates: trial 0 (val 0.9, test 0.88) at epoch event 7, trial 2 (val 0.95, test 0.86)
    # at 8. Trial 2 wins on validation, so its lower test accuracy is reported.
    assert anytime_test_curve(trials, "epochs") == [(7.0, 0.88), (8.0, 0.86)]
    assert close(anytime_test_curve(trials, "compute"), [(11.75, 0.88), (12.75, 0.86)])
    assert best_test_accuracy(trials) == 0.86
    assert best_value(trials) == 0.95


def test_final_hyperparameters_rank_configurations_by_validation() -> None:
    trials = parallel_study().trials
    # Best validation per configuration: 2 -> 0.95, 0 -> 0.9, 1 (pruned) -> 0.65.
    assert ranked_configurations(trials) == [(2, 0.95), (0, 0.9), (1, 0.65)]
    assert final_hyperparameters(trials) == {"lr": [0.3, 0.1, 0.2]}
    assert final_hyperparameters(trials, top_k=2) == {"lr": [0.3, 0.1]}
    assert final_hyperparameters(trials, top_k=0) == {}


def test_applied_steps_only_from_ok_warm_starts() -> None:
    trials = parallel_study().trials
    # Trial 2 is vanilla (no status, no step); the pruned trial's step was applied all the same.
    assert applied_steps(trials) == {"lr": [0.25, -0.5]}


def test_compute_metrics_of_a_study() -> None:
    study = parallel_study()
    m = compute_metrics(study)  # tau from the study's ohgw.target (0.85)
    assert isinstance(m, StudyMetrics)
    assert m.target == 0.85 and m.direction == "maximize" and m.reached_target
    assert m.time_to_target == pytest.approx({"epochs": 6.0, "compute": 9.75, "wall": 6.75})
    assert m.budget == pytest.approx({"epochs": 8.0, "compute": 12.75, "wall": 8.5})
    assert m.total_epochs == 8 and m.total_compute == pytest.approx(12.75)
    assert m.probe_seconds == pytest.approx(1.0)
    assert m.best_value == 0.95 and m.best_test_accuracy == 0.86
    assert m.counts["complete"] == 2 and m.counts["pruned"] == 1
    assert m.n_configurations == 3
    assert m.curves["epochs"][-1] == (8.0, 0.95)
    assert m.test_curves["epochs"] == [(7.0, 0.88), (8.0, 0.86)]
    assert m.study_attrs == {"ohgw.target": 0.85}
    d = m.to_dict()
    assert d["curves"]["epochs"][0] == [1.0, 0.6] and d["reached_target"] is True
    # an explicit tau wins over the study's; a list of trials needs one
    assert compute_metrics(study, 0.9).time_to_target["epochs"] == 7.0
    with pytest.raises(ValueError, match="tau"):
        compute_metrics(study.trials)
    assert compute_metrics(study.trials, 0.85).time_to_target["epochs"] == 6.0


# ----- failed, retried and running trials; a target never reached ------------------------------


def failure_study() -> optuna.Study:
    """trial 0 FAIL: its worker was killed after 2 reported epochs (values 0.99, 0.995, which
        must be ignored). The probe record (0.4 s, step) and setup (1.0 s) were written, the
        epoch accounting never was: its 2 epochs are spread over [0, 5] (ends 2.5, 5.0) and
        cost 0 compute seconds. Start-up charge max(1.0, 0.4) = 1.0.
    trial 1 FAIL: raised in its first epoch after reporting 1.0 (ignored); the objective's
        finally recorded 1 epoch of 2.0 s. start 1.0, setup 0.5: epoch ends 3.5.
    trial 2 COMPLETE: the retry of trial 0. Optuna's retry callback copied trial 0's user
        attrs (probe 0.4 s, the step); the retry's status says "skipped" and its own setup
        (0.5 s) and epochs overwrote the rest. start 5.0, epochs [1, 1]: ends 6.5, 7.5,
        values 0.7, 0.8, test 0.75.
    trial 3 RUNNING: ignored (its 0.99 too).

    Events: 0.0 start-up 0 (1.0) | 1.0 start-up 1 (0.5) | 2.5 0/e1 (0) | 3.5 1/e2 (2.0) |
            5.0 start-up 2 (0.5) | 5.0 0/e2 (0) | 6.5 2/e1 0.7 (1.0) | 7.5 2/e2 0.8 (1.0)
    """
    killed = make_trial(
        TrialState.FAIL,
        0.0,
        5.0,
        {1: 0.99, 2: 0.995},
        None,
        setup=1.0,
        probe=0.4,
        lr=0.5,
        user_attrs={attrs.STATUS: "ok", attrs.step("lr"): 0.1},
    )
    raised = make_trial(TrialState.FAIL, 1.0, 3.5, {1: 1.0}, [2.0], setup=0.5, lr=0.05)
    retry_attrs = dict(killed.user_attrs)
    retry_attrs[attrs.STATUS] = SKIPPED
    retry = make_trial(
        TrialState.COMPLETE,
        5.0,
        7.5,
        {1: 0.7, 2: 0.8},
        [1.0, 1.0],
        setup=0.5,
        test=0.75,
        lr=0.5,
        user_attrs={k: v for k, v in retry_attrs.items() if k != attrs.SETUP_SECONDS},
        system_attrs={"failed_trial": 0, "retry_history": [0], "fixed_params": {"lr": 0.5}},
    )
    running = make_trial(TrialState.RUNNING, 6.0, None, {1: 0.99}, None, setup=0.3, lr=0.2)
    return study_of(killed, raised, retry, running)


def test_retry_callback_copies_user_attrs() -> None:
    # The premise of without_inherited: a retry starts with its failed attempt's user attrs.
    study = study_of(
        make_trial(TrialState.FAIL, 0.0, 1.0, {}, None, setup=1.0, probe=0.4),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)(study, study.trials[0])
    retry = study.trials[1]
    assert retry.state == TrialState.WAITING
    assert retry.user_attrs[attrs.PROBE_SECONDS] == 0.4
    assert retry.system_attrs["retry_history"] == [0]


def test_failed_values_are_ignored_but_their_compute_counts() -> None:
    trials = failure_study().trials
    # Epoch events in order: 0/e1, 1/e1, 0/e2, 2/e1, 2/e2 -> the retry's epochs are 4 and 5.
    assert anytime_curve(trials, "epochs") == [(4.0, 0.7), (5.0, 0.8)]
    # Compute: 1.0, 1.5, 1.5, 3.5, 4.0 (start-up 2), 4.0, 5.0*, 6.0*
    assert close(anytime_curve(trials, "compute"), [(5.0, 0.7), (6.0, 0.8)])
    assert close(anytime_curve(trials, "wall"), [(6.5, 0.7), (7.5, 0.8)])
    assert best_value(trials) == 0.8
    assert total_epochs(trials) == 5  # 2 (killed) + 1 (raised) + 2 (retry); running ignored
    # 1.0 + (0.5 + 2.0) + (0.5 + 2.0); the copied 0.4 s probe is not charged to the retry
    assert total_compute(trials) == pytest.approx(6.0)
    assert total_probe_seconds(trials) == pytest.approx(0.4)
    assert best_test_accuracy(trials) == 0.75


def test_target_never_reached_is_censored() -> None:
    study = failure_study()
    m = compute_metrics(study, 0.9)
    # The failed trials' 0.99/0.995/1.0 and the running trial's 0.99 would have reached 0.9.
    assert m.time_to_target == {"epochs": None, "compute": None, "wall": None}
    assert not m.reached_target
    # ... censored at the budget used: 5 epochs, 6.0 compute seconds, 7.5 s after T0
    assert m.budget == pytest.approx({"epochs": 5.0, "compute": 6.0, "wall": 7.5})
    assert m.counts["fail"] == 2 and m.counts["running"] == 1
    # Steps: only the killed attempt's warm start ("ok"); the retry's copied step is skipped.
    assert m.applied_steps == {"lr": [0.1]}
    # The failed attempts have no values: one configuration (the retry) ranks.
    assert m.final_hyperparameters == {"lr": [0.5]}
    assert time_to_target([], 0.5) is None


def test_retry_killed_again_does_not_count_its_parents_epochs_twice() -> None:
    """trial 0 FAIL (Ctrl-C: its finally recorded 2 epochs [1.0, 1.25], setup 0.5, probe 0.2).
    trial 1 FAIL: its retry, killed after reporting 1 epoch; it still carries every one of
    trial 0's attrs. Trial 1 trained 1 epoch (its own report), at unknown cost (0 s), and no
    probe. Naively: epochs 2 + 2 = 4, compute 2.75 + 2.75 = 5.5, probe 0.4."""
    parent = make_trial(
        TrialState.FAIL,
        0.0,
        3.0,
        {1: 0.5, 2: 0.6},
        [1.0, 1.25],
        setup=0.5,
        probe=0.2,
        user_attrs={attrs.STATUS: "ok"},
    )
    child_attrs = dict(parent.user_attrs)
    child_attrs[attrs.STATUS] = SKIPPED
    child = make_trial(
        TrialState.FAIL,
        4.0,
        6.0,
        {1: 0.55},
        None,
        user_attrs=child_attrs,
        system_attrs={"failed_trial": 0, "retry_history": [0]},
    )
    trials = study_of(parent, child).trials
    cleaned = without_inherited(trials)
    assert attrs.EPOCH_SECONDS not in cleaned[1].user_attrs
    assert attrs.SETUP_SECONDS not in cleaned[1].user_attrs
    assert trials[1].user_attrs[attrs.EPOCHS] == 2  # the input is left alone
    assert epoch_count(cleaned[1]) == 1
    assert total_epochs(trials) == 3
    assert total_compute(trials) == pytest.approx(2.75)
    assert total_probe_seconds(trials) == pytest.approx(0.2)
    # Failed everywhere: no values, so no curve, but the clock was used.
    assert anytime_curve(trials, "epochs") == []
    assert budget_used(trials, "wall") == pytest.approx(6.0)
    assert without_inherited(cleaned)[1].user_attrs == cleaned[1].user_attrs  # idempotent


# ----- the probe's cost shifts the compute clock -----------------------------------------------


def test_probe_seconds_shift_the_compute_clock() -> None:
    """The same training (2 epochs of 1 s, values 0.6, 0.9) in two arms.

    vanilla: setup 0.5, no probe               -> 0.9 at compute 0.5 + 2 = 2.5
    OHGW:    setup 2.5 containing a 2.0 s probe -> 0.9 at compute 2.5 + 2 = 4.5
    (adding probe on top of setup would give 6.5). On the epochs clock both take 2.
    """
    vanilla = study_of(
        make_trial(TrialState.COMPLETE, 0.0, 2.5, {1: 0.6, 2: 0.9}, [1.0, 1.0], setup=0.5)
    ).trials
    ohgw = study_of(
        make_trial(
            TrialState.COMPLETE,
            0.0,
            4.5,
            {1: 0.6, 2: 0.9},
            [1.0, 1.0],
            setup=2.5,
            probe=2.0,
            user_attrs={attrs.STATUS: "ok"},
        )
    ).trials
    assert anytime_curve(vanilla, "compute") == [(1.5, 0.6), (2.5, 0.9)]
    assert anytime_curve(ohgw, "compute") == [(3.5, 0.6), (4.5, 0.9)]
    assert time_to_target(anytime_curve(vanilla, "compute"), 0.9) == 2.5
    assert time_to_target(anytime_curve(ohgw, "compute"), 0.9) == 4.5
    assert time_to_target(anytime_curve(ohgw, "wall"), 0.9) == 4.5
    for trials in (vanilla, ohgw):
        assert time_to_target(anytime_curve(trials, "epochs"), 0.9) == 2.0
    assert probe_share(ohgw) == pytest.approx(2.0 / 4.5)
    assert probe_share(vanilla) == 0.0
    assert probe_share([]) is None


def test_probe_charged_at_trial_start_delays_a_parallel_trial() -> None:
    """Two workers start together. Trial 0 probes for 3 s (setup 3.0), then 1 epoch of 1 s
    (value 0.9, ends t=4). Trial 1 has no probe (setup 0), 1 epoch of 2 s (value 0.8, ends t=2).
    Order: start-up 0 (3.0) at t=0 | 1/e1 at 2 | 0/e1 at 4.
    compute: 3.0, then 5.0 -> (5.0, 0.8), then 6.0 -> (6.0, 0.9)."""
    trials = study_of(
        make_trial(TrialState.COMPLETE, 0.0, 4.0, {1: 0.9}, [1.0], setup=3.0, probe=3.0),
        make_trial(TrialState.COMPLETE, 0.0, 2.0, {1: 0.8}, [2.0], setup=0.0),
    ).trials
    assert anytime_curve(trials, "compute") == [(5.0, 0.8), (6.0, 0.9)]
    assert anytime_curve(trials, "wall") == [(2.0, 0.8), (4.0, 0.9)]
    assert anytime_curve(trials, "epochs") == [(1.0, 0.8), (2.0, 0.9)]


# ----- pause/resume lineage ---------------------------------------------------------------------


def lineage_study() -> optuna.Study:
    """asha-promotion with two workers and rungs at epochs 1 and 3.

    trial 0 (config 0, segment 0) COMPLETE paused at epoch 1: start 0.0, setup 1, [2.0]
        value 0.5 (ends 3.0), test 0.45
    trial 1 (config 1, segment 0) COMPLETE paused at epoch 1: start 0.5, setup 1, [2.0]
        value 0.6 (ends 3.5), test 0.55
    trial 2 (config 1, segment 1) resumes config 1 at epoch 1: start 4.0, setup 0.5, [2.0, 2.0]
        reports steps 2, 3 (the configuration's numbering): 0.7 (ends 6.5), 0.8 (ends 8.5);
        test 0.78; end 8.6
    trial 3 (config 0, segment 1) the continuation nobody resumed: closed PRUNED at 9.0 with
        no training.

    Epochs trained: 1 + 1 + 2 = 4 (not 1 + 3 + ..., the configuration's epoch numbering).
    Compute: 1 | 2 | 4* | 6* | 6.5 | 8.5* | 10.5*.
    """
    steps = {attrs.STATUS: "ok"}
    seg0 = {lineage.SEGMENT: 0, lineage.START_EPOCH: 0, lineage.PAUSED: True}
    return study_of(
        make_trial(
            TrialState.COMPLETE,
            0.0,
            3.2,
            {1: 0.5},
            [2.0],
            setup=1.0,
            test=0.45,
            lr=0.1,
            user_attrs={**steps, attrs.step("lr"): 0.3, lineage.CONFIG: 0, **seg0},
        ),
        make_trial(
            TrialState.COMPLETE,
            0.5,
            3.6,
            {1: 0.6},
            [2.0],
            setup=1.0,
            test=0.55,
            lr=0.2,
            user_attrs={**steps, attrs.step("lr"): -0.3, lineage.CONFIG: 1, **seg0},
        ),
        make_trial(
            TrialState.COMPLETE,
            4.0,
            8.6,
            {2: 0.7, 3: 0.8},
            [2.0, 2.0],
            setup=0.5,
            test=0.78,
            lr=0.2,
            user_attrs={
                attrs.STATUS: SKIPPED,
                lineage.CONFIG: 1,
                lineage.SEGMENT: 1,
                lineage.PARENT: 1,
                lineage.START_EPOCH: 1,
            },
            system_attrs={
                "fixed_params": {"lr": 0.2},
                lineage.RESUME: {"config": 1, "parent": 1, "epoch": 1, "segment": 1},
            },
        ),
        make_trial(
            TrialState.PRUNED,
            9.0,
            9.0,
            {},
            None,
            lr=0.1,
            user_attrs={
                lineage.CONFIG: 0,
                lineage.SEGMENT: 1,
                lineage.PARENT: 0,
                lineage.START_EPOCH: 1,
                lineage.NOT_PROMOTED: True,
            },
            system_attrs={
                "fixed_params": {"lr": 0.1},
                lineage.RESUME: {"config": 0, "parent": 0, "epoch": 1, "segment": 1},
            },
        ),
        target=0.75,
    )


def test_pause_resume_counts_each_epoch_once() -> None:
    trials = lineage_study().trials
    assert total_epochs(trials) == 4
    assert anytime_curve(trials, "epochs") == [(1.0, 0.5), (2.0, 0.6), (3.0, 0.7), (4.0, 0.8)]
    assert anytime_curve(trials, "compute") == [(4.0, 0.5), (6.0, 0.6), (8.5, 0.7), (10.5, 0.8)]
    assert anytime_curve(trials, "wall") == [(3.0, 0.5), (3.5, 0.6), (6.5, 0.7), (8.5, 0.8)]
    assert total_compute(trials) == pytest.approx(10.5)
    # The unresumed continuation did no work: the wall budget ends at 8.6, not at 9.0.
    assert budget_used(trials, "wall") == pytest.approx(8.6)


def test_pause_resume_configurations() -> None:
    study = lineage_study()
    trials = study.trials
    # Every pause records a test accuracy: (val 0.5, test 0.45) at epoch 1, (0.6, 0.55) at 2,
    # then config 1's second segment (0.8, 0.78) at 4.
    assert anytime_test_curve(trials, "epochs") == [(1.0, 0.45), (2.0, 0.55), (4.0, 0.78)]
    assert best_test_accuracy(trials) == 0.78
    # Configurations, not segments: config 1 (best 0.8) then config 0 (0.5).
    assert ranked_configurations(trials) == [(1, 0.8), (0, 0.5)]
    assert final_hyperparameters(trials) == {"lr": [0.2, 0.1]}
    # OHGW nudges only first segments.
    assert applied_steps(trials) == {"lr": [0.3, -0.3]}
    m = compute_metrics(study)
    # tau 0.75: reached at config 1's epoch 3, the study's 4th epoch
    assert m.time_to_target == pytest.approx({"epochs": 4.0, "compute": 10.5, "wall": 8.5})
    assert m.n_configurations == 2
    assert m.counts["complete"] == 3 and m.counts["pruned"] == 1


# ----- smaller rules ----------------------------------------------------------------------------


def test_report_moments_are_clamped_to_the_trial_end() -> None:
    # Recorded seconds say the epoch ended at 0.5 + 3.0 = 3.5, but the trial completed at 2.0.
    trials = study_of(
        make_trial(TrialState.COMPLETE, 0.0, 2.0, {1: 0.7}, [3.0], setup=0.5),
    ).trials
    assert anytime_curve(trials, "wall") == [(2.0, 0.7)]
    assert anytime_curve(trials, "compute") == [(3.5, 0.7)]


def test_minimize_direction_and_bad_arguments() -> None:
    curve = [(1.0, 0.5), (2.0, 0.3), (3.0, 0.2)]
    assert time_to_target(curve, 0.3, "minimize") == 2.0
    assert time_to_target(curve, 0.1, "minimize") is None
    trials = study_of(
        make_trial(TrialState.PRUNED, 0.0, 2.0, {1: 0.5, 2: 0.7}, [1.0, 1.0], setup=0.0),
    ).trials
    assert anytime_curve(trials, "epochs", "minimize") == [(1.0, 0.5), (2.0, 0.5)]
    assert best_value(trials, "minimize") == 0.5
    with pytest.raises(ValueError, match="clock"):
        anytime_curve(trials, "hours")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction"):
        best_value(trials, "up")


def test_non_finite_values_are_skipped() -> None:
    trials = study_of(
        make_trial(TrialState.PRUNED, 0.0, 3.0, {1: math.nan, 2: 0.4}, [1.0, 1.0]),
    ).trials
    assert anytime_curve(trials, "epochs") == [(2.0, 0.4)]
    assert total_epochs(trials) == 2


def test_empty_study() -> None:
    m = compute_metrics(optuna.create_study(direction="maximize"), 0.5)
    assert m.curves == {"epochs": [], "compute": [], "wall": []}
    assert m.time_to_target == {"epochs": None, "compute": None, "wall": None}
    assert m.budget == {"epochs": 0.0, "compute": 0.0, "wall": 0.0}
    assert m.best_value is None and m.best_test_accuracy is None and m.probe_share is None


# ----- the first wave and each configuration's epochs --------------------------------------------


def _virtual_trial(
    start: float, ends: list[float], order: list[int], values: list[float], config: int
) -> FrozenTrial:
    """A virtual worker's trial: starts at virtual time ``start``, reports at ``ends``."""
    from optuna_ohgw.virtual import VIRTUAL_ATTR

    return make_trial(
        TrialState.COMPLETE if config != 1 else TrialState.PRUNED,
        0.0,
        1.0,
        {k + 1: v for k, v in enumerate(values)},
        [1.0] * len(values),
        user_attrs={lineage.CONFIG: config},
        system_attrs={VIRTUAL_ATTR: {"start": start, "ends": ends, "order": order}},
    )


def test_first_wave_is_what_the_workers_started_at_virtual_time_zero() -> None:
    from optuna_ohgw.evidence.metrics import configuration_epochs, first_wave

    # Two virtual workers: configurations 0 and 1 start at 0 (the first wave); 1 is stopped
    # after one epoch and worker 1 starts configuration 2 at time 1.
    trials = study_of(
        _virtual_trial(0.0, [1.0, 2.0, 3.0], [0, 2, 4], [0.5, 0.6, 0.9], 0),
        _virtual_trial(0.0, [1.0], [1], [0.7], 1),
        _virtual_trial(1.0, [2.0, 3.0], [3, 5], [0.65, 0.8], 2),
    ).get_trials()
    assert first_wave(trials) == {0, 1}
    assert configuration_epochs(trials) == {0: 3, 1: 1, 2: 2}
    # Without the first wave only configuration 2's values count; every epoch still does.
    assert anytime_curve(trials, "epochs", without=first_wave(trials)) == [
        (4.0, 0.65),
        (5.0, 0.65),
        (6.0, 0.8),
    ]
    m = compute_metrics(trials, 0.75)
    assert m.first_wave == (0, 1) and m.configuration_epochs == {0: 3, 1: 1, 2: 2}
    assert time_to_target(m.curves_without_first_wave["epochs"], 0.75) == 6.0
    assert time_to_target(m.curves_without_first["epochs"], 0.75) == 6.0
    assert m.time_to_target["epochs"] == 5.0  # configuration 0's 0.9, its third epoch
    # Real workers start apart: the first wave is the first configuration alone.
    assert first_wave(parallel_study().get_trials()) == {0}
    assert first_wave([]) == frozenset()
