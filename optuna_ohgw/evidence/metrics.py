"""Metrics of one study, computed from its trials alone (timestamps and per-epoch accounting).

Every function here is pure: it reads a list of :class:`~optuna.trial.FrozenTrial` (as
``study.get_trials()`` returns them) and the study's direction, and never touches a storage.

Which trials count
------------------
* ``COMPLETE`` and ``PRUNED`` trials: their reported validation values, epochs and seconds.
  A segment that paused at a rung is ``COMPLETE``; a continuation nobody resumed is closed
  ``PRUNED`` without training and so adds nothing.
* ``FAIL`` trials: their epochs and seconds count (the compute was spent), their values never do.
  A retried trial is a new trial with the same parameters; both attempts pay. Optuna's retry
  callbacks copy the failed attempt's user attrs into the retry, so before anything is summed,
  :func:`without_inherited` drops from a retry every accounting attr it still shares with the
  attempt it retries (see there); a retry never runs the probe (its parameters are fixed), so
  its ``probe_seconds`` would otherwise be the failed attempt's, counted twice.
* ``RUNNING`` and ``WAITING`` trials are ignored entirely (not finished, or not started).

The accounting unit is the trial (a *segment* under ``asha-promotion`` / ``pasha``). A trial's
epochs are the epochs *it* trained: ``n = max(ohgw.epochs, len(ohgw.epoch_seconds),
len(intermediate_values))``. The three agree for every trial the epoch objective ends itself; a
trial whose worker was killed has only its intermediate values. A resumed segment reports steps
``start_epoch + 1, ...`` (the configuration's numbering), but only its own epochs are counted, so
a configuration trained in several segments is counted once per epoch, never from epoch 1 again.

The start-up charge of a trial is ``max(ohgw.setup_seconds, ohgw.probe_seconds)``: the epoch
objective times ``setup(trial)``, which holds the first ``suggest_float`` and therefore the OHGW
probe (``OHGWSampler`` runs it lazily there), so ``setup_seconds`` already includes
``probe_seconds``; adding them would count the probe twice. ``max`` also covers trials that
recorded only one of the two (the digits journals in ``runs/`` have ``setup >= probe`` on every
trial). Arms that run the probe (including the ``none`` step-rule control) pay for it through this
charge; a probe that did not run in the trial (``ohgw.status`` ``skipped ...``) is never charged.

Clocks
------
Each trained epoch is an *event* placed at an estimated moment: a trial's ``k``-th epoch ends at
``datetime_start + start-up charge + sum(epoch_seconds[:k])``, clamped to ``datetime_complete``.
The storage keeps no per-report timestamps (the epoch objective writes its accounting once, at the
end of the trial, to keep storage writes low), so this is an estimate: it ignores the gaps between
epochs (the pruner's ``should_prune``, checkpoint saves, storage round trips) and the evaluation
after the last one, which is why it is clamped to the trial's end. The start-up charge is part of
the estimate because setup can dominate a trial (the first trial of a worker loads the data:
4.0 s of setup before 3.3 s of epochs in ``runs/digits-asha.journal``'s trial 0). A trial
without per-epoch seconds (killed worker) has its epochs spread evenly over ``[datetime_start,
datetime_complete]`` and charged 0 seconds of compute (an under-count the storage cannot
repair). Events of all trials are merged in order of their moments, so parallel workers
interleave. Start-up charges are events at ``datetime_start``.

* ``"epochs"``: each trained epoch anywhere in the study advances the clock by 1 (machine
  independent resource units; failed trials' epochs included).
* ``"compute"``: each epoch advances the clock by its own seconds, and each trial's start-up
  charge (setup, probe included) is added at its ``datetime_start``. This is the compute of all
  workers summed, not elapsed time.
* ``"wall"``: seconds from the earliest ``datetime_start`` of a trial that did any work to the
  event's estimated moment (real elapsed time, parallelism included).

Virtual workers (:mod:`optuna_ohgw.virtual`) record on each trial the virtual time of its start
and of each reported epoch, and each report's place in the run's global order
(:data:`~optuna_ohgw.virtual.VIRTUAL_ATTR`). Such a trial's events are placed there instead: its
moments are :data:`VIRTUAL_ORIGIN` plus the virtual time (in clock units read as seconds), ties
are broken by the recorded order, and ``"wall"`` is the virtual elapsed time (epochs, with the
epochs clock: one worker-epoch per unit). The ``"epochs"`` and ``"compute"`` clocks still sum the
work of all workers, now merged in the virtual order.

Validation values are the trials' reported intermediate values (one per epoch); the best so far
is over every reported epoch of every non-failed trial, whatever the trial's later fate. Test
accuracy (``test_accuracy``, written when a configuration finishes or pauses) becomes known at the
event of the trial's last epoch; only ``COMPLETE`` trials have one that counts.

Censoring
---------
:func:`time_to_target` returns ``None`` when the target is never reached. That is *not* a missing
value: it is a right-censored observation, known only to exceed the budget the study used on that
clock (:func:`budget_used`). Evidence code must keep such runs (e.g. survival analysis / rank
tests with censoring, or success rates), never drop them or replace them with the budget as if
the target had been reached there.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any, Literal

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import attrs, lineage
from optuna_ohgw.virtual import VIRTUAL_ATTR

Clock = Literal["epochs", "compute", "wall"]
CLOCKS: tuple[Clock, ...] = ("epochs", "compute", "wall")
Point = tuple[float, float]
"""``(clock value, metric)``."""
Direction = StudyDirection | str

TEST_ACCURACY = "test_accuracy"
"""User attr with a configuration's test accuracy, set when it finishes or pauses."""
STATUS_OK = "ok"

COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
"""States whose epochs and seconds count."""
VALUE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
"""States whose reported values count."""
VIRTUAL_ORIGIN = dt.datetime(2000, 1, 1)
"""The moment virtual time 0 is placed at (virtual trials only ever meet each other)."""


# ----- small helpers ----------------------------------------------------------------------------


def _maximize(direction: Direction) -> bool:
    if isinstance(direction, StudyDirection):
        if direction == StudyDirection.NOT_SET:
            raise ValueError("The study direction is not set.")
        return direction == StudyDirection.MAXIMIZE
    name = str(direction).lower()
    if name not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}.")
    return name == "maximize"


def _better(a: float, b: float | None, maximize: bool) -> bool:
    """``a`` strictly better than ``b`` (anything beats ``None``)."""
    if b is None:
        return True
    return a > b if maximize else a < b


def _finite(x: Any) -> float | None:
    """``x`` as a finite float, else ``None`` (missing, NaN, inf, not a number)."""
    if isinstance(x, bool) or x is None:
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _seconds(x: Any) -> float:
    """A recorded duration; missing, non-finite or negative ones count as 0."""
    value = _finite(x)
    return value if value is not None and value > 0.0 else 0.0


def _check_clock(clock: str) -> None:
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}.")


def counted(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """The finished trials whose resources count (``COMPLETE``, ``PRUNED``, ``FAIL``), with
    inherited accounting attrs dropped (:func:`without_inherited`)."""
    return [t for t in without_inherited(trials) if t.state in COUNTED_STATES]


# ----- retries ----------------------------------------------------------------------------------

_INHERITABLE: tuple[tuple[str, tuple[str, ...]], ...] = (
    (attrs.EPOCH_SECONDS, (attrs.EPOCHS, attrs.EPOCH_SECONDS, attrs.TRAIN_SECONDS)),
    (attrs.SETUP_SECONDS, (attrs.SETUP_SECONDS,)),
    (attrs.PROBE_SECONDS, (attrs.PROBE_SECONDS,)),
    (attrs.REPROBE_SECONDS, (attrs.REPROBE_SECONDS,)),
    (TEST_ACCURACY, (TEST_ACCURACY,)),
)
"""``(identifying attr, attrs dropped with it)``: the epoch accounting goes as one group."""


def _retried_from(trial: FrozenTrial, by_number: Mapping[int, FrozenTrial]) -> FrozenTrial | None:
    """The attempt this trial retries (Optuna's ``retry_history``/``failed_trial``), if any."""
    history = trial.system_attrs.get("retry_history") or []
    number = history[-1] if history else trial.system_attrs.get("failed_trial")
    if number is None:
        return None
    parent = by_number.get(int(number))
    return parent if parent is not None and parent.number != trial.number else None


def without_inherited(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """The trials, where each retry loses the accounting attrs it inherited from its attempt.

    ``RetryFailedTrialCallback``/``RetryHeartbeatStaleTrialCallback`` (used by the runner for
    dead or interrupted workers) create the retry with a copy of the failed attempt's user
    attrs. The retry overwrites the epoch accounting and ``setup_seconds`` with its own once it
    gets there, but never ``probe_seconds`` (it does not probe), and a retry that dies early
    keeps them all. An attr (group) whose value is still exactly the attempt's is therefore
    the attempt's and is dropped from the retry (shallow copies; the inputs are not changed).
    Per-epoch second lists and timings never coincide by chance; an epoch group that is
    genuinely equal and empty (``[]``) carries nothing either way.
    """
    trials = list(trials)
    by_number = {t.number: t for t in trials}
    out = []
    for t in trials:
        parent = _retried_from(t, by_number)
        drop: set[str] = set()
        if parent is not None:
            for key, group in _INHERITABLE:
                if key in t.user_attrs and t.user_attrs[key] == parent.user_attrs.get(key):
                    drop.update(k for k in group if k in t.user_attrs)
        if drop:
            t = copy.copy(t)
            t.user_attrs = {k: v for k, v in t.user_attrs.items() if k not in drop}
        out.append(t)
    return out


# ----- per-trial accounting ---------------------------------------------------------------------


def epoch_count(trial: FrozenTrial) -> int:
    """Epochs trained by this trial (segment): ``max(ohgw.epochs, len(epoch_seconds),
    len(intermediate_values))``."""
    recorded = _finite(trial.user_attrs.get(attrs.EPOCHS))
    seconds = attrs.unpack_floats(trial.user_attrs.get(attrs.EPOCH_SECONDS))
    n_seconds = len(seconds) if seconds is not None else 0
    return max(int(recorded or 0), n_seconds, len(trial.intermediate_values))


def epoch_seconds(trial: FrozenTrial) -> list[float]:
    """Per-epoch compute seconds, one per :func:`epoch_count` epoch (0 where not recorded)."""
    raw = attrs.unpack_floats(trial.user_attrs.get(attrs.EPOCH_SECONDS))
    values = [_seconds(s) for s in raw] if raw is not None else []
    n = epoch_count(trial)
    return values + [0.0] * (n - len(values))


def _warm_start_seconds(trial: FrozenTrial) -> float:
    status = trial.user_attrs.get(attrs.STATUS)
    if isinstance(status, str) and status.startswith("skipped"):
        return 0.0
    return _seconds(trial.user_attrs.get(attrs.PROBE_SECONDS))


def probe_seconds_of(trial: FrozenTrial) -> float:
    """Seconds the OHGW probes took in this trial: the warm start's (0 when it did not run,
    including when the trial's ``ohgw.status`` says it was ``skipped``: any ``probe_seconds``
    there was copied from a failed attempt) plus a re-probe at a promotion
    (``ohgw.reprobe.seconds``)."""
    return _warm_start_seconds(trial) + _seconds(trial.user_attrs.get(attrs.REPROBE_SECONDS))


def startup_seconds(trial: FrozenTrial) -> float:
    """The start-up charge: ``max(setup_seconds, warm-start probe seconds)`` (setup contains
    that probe) plus the re-probe's seconds (run after setup, when the checkpoint is loaded)."""
    setup = _seconds(trial.user_attrs.get(attrs.SETUP_SECONDS))
    reprobe = _seconds(trial.user_attrs.get(attrs.REPROBE_SECONDS))
    return max(setup, _warm_start_seconds(trial)) + reprobe


def trial_compute(trial: FrozenTrial) -> float:
    """Start-up charge plus the sum of the trial's epoch seconds."""
    return startup_seconds(trial) + sum(epoch_seconds(trial))


def _did_work(trial: FrozenTrial) -> bool:
    return epoch_count(trial) > 0 or startup_seconds(trial) > 0.0


# ----- events -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Event:
    moment: dt.datetime
    order: float  # the virtual run's event order at equal moments (0 for real workers)
    kind: int  # 0: start-up charge, 1: an epoch
    number: int
    index: int
    epochs: int
    seconds: float
    value: float | None  # validation value that counts toward the best so far
    test: tuple[float, float] | None  # (validation, test) of a finished/paused configuration


def _test_pair(trial: FrozenTrial) -> tuple[float, float] | None:
    if trial.state != TrialState.COMPLETE:
        return None
    test = _finite(trial.user_attrs.get(TEST_ACCURACY))
    value = _finite(trial.value)
    if value is None:
        values = [v for _, v in sorted(trial.intermediate_values.items())]
        value = _finite(values[-1]) if values else None
    if test is None or value is None:
        return None
    return value, test


def _virtual(trial: FrozenTrial) -> dict[str, Any] | None:
    record = trial.system_attrs.get(VIRTUAL_ATTR)
    return record if isinstance(record, dict) and "ends" in record else None


def _at(units: float) -> dt.datetime:
    return VIRTUAL_ORIGIN + dt.timedelta(seconds=float(units))


def _trial_events(trial: FrozenTrial, hidden: bool = False) -> list[_Event]:
    if trial.state not in COUNTED_STATES or not _did_work(trial):
        return []
    virtual = _virtual(trial)
    if virtual is not None:
        return _virtual_events(trial, virtual, hidden)
    start = trial.datetime_start
    if start is None:
        raise ValueError(
            f"Trial {trial.number} is {trial.state.name} and trained, but has no datetime_start."
        )
    end = trial.datetime_complete
    n = epoch_count(trial)
    secs = epoch_seconds(trial)
    raw = attrs.unpack_floats(trial.user_attrs.get(attrs.EPOCH_SECONDS))
    timed = raw is not None and len(raw) >= n
    startup = startup_seconds(trial)
    values = [v for _, v in sorted(trial.intermediate_values.items())]
    use_values = trial.state in VALUE_STATES and not hidden
    test = None if hidden else _test_pair(trial)

    events = []
    if startup > 0.0 or n == 0:
        events.append(
            _Event(start, 0, 0, trial.number, 0, 0, startup, None, test if n == 0 else None)
        )
    elapsed = startup
    for k in range(n):
        if timed or end is None:
            elapsed += secs[k]
            moment = start + dt.timedelta(seconds=elapsed)
        else:
            moment = start + (end - start) * (k + 1) / n
        if end is not None:
            moment = min(moment, end)
        value = _finite(values[k]) if use_values and k < len(values) else None
        events.append(
            _Event(
                moment,
                0,
                1,
                trial.number,
                k,
                1,
                secs[k],
                value,
                test if k == n - 1 else None,
            )
        )
    return events


def _virtual_events(trial: FrozenTrial, record: Mapping[str, Any], hidden: bool) -> list[_Event]:
    """A virtual worker's trial: its start and epochs at their recorded virtual times."""
    ends, order = list(record["ends"]), list(record["order"])
    n = len(ends)
    secs = epoch_seconds(trial)
    values = [v for _, v in sorted(trial.intermediate_values.items())]
    use_values = trial.state in VALUE_STATES and not hidden
    test = None if hidden else _test_pair(trial)
    startup = startup_seconds(trial)
    events = []
    if startup > 0.0 or n == 0:
        start_order = float(record.get("start_order", 0)) + 0.5  # after the event before it
        events.append(
            _Event(
                _at(record["start"]),
                start_order,
                0,
                trial.number,
                0,
                0,
                startup,
                None,
                test if n == 0 else None,
            )
        )
    for k in range(n):
        value = _finite(values[k]) if use_values and k < len(values) else None
        events.append(
            _Event(
                _at(ends[k]),
                float(order[k]),
                1,
                trial.number,
                k,
                1,
                secs[k] if k < len(secs) else 0.0,
                value,
                test if k == n - 1 else None,
            )
        )
    return events


def _events(trials: Iterable[FrozenTrial], without: Container[int] = ()) -> list[_Event]:
    events = [
        e
        for t in without_inherited(trials)
        for e in _trial_events(t, hidden=lineage.config_of(t) in without)
    ]
    events.sort(key=lambda e: (e.moment, e.order, e.kind, e.number, e.index))
    return events


def _start(trial: FrozenTrial) -> dt.datetime | None:
    virtual = _virtual(trial)
    return _at(virtual["start"]) if virtual is not None else trial.datetime_start


def _end(trial: FrozenTrial) -> dt.datetime | None:
    virtual = _virtual(trial)
    if virtual is None:
        return trial.datetime_complete
    return _at(max([virtual["start"], *virtual["ends"]]))


def _origin(trials: Iterable[FrozenTrial]) -> dt.datetime | None:
    starts = [s for t in counted(trials) if _did_work(t) and (s := _start(t)) is not None]
    return min(starts) if starts else None


def _clock_times(
    events: Sequence[_Event], clock: Clock, origin: dt.datetime | None
) -> list[float]:
    times = []
    total = 0.0
    for e in events:
        if clock == "epochs":
            total += e.epochs
            times.append(total)
        elif clock == "compute":
            total += e.seconds
            times.append(total)
        else:
            assert origin is not None
            times.append((e.moment - origin).total_seconds())
    return times


# ----- curves -----------------------------------------------------------------------------------


def anytime_curve(
    trials: Iterable[FrozenTrial],
    clock: Clock = "epochs",
    direction: Direction = "maximize",
    *,
    without: Container[int] = (),
) -> list[Point]:
    """Best validation value so far against the study's clock, one point per trained epoch.

    Points follow the merged order of all trials' epoch events (see the module docstring for
    the clocks and their approximations). A point is emitted for every epoch of a counted trial
    (failed ones too: they advance the clock, their values never change the best), starting at
    the first epoch that gives a finite value. Start-up charges move the ``"compute"`` clock but
    emit no point of their own. The curve is a right-continuous step function: the best is
    ``y`` from ``t`` until the next point.

    ``without``: configurations (:func:`~optuna_ohgw.lineage.config_of`) whose values never
    count; their epochs still advance the clock (the compute was spent). ``without=(0,)``
    asks what the search found besides the study's first draw.
    """
    _check_clock(clock)
    trials = list(trials)
    maximize = _maximize(direction)
    events = _events(trials, without)
    times = _clock_times(events, clock, _origin(trials))
    best: float | None = None
    curve: list[Point] = []
    for e, t in zip(events, times):
        if e.epochs == 0:
            continue
        if e.value is not None and _better(e.value, best, maximize):
            best = e.value
        if best is not None:
            curve.append((t, best))
    return curve


def anytime_test_curve(
    trials: Iterable[FrozenTrial],
    clock: Clock = "epochs",
    direction: Direction = "maximize",
) -> list[Point]:
    """Test accuracy of the incumbent, chosen by validation, against the study's clock.

    A point is emitted whenever a configuration finishes or pauses with a ``test_accuracy``
    (at its last epoch's event): the incumbent is the candidate so far with the best validation
    value (the trial's final value, measured on the same weights as its test accuracy; the
    earliest one wins ties), and the point's value is *its* test accuracy. Test accuracy never
    picks the incumbent.
    """
    _check_clock(clock)
    trials = list(trials)
    maximize = _maximize(direction)
    events = _events(trials)
    times = _clock_times(events, clock, _origin(trials))
    incumbent: tuple[float, float] | None = None
    curve: list[Point] = []
    for e, t in zip(events, times):
        if e.test is None:
            continue
        if incumbent is None or _better(e.test[0], incumbent[0], maximize):
            incumbent = e.test
        curve.append((t, incumbent[1]))
    return curve


def configuration_epochs(trials: Iterable[FrozenTrial]) -> dict[int, int]:
    """``configuration -> epochs it trained``, summed over its segments (counted trials only,
    :func:`epoch_count` each). Under ASHA a configuration that was never pruned trained the
    study's maximum epochs; comparing configuration 0's count with the largest shows whether
    the study's first draw ran to the end."""
    out: dict[int, int] = {}
    for t in counted(trials):
        k = lineage.config_of(t)
        out[k] = out.get(k, 0) + epoch_count(t)
    return out


def first_wave(trials: Iterable[FrozenTrial]) -> frozenset[int]:
    """The configurations the workers started before any result was known: those whose first
    segment started at the study's earliest start moment (:func:`_start`; a virtual worker's
    recorded virtual time). With ``N`` virtual workers that is configurations ``0 .. N-1``, all
    started at virtual time 0, drawn by the sampler before it had seen a single epoch; with
    one worker it is configuration 0 alone; with real workers, whose start times differ, it
    is the first configuration only. Leaving the first wave's values out
    (``anytime_curve(..., without=first_wave(trials))``) asks what the search found after
    the workers' first draws, which the executor's order of ties can favour."""
    starts: dict[int, dt.datetime] = {}
    for t in counted(trials):
        s = _start(t)
        if s is None or not _did_work(t):
            continue
        k = lineage.config_of(t)
        starts[k] = min(starts.get(k, s), s)
    if not starts:
        return frozenset()
    origin = min(starts.values())
    return frozenset(k for k, s in starts.items() if s == origin)


def time_to_target(
    curve: Sequence[Point], tau: float, direction: Direction = "maximize"
) -> float | None:
    """The first clock value at which the best so far reaches ``tau`` (``>=``; ``<=`` when
    minimizing), or ``None`` when it never does.

    ``None`` is a right-censored observation: the run did not reach ``tau`` within the budget it
    used (:func:`budget_used` on the same clock gives the censoring time). It must be kept as
    censored in the evidence, never dropped nor read as "reached at the end of the budget".
    """
    maximize = _maximize(direction)
    for t, best in curve:
        if (best >= tau) if maximize else (best <= tau):
            return t
    return None


def budget_used(trials: Iterable[FrozenTrial], clock: Clock = "epochs") -> float:
    """What the study used on ``clock``: the censoring time of an unreached target.

    ``"epochs"``: :func:`total_epochs`; ``"compute"``: :func:`total_compute`; ``"wall"``: from the
    earliest start to the latest ``datetime_complete`` of a counted trial that did any work.
    """
    _check_clock(clock)
    trials = counted(trials)
    if clock == "epochs":
        return float(total_epochs(trials))
    if clock == "compute":
        return total_compute(trials)
    origin = _origin(trials)
    ends = [e for t in trials if _did_work(t) and (e := _end(t)) is not None]
    if origin is None or not ends:
        return 0.0
    return (max(ends) - origin).total_seconds()


# ----- scalars ----------------------------------------------------------------------------------


def best_value(trials: Iterable[FrozenTrial], direction: Direction = "maximize") -> float | None:
    """Best finite validation value reported by a ``COMPLETE`` or ``PRUNED`` trial."""
    maximize = _maximize(direction)
    best: float | None = None
    for t in trials:
        if t.state not in VALUE_STATES:
            continue
        for v in t.intermediate_values.values():
            value = _finite(v)
            if value is not None and _better(value, best, maximize):
                best = value
    return best


def best_test_accuracy(
    trials: Iterable[FrozenTrial], direction: Direction = "maximize"
) -> float | None:
    """``test_accuracy`` of the ``COMPLETE`` trial with the best validation value among those
    that have one (picked by validation, reported on test; never picked by test).

    The validation value is the trial's final value. Ties go to the candidate that finished
    first (the same rule as :func:`anytime_test_curve`, whose last point this equals).
    ``None`` when no trial has a test accuracy.
    """
    curve = anytime_test_curve(trials, "epochs", direction)
    return curve[-1][1] if curve else None


def total_epochs(trials: Iterable[FrozenTrial]) -> int:
    """Epochs trained by all counted trials (failed ones included), each segment's own."""
    return sum(epoch_count(t) for t in counted(trials))


def total_compute(trials: Iterable[FrozenTrial]) -> float:
    """Compute seconds of all counted trials: epoch seconds plus each start-up charge
    (``max(setup_seconds, probe_seconds)``, the probe being part of setup)."""
    return sum(trial_compute(t) for t in counted(trials))


def total_probe_seconds(trials: Iterable[FrozenTrial]) -> float:
    """Seconds spent in OHGW probes by all counted trials."""
    return sum(probe_seconds_of(t) for t in counted(trials))


def probe_share(trials: Iterable[FrozenTrial]) -> float | None:
    """Probe seconds over :func:`total_compute` (``None`` when no compute was recorded)."""
    trials = counted(trials)
    total = total_compute(trials)
    if total <= 0.0:
        return None
    return total_probe_seconds(trials) / total


# ----- hyperparameters and steps ----------------------------------------------------------------


def ranked_configurations(
    trials: Iterable[FrozenTrial], direction: Direction = "maximize"
) -> list[tuple[int, float]]:
    """``(configuration, best validation value over all its segments)``, best first.

    A configuration is a trial, or under pause/resume schedulers the chain of its segments
    (:func:`optuna_ohgw.lineage.config_of`). Only ``COMPLETE``/``PRUNED`` values count, so a
    failed attempt adds nothing and its retry is its own configuration. Ties: lower number first.
    """
    maximize = _maximize(direction)
    scores: dict[int, float] = {}
    for t in trials:
        if t.state not in VALUE_STATES:
            continue
        config = lineage.config_of(t)
        for v in t.intermediate_values.values():
            value = _finite(v)
            if value is not None and _better(value, scores.get(config), maximize):
                scores[config] = value
    sign = -1.0 if maximize else 1.0
    return sorted(scores.items(), key=lambda item: (sign * item[1], item[0]))


def final_hyperparameters(
    trials: Iterable[FrozenTrial],
    top_k: int | None = None,
    direction: Direction = "maximize",
) -> dict[str, list[Any]]:
    """Per parameter, the values used by the configurations (the nudged values, i.e. the
    trials' ``params``), best configuration first (:func:`ranked_configurations`); only the
    ``top_k`` best when given. Each configuration counts once however many segments it has;
    a configuration without a given parameter is skipped for that parameter.
    """
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be non-negative, got {top_k}.")
    trials = list(trials)
    ranked = ranked_configurations(trials, direction)
    if top_k is not None:
        ranked = ranked[:top_k]
    params: dict[int, Mapping[str, Any]] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.state in VALUE_STATES:
            params.setdefault(lineage.config_of(t), t.params)
    out: dict[str, list[Any]] = {}
    for config, _ in ranked:
        for name, value in params[config].items():
            out.setdefault(name, []).append(value)
    return out


def applied_steps(trials: Iterable[FrozenTrial]) -> dict[str, list[float]]:
    """Per parameter, the applied warm-start steps (``ohgw.step.<p>``, internal coordinates)
    of the counted trials whose ``ohgw.status`` is ``"ok"``, in trial order.

    Trials whose probe failed, was skipped (retried, enqueued, resumed segments) or is off
    (vanilla arm) are left out; a step is recorded whatever became of the trial afterwards.
    """
    prefix = attrs.step("")
    out: dict[str, list[float]] = {}
    for t in sorted(counted(trials), key=lambda t: t.number):
        if t.user_attrs.get(attrs.STATUS) != STATUS_OK:
            continue
        for key, raw in sorted(t.user_attrs.items()):
            if not key.startswith(prefix):
                continue
            value = _finite(raw)
            if value is not None:
                out.setdefault(key[len(prefix) :], []).append(value)
    return out


@dataclasses.dataclass(frozen=True)
class Move:
    """One warm-start step of one parameter, read from a trial's ``raw``/``nudged`` attrs.

    Positions are in internal coordinates scaled to the range (0 = low, 1 = high; log space
    for log-scaled floats). ``outcome`` is the best validation value its configuration reached.
    """

    param: str
    raw: float
    nudged: float
    at_bound: bool
    """The nudged value sits on a bound the raw value was not on: the step was clipped there."""
    outcome: float | None


def warm_start_moves(
    trials: Iterable[FrozenTrial], direction: Direction = "maximize", *, reprobe: bool = False
) -> list[Move]:
    """Every warm-start step of the counted trials whose ``ohgw.status`` is ``"ok"`` (first
    segments only: a resumed segment does not run the warm start), as :class:`Move`; with
    ``reprobe``, every re-probe at a promotion instead (``ohgw.reprobe.from/to.<p>`` of the
    resumed segments whose ``ohgw.reprobe.status`` is ``"ok"``).

    A parameter is read only when the trial has both values and a float distribution for it;
    ``outcome`` comes from :func:`ranked_configurations`.
    """
    trials = counted(trials)
    best = dict(ranked_configurations(trials, direction))
    status, before, after = (
        (attrs.REPROBE_STATUS, attrs.reprobe_from, attrs.reprobe_to)
        if reprobe
        else (attrs.STATUS, attrs.raw, attrs.nudged)
    )
    prefix = before("")
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.user_attrs.get(status) != STATUS_OK:
            continue
        for key in sorted(t.user_attrs):
            if not key.startswith(prefix):
                continue
            name = key[len(prefix) :]
            dist = t.distributions.get(name)
            raw, nudged = _finite(t.user_attrs[key]), _finite(t.user_attrs.get(after(name)))
            if raw is None or nudged is None or not hasattr(dist, "log"):
                continue
            low, high = float(dist.low), float(dist.high)  # type: ignore[union-attr]
            log = bool(dist.log)  # type: ignore[union-attr]
            at_bound = nudged != raw and (nudged in (low, high)) and raw not in (low, high)
            out.append(
                Move(
                    name,
                    _scaled(raw, low, high, log),
                    _scaled(nudged, low, high, log),
                    at_bound,
                    best.get(lineage.config_of(t)),
                )
            )
    return out


@dataclasses.dataclass(frozen=True)
class FirstEpoch:
    """A configuration's first trained epoch, keyed by what the base sampler drew.

    ``raw`` is the configuration before any warm start, as sorted ``(name, value)`` pairs: the
    ``ohgw.raw.<p>`` attr where the trial has one, else its float param. Two arms of one seed
    whose trial ``number`` drew the same ``raw`` train from the same initial weights and batches
    (the training seed is derived from the study seed and the trial number), so their ``value``
    differs only by what the warm start changed.
    """

    number: int
    raw: tuple[tuple[str, float], ...]
    values: tuple[float, ...]
    """The segment's validation values at steps 1, 2, ... up to its first gap or non-finite
    value; ``values[0]`` is the first epoch's."""
    moves: tuple[tuple[str, float], ...] = ()
    """``(name, trained - raw)`` per float parameter in range units (0 = low, 1 = high; log
    space for log-scaled ones): the warm start's step, 0.0 where nothing moved."""
    positions: tuple[tuple[str, float], ...] = ()
    """``(name, raw)`` per float parameter in the same range units."""


def first_epochs(trials: Iterable[FrozenTrial]) -> list[FirstEpoch]:
    """:class:`FirstEpoch` of every ``COMPLETE``/``PRUNED`` first segment that reported a finite
    value at step 1 (continuations under pause/resume schedulers start later and are skipped),
    in trial order. Only float parameters count towards ``raw``."""
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state not in VALUE_STATES or lineage.is_continuation(t):
            continue
        values: list[float] = []
        while (v := _finite(t.intermediate_values.get(len(values) + 1))) is not None:
            values.append(v)
        if not values:
            continue
        floats = {
            name: d
            for name, d in t.distributions.items()
            if isinstance(d, optuna.distributions.FloatDistribution)
        }
        raw = {}
        for name in floats:
            drawn = _finite(t.user_attrs.get(attrs.raw(name)))
            raw[name] = drawn if drawn is not None else float(t.params[name])
        ranged = {name: d for name, d in floats.items() if d.high > d.low}
        at = {name: _scaled(raw[name], d.low, d.high, d.log) for name, d in ranged.items()}
        moves = {
            name: _scaled(float(t.params[name]), d.low, d.high, d.log) - at[name]
            for name, d in ranged.items()
        }
        out.append(
            FirstEpoch(
                t.number,
                tuple(sorted(raw.items())),
                tuple(values),
                tuple(sorted(moves.items())),
                tuple(sorted(at.items())),
            )
        )
    return out


def _scaled(x: float, low: float, high: float, log: bool) -> float:
    if log:
        return (math.log(x) - math.log(low)) / (math.log(high) - math.log(low))
    return (x - low) / (high - low)


# ----- everything for one study -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StudyMetrics:
    """All metrics of one study (see the module docstring for clocks and censoring).

    ``time_to_target[clock]`` is ``None`` when censored; ``budget[clock]`` is then the censoring
    time. ``curves``/``test_curves`` map each clock to :func:`anytime_curve` /
    :func:`anytime_test_curve`.
    """

    study_name: str | None
    direction: str
    target: float
    study_attrs: dict[str, Any]
    counts: dict[str, int]
    n_configurations: int
    best_value: float | None
    best_test_accuracy: float | None
    curves: dict[Clock, list[Point]]
    test_curves: dict[Clock, list[Point]]
    time_to_target: dict[Clock, float | None]
    budget: dict[Clock, float]
    total_epochs: int
    total_compute: float
    probe_seconds: float
    probe_share: float | None
    final_hyperparameters: dict[str, list[Any]]
    applied_steps: dict[str, list[float]]
    curves_without_first: dict[Clock, list[Point]] = dataclasses.field(default_factory=dict)
    """:func:`anytime_curve` with configuration 0's values left out (its epochs still count)."""
    curves_without_first_wave: dict[Clock, list[Point]] = dataclasses.field(default_factory=dict)
    """:func:`anytime_curve` with the :func:`first_wave`'s values left out (configurations
    0-7 at eight virtual workers; its epochs still count)."""
    first_wave: tuple[int, ...] = ()
    """The configurations of :func:`first_wave`, sorted."""
    configuration_epochs: dict[int, int] = dataclasses.field(default_factory=dict)
    """:func:`configuration_epochs`."""

    @property
    def reached_target(self) -> bool:
        """Whether the target was reached (the same on every clock)."""
        return self.time_to_target["epochs"] is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (tuples become lists)."""
        out = dataclasses.asdict(self)
        for key in ("curves", "test_curves", "curves_without_first", "curves_without_first_wave"):
            out[key] = {c: [list(p) for p in pts] for c, pts in out[key].items()}
        out["reached_target"] = self.reached_target
        return out


def compute_metrics(
    study_or_trials: optuna.Study | Iterable[FrozenTrial],
    tau: float | None = None,
    *,
    direction: Direction | None = None,
) -> StudyMetrics:
    """Every metric of one study.

    Args:
        study_or_trials: A study (its trials, direction, name and user attrs are read) or its
            trials.
        tau: The target; defaults to the study's ``ohgw.target`` user attr. Required with a
            plain list of trials.
        direction: Defaults to the study's direction, or ``"maximize"`` for a list of trials.
    """
    study_attrs: dict[str, Any] = {}
    name: str | None = None
    if isinstance(study_or_trials, optuna.Study):
        study = study_or_trials
        trials = study.get_trials(deepcopy=False)
        study_attrs = dict(study.user_attrs)
        name = study.study_name
        if direction is None:
            direction = study.direction
    else:
        trials = list(study_or_trials)
    if tau is None:
        tau = _finite(study_attrs.get("ohgw.target"))
        if tau is None:
            raise ValueError("No target: pass tau= (the study has no 'ohgw.target' user attr).")
    direction = "maximize" if direction is None else direction
    maximize = _maximize(direction)

    curves = {c: anytime_curve(trials, c, direction) for c in CLOCKS}
    wave = first_wave(trials)
    counts = {state.name.lower(): 0 for state in TrialState}
    for t in trials:
        counts[t.state.name.lower()] += 1
    return StudyMetrics(
        study_name=name,
        direction="maximize" if maximize else "minimize",
        target=float(tau),
        study_attrs=study_attrs,
        counts=counts,
        n_configurations=len(lineage.configurations(trials)),
        best_value=best_value(trials, direction),
        best_test_accuracy=best_test_accuracy(trials, direction),
        curves=curves,
        test_curves={c: anytime_test_curve(trials, c, direction) for c in CLOCKS},
        time_to_target={c: time_to_target(curves[c], tau, direction) for c in CLOCKS},
        budget={c: budget_used(trials, c) for c in CLOCKS},
        total_epochs=total_epochs(trials),
        total_compute=total_compute(trials),
        probe_seconds=total_probe_seconds(trials),
        probe_share=probe_share(trials),
        final_hyperparameters=final_hyperparameters(trials, direction=direction),
        applied_steps=applied_steps(trials),
        curves_without_first={
            c: anytime_curve(trials, c, direction, without=(0,)) for c in CLOCKS
        },
        curves_without_first_wave={
            c: anytime_curve(trials, c, direction, without=wave) for c in CLOCKS
        },
        first_wave=tuple(sorted(wave)),
        configuration_epochs=configuration_epochs(trials),
    )
