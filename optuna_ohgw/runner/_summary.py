"""What a run (or a status query) found in the storage, as a table of lines."""

from __future__ import annotations

import collections
import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import attrs, lineage
from optuna_ohgw.runner._budget import epochs_used


def probe_status_counts(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """How many trials' probes ended ``ok``, ``skipped``, ``error``, ... (``ohgw.status``)."""
    return dict(
        collections.Counter(
            attrs.status_kind(t.user_attrs[attrs.STATUS])
            for t in trials
            if attrs.STATUS in t.user_attrs
        )
    )


def finished_counts(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    counts = {state.name.lower(): 0 for state in TrialState}
    for t in trials:
        if lineage.OVER_BUDGET not in t.user_attrs:  # lost the last slot, trained nothing
            counts[t.state.name.lower()] += 1
    return counts


@dataclasses.dataclass
class RunSummary:
    """What a run (or a status query) found in the storage."""

    study_name: str
    counts: dict[str, int]
    configurations: int
    not_promoted: int
    epochs: int
    best_value: float | None
    best_number: int | None
    best_params: dict[str, Any]
    best_test_accuracy: float | None
    probe_seconds: float
    wall_seconds: float
    probe_status: dict[str, int] = dataclasses.field(default_factory=dict)
    lost: dict[int, str] = dataclasses.field(default_factory=dict)
    """Trial number -> why (``ohgw.lost``): configurations that ended without being trained
    to their end."""

    @property
    def probe_failures(self) -> int:
        return sum(self.probe_status.get(kind, 0) for kind in attrs.FAILED_STATUSES)

    def _probe_row(self) -> str:
        if not self.probe_status:
            return "-"
        text = ", ".join(f"{n} {kind}" for kind, n in sorted(self.probe_status.items()))
        if self.probe_failures:
            total = sum(self.probe_status.values())
            text += (
                f"  <- WARNING: {self.probe_failures} of {total} probes failed; those trials "
                "ran on their raw values (see ohgw.status)"
            )
        return text

    def rows(self) -> list[tuple[str, str]]:
        c = self.counts
        best = (
            "-" if self.best_value is None else f"{self.best_value:.4f} (trial {self.best_number})"
        )
        test = "-" if self.best_test_accuracy is None else f"{self.best_test_accuracy:.4f}"
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.best_params.items()) or "-"
        return [
            ("study", self.study_name),
            (
                "trials",
                f"{c['complete']} complete, {c['pruned']} pruned, {c['fail']} failed, "
                f"{c['running']} running, {c['waiting']} waiting",
            ),
            ("configurations", str(self.configurations)),
            *self._lost_rows(),
            ("paused, never resumed", str(self.not_promoted)),
            ("epochs trained", str(self.epochs)),
            ("best value", best),
            ("best test accuracy", test),
            ("best params", params),
            ("probe status", self._probe_row()),
            ("probe seconds", f"{self.probe_seconds:.1f}"),
            ("wall seconds", f"{self.wall_seconds:.1f}"),
        ]

    def _lost_rows(self) -> list[tuple[str, str]]:
        if not self.lost:
            return []
        number, why = next(iter(self.lost.items()))
        return [("lost", f"{len(self.lost)} <- WARNING: e.g. trial {number}: {why} (ohgw.lost)")]

    def format(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.rows())


def busy_seconds(trials: Sequence[FrozenTrial]) -> float:
    """Seconds during which at least one trial ran: the union of the trials' start-to-end
    intervals (a running trial's ends now), so pauses between runs of a resumed study do not
    count."""
    now = datetime.datetime.now()
    spans = sorted(
        (t.datetime_start, t.datetime_complete or now) for t in trials if t.datetime_start
    )
    total, end = 0.0, None
    for start, stop in spans:
        if end is None or start > end:
            total += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            total += (stop - end).total_seconds()
            end = stop
    return total


def summarize(study: optuna.Study, wall_seconds: float | None = None) -> RunSummary:
    """What ``study`` holds; ``wall_seconds`` is a run's own clock (default: the seconds the
    study's trials ran, :func:`busy_seconds`)."""
    trials = study.get_trials(deepcopy=False)
    if wall_seconds is None:
        wall_seconds = busy_seconds(trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = None
    if complete:
        pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        best = pick(complete, key=lambda t: t.value)  # type: ignore[arg-type, return-value]
    test = best.user_attrs.get("test_accuracy") if best else None
    return RunSummary(
        study_name=study.study_name,
        counts=finished_counts(trials),
        configurations=len(lineage.configurations(trials)),
        not_promoted=sum(bool(t.user_attrs.get(lineage.NOT_PROMOTED)) for t in trials),
        epochs=epochs_used(trials),
        best_value=None if best is None else float(best.value),  # type: ignore[arg-type]
        best_number=None if best is None else best.number,
        best_params={} if best is None else dict(best.params),
        best_test_accuracy=None if test is None else float(test),
        probe_seconds=sum(float(t.user_attrs.get(attrs.PROBE_SECONDS, 0.0)) for t in trials),
        wall_seconds=wall_seconds,
        probe_status=probe_status_counts(trials),
        lost={
            t.number: str(t.user_attrs[lineage.LOST])
            for t in trials
            if lineage.LOST in t.user_attrs
        },
    )
